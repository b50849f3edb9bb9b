"""/ws/notifications/: a signed-in person's new notifications and unread count, live."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

from notifications import live, selectors


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Server → client: {"type": "notification", "notification": {…}} as they are created and
    {"type": "unread", "count": n} (on connect and whenever it changes). Client → server:
    {"type": "ping"} keeps the person marked online (offline-only channels wait for that)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = int(user.pk)
        self.group = live.group_name(self.user_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(live.presence_connect)(self.user_id, self.channel_name)
        count = await database_sync_to_async(selectors.unread_count)(self.user_id)
        await self.send_json({"type": "unread", "count": count})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await database_sync_to_async(live.presence_disconnect)(self.user_id, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await database_sync_to_async(live.presence_connect)(self.user_id, self.channel_name)
            await self.send_json({"type": "pong"})
            return
        await self.send_json({"type": "error", "status": 400, "detail": str(_("Unknown message type."))})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:
            await self.send_json({"type": "error", "status": 400, "detail": str(_("Send JSON objects."))})

    async def notification_created(self, event):
        await self.send_json({"type": "notification", "notification": event["notification"]})

    async def notification_unread(self, event):
        await self.send_json({"type": "unread", "count": event["count"]})
