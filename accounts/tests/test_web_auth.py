"""Web sign-in: rate-limited per account like the API, MFA enforced for staff when required."""

import pytest

from accounts.tests.factories import PASSWORD, AgentFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, email, password, **extra):
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


def test_web_login_signs_in(client):
    UserFactory(email="web@example.com")

    response = login(client, "web@example.com", PASSWORD)

    assert response.status_code == 302
    assert client.get("/api/v1/me/").json()["email"] == "web@example.com"


def test_failed_web_logins_are_limited_and_share_the_api_counter(client, api_client):
    UserFactory(email="target@example.com")
    for i in range(6):
        assert login(client, "target@example.com", "wrong", REMOTE_ADDR=f"10.1.0.{i}").status_code == 200
    for i in range(4):
        api_client.post("/api/v1/auth/token/", {"email": "target@example.com", "password": "wrong"},
                        REMOTE_ADDR=f"10.2.0.{i}")

    locked_web = login(client, "target@example.com", PASSWORD, REMOTE_ADDR="10.3.0.1")
    locked_api = api_client.post("/api/v1/auth/token/", {"email": "target@example.com", "password": PASSWORD},
                                 REMOTE_ADDR="10.3.0.2")

    assert locked_web.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert locked_api.status_code == 429


def test_staff_must_set_up_mfa_when_required(client, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    staff = StaffFactory()
    client.force_login(staff)

    response = client.get("/")

    assert response.status_code == 302
    assert "/accounts/2fa/" in response.headers["Location"]


def test_agents_are_not_forced_into_mfa(client, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    client.force_login(AgentFactory())

    assert client.get("/").status_code == 200


def test_sign_up_form_creates_customer_or_agent(client):
    response = client.post("/accounts/signup/", {
        "email": "signup@example.com", "password1": "a-Strong-passphrase-42", "password2": "a-Strong-passphrase-42",
        "first_name": "Sia", "last_name": "Up", "role": "agent",
    })

    assert response.status_code == 302
    from accounts.models import User

    user = User.objects.get(email="signup@example.com")
    assert user.is_agent and user.is_staff and user.first_name == "Sia"
    assert user.groups.filter(name="Agents").exists()
