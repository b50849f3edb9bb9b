"""/ws/notifications/: the unread count on connect, new notifications live (delivered by the
worker through the channel layer), anonymous sockets refused."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory
from notifications import live, services
from realio.asgi import application

ORIGIN = (b"origin", b"http://testserver")


def bearer(user):
    return (b"authorization", f"Bearer {RefreshToken.for_user(user).access_token}".encode())


def notify(user, source):
    with transaction.atomic():
        return services.notify(user=user, kind="account.welcome", source=source, url="/", context={})


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_anonymous_socket_is_closed_with_4401():
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN])

    connected, code = await communicator.connect(timeout=5)

    assert not connected and code == 4401


@pytest.mark.asyncio
@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
async def test_new_notifications_and_the_unread_count_arrive_live(celery_worker):
    # given a signed-in person with one unread notification, and someone else
    user, other = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    await sync_to_async(notify)(user, "event:1")
    headers = await sync_to_async(bearer)(user)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, headers])
    connected, _ = await communicator.connect(timeout=5)
    assert connected

    # then the socket starts with the unread count, and the person counts as online
    first = await communicator.receive_json_from(timeout=5)
    while first.get("type") == "notification":  # the first one's own delivery may still be in flight
        first = await communicator.receive_json_from(timeout=5)
    assert first["type"] == "unread" and first["count"] >= 1
    assert await sync_to_async(live.is_online)(user.pk)

    # when a notification for them is created (and one for someone else)
    await sync_to_async(notify)(other, "event:2")
    created = await sync_to_async(notify)(user, "event:3")

    # then the worker's in-app delivery sends it, then the new count
    frames = []
    while not any(f.get("type") == "notification" and f["notification"]["id"] == created.pk for f in frames):
        frames.append(await communicator.receive_json_from(timeout=10))
    frame = next(f for f in frames if f.get("type") == "notification" and f["notification"]["id"] == created.pk)
    assert frame["notification"]["title"] == "Welcome to Realio"
    assert {d["channel"]: d["status"] for d in frame["notification"]["deliveries"]}["in_app"] == "delivered"
    unread = await communicator.receive_json_from(timeout=5)
    assert unread == {"type": "unread", "count": 2}

    # and marking all read tells the socket too
    await sync_to_async(services.notifications_mark_all_read)(user=user)
    assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "count": 0}

    # and a ping keeps it marked online; bad frames get an error
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from(timeout=5))["status"] == 400

    await communicator.disconnect()
    assert not await sync_to_async(live.is_online)(user.pk)
