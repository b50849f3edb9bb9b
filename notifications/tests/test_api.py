"""The notifications and devices API: own objects only (404 for others'), bad input → 400."""

import pytest

from accounts.tests.factories import UserFactory
from notifications import services
from notifications.models import Device, Notification, Preference, QuietHours

pytestmark = pytest.mark.django_db


def welcome(user, source="event:1"):
    return services.notify(user=user, kind="account.welcome", source=source, url="/", context={})


def test_anonymous_calls_are_401(api_client):
    for method, url in (("get", "/api/v1/notifications/"), ("post", "/api/v1/notifications/read-all/"),
                        ("get", "/api/v1/notifications/preferences/"), ("post", "/api/v1/devices/")):
        assert getattr(api_client, method)(url).status_code == 401


def test_list_shows_own_notifications_with_their_deliveries(auth_client):
    user, other = UserFactory(), UserFactory()
    first, second = welcome(user, "event:1"), welcome(user, "event:2")
    welcome(other)

    response = auth_client(user).get("/api/v1/notifications/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["unread"] == 2 and body["next"] is None
    assert [n["id"] for n in body["results"]] == [second.pk, first.pk]
    item = body["results"][0]
    assert set(item) == {"id", "kind", "title", "body", "url", "created_at", "read_at", "deliveries"}
    assert item["kind"] == "account.welcome" and item["read_at"] is None and item["created_at"].endswith("Z")
    assert {d["channel"]: d["status"] for d in item["deliveries"]} == {
        "email": "pending", "in_app": "pending", "push": "skipped", "sms": "skipped"}
    assert set(item["deliveries"][0]) == {"channel", "status", "attempts", "last_error"}


def test_list_pages_and_unread_filter(auth_client):
    user = UserFactory()
    for n in range(3):
        welcome(user, f"event:{n}")
    services.notifications_mark_all_read(user=user)
    welcome(user, "event:9")
    client = auth_client(user)

    assert client.get("/api/v1/notifications/?page_size=2").json()["next"].endswith("page=2&page_size=2")
    assert client.get("/api/v1/notifications/?unread=true").json()["count"] == 1
    response = client.get("/api/v1/notifications/?unread=maybe")
    assert response.status_code == 400 and response.json()["detail"].startswith("unread")
    assert client.get("/api/v1/notifications/?page=99").status_code == 404


def test_mark_read_and_read_all(auth_client):
    user, other = UserFactory(), UserFactory()
    mine, theirs = welcome(user, "event:1"), welcome(other, "event:1")
    welcome(user, "event:2")
    client = auth_client(user)

    response = client.post(f"/api/v1/notifications/{mine.pk}/read/")
    assert response.status_code == 200 and response.json()["read_at"]
    assert client.post(f"/api/v1/notifications/{mine.pk}/read/").status_code == 200  # again: harmless

    assert client.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert client.post("/api/v1/notifications/999999999999999999999/read/").status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None

    response = client.post("/api/v1/notifications/read-all/")
    assert response.json() == {"marked": 1, "unread": 0}
    assert Notification.objects.filter(user=other, read_at__isnull=True).count() == 1


def test_preferences_read_and_update(auth_client):
    user = UserFactory(time_zone="Europe/Paris")
    client = auth_client(user)

    body = client.get("/api/v1/notifications/preferences/").json()
    rows = {row["kind"]: row for row in body["kinds"]}
    assert rows["account.welcome"]["channels"] == {"in_app": True, "email": True, "sms": False, "push": False}
    assert rows["saved_search.match"]["channels"]["push"] is True
    assert body["quiet_hours"] is None and body["time_zone"] == "Europe/Paris"

    response = client.put("/api/v1/notifications/preferences/", {
        "kinds": [{"kind": "favorite.price_drop", "channels": {"email": False, "sms": True}}],
        "quiet_hours": {"start": "22:00", "end": "07:30"}}, format="json")

    assert response.status_code == 200
    rows = {row["kind"]: row for row in response.json()["kinds"]}
    assert rows["favorite.price_drop"]["channels"] == {"in_app": True, "email": False, "sms": True, "push": True}
    assert response.json()["quiet_hours"] == {"start": "22:00", "end": "07:30"}

    # quiet hours left out stay; null removes them
    client.put("/api/v1/notifications/preferences/", {"kinds": []}, format="json")
    assert QuietHours.objects.filter(user=user).exists()
    client.put("/api/v1/notifications/preferences/", {"quiet_hours": None}, format="json")
    assert not QuietHours.objects.filter(user=user).exists()


@pytest.mark.parametrize(("payload", "field"), [
    ({"kinds": [{"kind": "nope", "channels": {"email": True}}]}, "kinds"),
    ({"kinds": [{"kind": "account.welcome", "channels": {"in_app": False}}]}, "kinds"),
    ({"kinds": [{"kind": "account.welcome", "channels": {"pigeon": True}}]}, "kinds"),
    ({"kinds": [{"kind": "account.welcome", "channels": {"email": "often"}}]}, "kinds"),
    ({"kinds": "all"}, "kinds"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
    (["not", "an", "object"], None),
])
def test_bad_preferences_are_400_and_change_nothing(auth_client, payload, field):
    user = UserFactory()

    response = auth_client(user).put("/api/v1/notifications/preferences/", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["detail"], str)
    if field:
        assert field in body["errors"]
    assert not Preference.objects.exists() and not QuietHours.objects.exists()


def test_devices_register_refresh_and_delete(auth_client):
    user, other = UserFactory(), UserFactory()
    client = auth_client(user)

    response = client.post("/api/v1/devices/", {"token": "fcm-token-1", "platform": "android"}, format="json")
    assert response.status_code == 201
    device = response.json()
    assert device["token"] == "fcm-token-1" and device["platform"] == "android" and device["active"] is True

    # the same token again (say after the app restarted) is the same device
    again = client.post("/api/v1/devices/", {"token": "fcm-token-1", "platform": "android"}, format="json")
    assert again.status_code == 201 and again.json()["id"] == device["id"]
    assert Device.objects.count() == 1

    # a token registered by another account on that install moves to it
    moved = auth_client(other).post("/api/v1/devices/", {"token": "fcm-token-1", "platform": "android"},
                                    format="json")
    assert moved.json()["id"] == device["id"] and Device.objects.get().user == other

    assert client.delete(f"/api/v1/devices/{device['id']}/").status_code == 404
    assert auth_client(other).delete(f"/api/v1/devices/{device['id']}/").status_code == 204
    assert not Device.objects.exists()


@pytest.mark.parametrize("payload", [
    {"token": "", "platform": "android"},
    {"token": "x", "platform": "blackberry"},
    {"platform": "ios"},
    {"token": "x" * 5000, "platform": "web"},
    {"token": ["x"], "platform": "web"},
])
def test_bad_devices_are_400(auth_client, payload):
    response = auth_client(UserFactory()).post("/api/v1/devices/", payload, format="json")

    assert response.status_code == 400 and isinstance(response.json()["detail"], str)
    assert not Device.objects.exists()


def test_schema_builds(api_client):
    response = api_client.get("/api/v1/schema/")

    assert response.status_code == 200
    assert b"/api/v1/notifications/preferences/" in response.content
