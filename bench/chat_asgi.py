"""The ASGI application bench/chat.py serves: the site's own (realio.asgi), plus the floor it is
measured against, `/ws/relay/{conversation_id}/`: a bare consumer with the same handshake
authentication and party check, relaying each frame through the same Redis group as the chat
without storing it (no database, no event, no presence)."""

import itertools
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realio.settings.base")
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from chat import realtime, selectors  # noqa: E402
from chat.consumers import db  # noqa: E402  (database calls that give their connection back)
from realio.asgi import django_asgi_app  # noqa: E402
from realio.routing import websocket_urlpatterns  # noqa: E402
from realio.websocket_auth import SessionOrJWTAuthMiddleware  # noqa: E402

_ids = itertools.count(1)


class RelayConsumer(AsyncJsonWebsocketConsumer):
    group = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=4401)
            return
        conversation = await db(selectors.party_conversation)(
            user, self.scope["url_route"]["kwargs"]["conversation_id"])
        if conversation is None:
            await self.accept()
            await self.close(code=4403)
            return
        self.user = user
        self.group = realtime.group_name(conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        message = {"id": next(_ids), "sender": {"id": self.user.pk, "name": ""}, "body": content.get("body", ""),
                   "created_at": time.time(), "client_id": content.get("client_id")}
        await self.channel_layer.group_send(self.group, {"type": "relay.message", "message": message})

    async def relay_message(self, event):
        await self.send_json({"type": "message", "message": event["message"]})


application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(SessionOrJWTAuthMiddleware(URLRouter([
        *websocket_urlpatterns,
        path("ws/relay/<int:conversation_id>/", RelayConsumer.as_asgi()),
    ]))),
})
