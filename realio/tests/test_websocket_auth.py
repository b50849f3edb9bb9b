"""Websocket handshake authentication: session cookie or Bearer JWT; anyone else refused."""

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory
from realio.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://testserver")


async def connect(headers):
    communicator = WebsocketCommunicator(application, "/ws/whoami/", headers=[ORIGIN, *headers])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.asyncio
async def test_anonymous_socket_is_closed_with_4401():
    communicator, connected, code = await connect([])

    assert not connected and code == 4401


@pytest.mark.asyncio
async def test_bearer_token_on_the_handshake_authenticates():
    from asgiref.sync import sync_to_async

    def user_and_token():
        user = UserFactory()
        return user, str(RefreshToken.for_user(user).access_token)

    user, token = await sync_to_async(user_and_token)()

    communicator, connected, _ = await connect([(b"authorization", f"Bearer {token}".encode())])

    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"type": "whoami", "user_id": user.pk, "role": "customer"}
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_a_bad_token_is_refused_even_with_a_session():
    communicator, connected, code = await connect([(b"authorization", b"Bearer not-a-token")])

    assert not connected and code == 4401


@pytest.mark.asyncio
async def test_session_cookie_authenticates():
    from asgiref.sync import sync_to_async
    from django.test import Client

    def signed_in_cookie():
        user = UserFactory()
        client = Client()
        client.force_login(user)
        return user, client.cookies[settings.SESSION_COOKIE_NAME].value

    user, session_key = await sync_to_async(signed_in_cookie)()

    communicator, connected, _ = await connect([(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())])

    assert connected
    assert (await communicator.receive_json_from(timeout=5))["user_id"] == user.pk
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_foreign_origin_is_rejected():
    communicator = WebsocketCommunicator(application, "/ws/whoami/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect(timeout=5)

    assert not connected


@pytest.mark.asyncio
async def test_channel_layer_round_trip_through_redis():
    layer = get_channel_layer()
    channel = await layer.new_channel()

    await layer.send(channel, {"type": "ping", "n": 1})

    assert await layer.receive(channel) == {"type": "ping", "n": 1}
    assert "RedisChannelLayer" in type(layer).__name__
