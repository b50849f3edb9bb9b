"""A minimal authenticated socket: tells a signed-in client who it is (used to check the
handshake authentication end to end; the chat and notification sockets build on the same)."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class WhoAmIConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.send_json({"type": "whoami", "user_id": user.pk, "role": user.role})
