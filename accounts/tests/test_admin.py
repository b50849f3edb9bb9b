"""Admin access by role: staff see everything, an agent only themselves, is_staff alone nothing."""

import pytest

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admin_login_goes_through_the_site_login(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")
    assert client.get(response.headers["Location"]).status_code == 200


def test_agents_group_has_the_scoped_permissions():
    agent = AgentFactory()

    assert agent.has_perm("accounts.view_user") and agent.has_perm("accounts.change_user")
    assert not agent.has_perm("accounts.delete_user")


def test_agent_sees_only_themselves(client):
    agent = AgentFactory(email="agent@example.com")
    other = UserFactory(email="someone@example.com")
    client.force_login(agent)

    listing = client.get("/admin/accounts/user/")
    assert listing.status_code == 200
    assert b"agent@example.com" in listing.content and b"someone@example.com" not in listing.content

    assert client.get(f"/admin/accounts/user/{agent.pk}/change/").status_code == 200
    assert client.get(f"/admin/accounts/user/{other.pk}/change/").status_code in (302, 403, 404)
    response = client.post(f"/admin/accounts/user/{other.pk}/change/", {"first_name": "Hacked"})
    assert response.status_code in (302, 403, 404)
    other.refresh_from_db()
    assert other.first_name != "Hacked"


def test_agent_cannot_raise_their_own_role(client):
    agent = AgentFactory(email="agent2@example.com")
    client.force_login(agent)

    client.post(f"/admin/accounts/user/{agent.pk}/change/", {
        "email": "agent2@example.com", "first_name": "A", "last_name": "B", "time_zone": "UTC", "language": "en",
        "role": "staff", "is_superuser": "on",
        "agent_profile-TOTAL_FORMS": "1", "agent_profile-INITIAL_FORMS": "1",
        "agent_profile-MIN_NUM_FORMS": "0", "agent_profile-MAX_NUM_FORMS": "1",
        "agent_profile-0-id": agent.agent_profile.pk, "agent_profile-0-user": agent.pk,
    })

    agent.refresh_from_db()
    assert agent.role == "agent" and not agent.is_superuser


def test_staff_role_sees_everyone(client):
    staff = StaffFactory()
    UserFactory(email="someone@example.com")
    client.force_login(staff)

    response = client.get("/admin/accounts/user/")

    assert response.status_code == 200
    assert b"someone@example.com" in response.content


def test_is_staff_alone_sees_nothing(client):
    door_only = UserFactory(is_staff=True)
    UserFactory(email="someone@example.com")
    client.force_login(door_only)

    assert client.get("/admin/accounts/user/").status_code == 403
    assert not door_only.sees_everything


def test_customer_has_no_admin_access(client):
    client.force_login(UserFactory())

    assert client.get("/admin/login/?next=/admin/").status_code == 403
    assert client.get("/admin/accounts/user/").status_code == 302


def test_staff_verify_agents_from_the_admin(client, settings):
    settings.AGENT_VERIFICATION_REQUIRED = True
    from accounts import selectors

    staff = StaffFactory()
    agent = AgentFactory()
    assert not selectors.agent_can_publish(agent)
    client.force_login(staff)

    client.post("/admin/accounts/user/", {"action": "verify_agents", "_selected_action": [agent.pk]})

    agent.agent_profile.refresh_from_db()
    assert agent.agent_profile.verified_at is not None
    assert selectors.agent_can_publish(agent)


def test_agents_cannot_verify(client):
    from accounts import services
    from realio.errors import ApplicationError

    with pytest.raises(ApplicationError):
        services.agent_verify(agent=AgentFactory(), by=AgentFactory())
