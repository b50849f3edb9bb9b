"""The auth part of the public API contract (DESIGN.md section 5)."""

import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db

STRONG = "a-Strong-passphrase-42"


def register(client, **overrides):
    body = {"email": "new@example.com", "password": STRONG, "role": "customer",
            "first_name": "Nora", "last_name": "New"} | overrides
    return client.post("/api/v1/auth/register/", body, format="json")


def test_register_creates_account_that_can_sign_in_at_once(api_client):
    response = register(api_client)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "role"}
    assert body["email"] == "new@example.com" and body["role"] == "customer"
    user = User.objects.get(pk=body["id"])
    assert user.check_password(STRONG) and user.first_name == "Nora"
    assert OutboxEvent.objects.filter(type="account.created", payload__user_id=user.pk).exists()

    tokens = api_client.post("/api/v1/auth/token/", {"email": "NEW@example.com", "password": STRONG})
    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access", "refresh"}


def test_register_agent_gets_admin_access_and_profile(api_client):
    response = register(api_client, email="agent@example.com", role="agent")

    assert response.status_code == 201
    agent = User.objects.get(email="agent@example.com")
    assert agent.is_agent and agent.is_staff and not agent.sees_everything
    assert agent.groups.filter(name="Agents").exists()
    assert hasattr(agent, "agent_profile")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "staff"}, "role"),
        ({"role": "wizard"}, "role"),
        ({"email": ""}, "email"),
    ],
)
def test_register_rejects_bad_input_with_field_errors(api_client, overrides, field):
    response = register(api_client, **overrides)

    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert field in body["errors"]
    assert not User.objects.filter(email=overrides.get("email", "new@example.com")).exists() or field == "email"


def test_register_duplicate_email_is_400_whatever_the_case(api_client):
    UserFactory(email="taken@example.com")

    response = register(api_client, email="Taken@Example.com")

    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_register_missing_body_and_malformed_json(api_client):
    assert api_client.post("/api/v1/auth/register/", {}, format="json").status_code == 400
    response = api_client.post("/api/v1/auth/register/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_with_one_email_create_one_account():
    barrier = threading.Barrier(4)
    statuses = []

    def attempt():
        try:
            barrier.wait()
            statuses.append(register(APIClient(), email="race@example.com").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 400, 400, 400]
    assert User.objects.filter(email="race@example.com").count() == 1


def test_token_wrong_password_is_401(api_client):
    UserFactory(email="u@example.com")

    response = api_client.post("/api/v1/auth/token/", {"email": "u@example.com", "password": "nope"})

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


def test_token_unknown_email_and_inactive_user_are_401(api_client):
    UserFactory(email="off@example.com", is_active=False)
    for email in ("nobody@example.com", "off@example.com"):
        response = api_client.post("/api/v1/auth/token/", {"email": email, "password": PASSWORD})
        assert response.status_code == 401


def test_repeated_failed_sign_ins_are_throttled_per_account(api_client, settings):
    UserFactory(email="victim@example.com")

    statuses = [api_client.post("/api/v1/auth/token/", {"email": "victim@example.com", "password": "bad"},
                                REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(11)]

    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    # Even the right password is refused while the account is locked out...
    locked = api_client.post("/api/v1/auth/token/", {"email": "victim@example.com", "password": PASSWORD})
    assert locked.status_code == 429
    assert isinstance(locked.json()["detail"], str)
    # ...while another account is not affected.
    UserFactory(email="other@example.com")
    ok = api_client.post("/api/v1/auth/token/", {"email": "other@example.com", "password": PASSWORD})
    assert ok.status_code == 200


def test_sign_ins_per_client_address_are_throttled(api_client, settings):
    UserFactory(email="busy@example.com")
    statuses = [api_client.post("/api/v1/auth/token/", {"email": "busy@example.com", "password": PASSWORD}).status_code
                for _ in range(61)]

    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429


def test_refresh_rotates_and_blacklists(api_client):
    UserFactory(email="r@example.com")
    pair = api_client.post("/api/v1/auth/token/", {"email": "r@example.com", "password": PASSWORD}).json()

    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()

    again = api_client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert again.status_code == 401
    assert isinstance(again.json()["detail"], str)
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": "garbage"}).status_code == 401


def test_me_requires_authentication_with_401(api_client):
    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_me_with_bearer_token(api_client):
    UserFactory(email="me@example.com", first_name="Mia")
    access = api_client.post("/api/v1/auth/token/", {"email": "me@example.com", "password": PASSWORD}).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    body = api_client.get("/api/v1/me/").json()

    assert body["email"] == "me@example.com" and body["first_name"] == "Mia"
    for field in ("id", "role", "last_name", "phone", "time_zone", "language"):
        assert field in body


def test_me_patch_updates_profile(auth_client):
    user = UserFactory()
    client = auth_client(user)

    response = client.patch("/api/v1/me/", {"first_name": "Zoe", "phone": "+33612345678",
                                             "time_zone": "Europe/Paris"}, format="json")

    assert response.status_code == 200, response.json()
    user.refresh_from_db()
    assert (user.first_name, str(user.phone), user.time_zone) == ("Zoe", "+33612345678", "Europe/Paris")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"phone": "12"}, "phone"), ({"time_zone": "Mars/Olympus"}, "time_zone"), ({"language": "xx"}, "language")],
)
def test_me_patch_rejects_bad_values_and_changes_nothing(auth_client, body, field):
    user = UserFactory(first_name="Same")
    client = auth_client(user)

    response = client.patch("/api/v1/me/", {"first_name": "Changed", **body}, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    user.refresh_from_db()
    assert user.first_name == "Same"


def test_me_cannot_change_role_or_email(auth_client):
    user = UserFactory(email="fixed@example.com")
    client = auth_client(user)

    client.patch("/api/v1/me/", {"role": "staff", "email": "other@example.com"}, format="json")

    user.refresh_from_db()
    assert user.role == "customer" and user.email == "fixed@example.com"


def test_agent_profile_fields(auth_client):
    agent = AgentFactory()
    client = auth_client(agent)

    response = client.patch("/api/v1/me/", {"agent_profile": {"agency": "Nest & Co", "bio": "Ten years."}},
                            format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["agent_profile"]["agency"] == "Nest & Co"
    agent.agent_profile.refresh_from_db()
    assert agent.agent_profile.bio == "Ten years."


def test_export_contains_the_callers_data(auth_client):
    user = UserFactory(email="export@example.com", first_name="Ex")

    response = auth_client(user).get("/api/v1/me/export/")

    assert response.status_code == 200
    data = response.json()
    assert data["account"]["email"] == "export@example.com"
    assert data["account"]["first_name"] == "Ex"
    assert "attachment" in response.headers["Content-Disposition"]


def test_delete_me_erases_personal_data_and_revokes_tokens(api_client):
    user = UserFactory(email="gone@example.com", first_name="Gone", phone="+33612345678")
    pair = api_client.post("/api/v1/auth/token/", {"email": "gone@example.com", "password": PASSWORD}).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")

    response = api_client.delete("/api/v1/me/")

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.deleted_at and not user.is_active
    assert "gone" not in user.email and user.first_name == "" and str(user.phone) == ""
    assert user.name == "deleted user"
    assert OutboxEvent.objects.filter(type="account.deleted", payload__user_id=user.pk).exists()
    # The old access token no longer works (inactive user), nor does the refresh token.
    assert api_client.get("/api/v1/me/").status_code == 401
    fresh = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert fresh.status_code == 401
    sign_in = APIClient().post("/api/v1/auth/token/", {"email": "gone@example.com", "password": PASSWORD})
    assert sign_in.status_code == 401
    # The email is free again.
    assert register(APIClient(), email="gone@example.com").status_code == 201


def test_session_authenticated_browser_can_use_the_api(client):
    user = UserFactory()
    client.force_login(user)

    assert client.get("/api/v1/me/").json()["id"] == user.pk


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/auth/token/" in schema.content

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"<script" in docs.content
    assert b"cdn" not in docs.content.lower()


def test_mandatory_email_verification_blocks_api_sign_in_until_verified(api_client, settings):
    from allauth.account.models import EmailAddress

    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    assert register(api_client, email="verify@example.com").status_code == 201

    blocked = api_client.post("/api/v1/auth/token/", {"email": "verify@example.com", "password": STRONG})
    assert blocked.status_code == 403
    assert "email" in blocked.json()["detail"].lower()

    EmailAddress.objects.filter(email="verify@example.com").update(verified=True)
    allowed = api_client.post("/api/v1/auth/token/", {"email": "verify@example.com", "password": STRONG})
    assert allowed.status_code == 200
