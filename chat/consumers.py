"""`/ws/chat/{conversation_id}/`: the live side of a conversation (DESIGN.md section 5).

Client frames: `message` {body, client_id}, `typing`, `read` {message_id}, `resume` {after_id}.
Server frames: `message` {message} to both parties once stored, `typing` and `read` relayed
to the other party, `presence` {user_id, online}, `error` {status, detail}. Only the two
parties get in (4401 not signed in, 4403 not a party); every rule is in chat.services.
"""

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext as _

from chat import realtime, selectors, services
from realio import asyncdb, events
from realio.asyncdb import closing
from realio.asyncdb import db as realio_db
from realio.errors import ApplicationError

logger = logging.getLogger(__name__)

REPLAY_BATCH = 200
TYPING_MIN_INTERVAL = 1.0  # seconds between two relayed typing frames of one socket
MAX_FRAME_CHARS = 64 * 1024  # a 5,000-character body in JSON escapes stays far below this


def db(func):
    return realio_db(func)


# Threads of their own for the database work of reads and replays (messages are sent on the
# event loop's own clients, realio.asyncdb), as many as the connection pool has connections.
_database_threads = ThreadPoolExecutor(max_workers=settings.DATABASES["default"].get("OPTIONS", {})
                                       .get("pool", {}).get("max_size", 10), thread_name_prefix="chat-db")


def db_parallel(func):
    """Off the one shared sync thread: several conversations' database work runs in parallel
    (each call takes a pooled connection and gives it back); order within a socket holds
    because the consumer awaits each call."""
    return DatabaseSyncToAsync(closing(func), thread_sensitive=False, executor=_database_threads)


def _read_collecting(**kwargs):
    with realtime.collected() as broadcasts:
        position = services.message_read(**kwargs)
    return position, broadcasts


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation_id = None
    group = None
    heartbeat = None
    holding = False  # counted as a holder of the loop's clients (realio.asyncdb)

    async def connect(self):
        self.user = self.scope.get("user")
        # Accept, then close with the reason: a browser sees 4401/4403 and stops retrying,
        # where a refused handshake would look like a network failure.
        if self.user is None or not self.user.is_authenticated:
            await self.accept()
            await self.close(code=4401)
            return
        conversation = await db(selectors.party_conversation)(self.user, self.scope["url_route"]["kwargs"]
                                                              ["conversation_id"])
        if conversation is None:
            await self.accept()
            await self.close(code=4403)
            return
        self.conversation_id = conversation.pk
        self.other_id = conversation.other_party_id(self.user.pk)
        self.group = realtime.group_name(conversation.pk)
        self.delivered = collections.OrderedDict()  # ids sent on this socket (replay and live overlap)
        self.last_typing = 0.0
        asyncdb.hold()  # this loop's PostgreSQL and Redis clients, for sending (let go in disconnect)
        self.holding = True
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()
            arrived, self.other_online = await realtime.presence_join(self.conversation_id, self.user.pk,
                                                                      self.channel_name, other_id=self.other_id)
            if arrived:
                await self.channel_layer.group_send(self.group, {"type": "chat.presence", "user_id": self.user.pk,
                                                                 "online": True})
            await self.send_json({"type": "presence", "user_id": self.other_id, "online": self.other_online})
        except BaseException:  # the socket fails here (Redis down): no disconnect() will let go
            await self._let_go()
            raise
        self.heartbeat = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code):
        if self.group is None:
            return
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            try:
                gone = await realtime.presence_leave(self.conversation_id, self.user.pk, self.channel_name)
            except Exception:  # Redis down: the entry expires by itself
                logger.warning("could not record that a chat socket closed", exc_info=True)
                return
            if gone:
                await self.channel_layer.group_send(self.group, {"type": "chat.presence", "user_id": self.user.pk,
                                                                 "online": False})
        finally:
            await self._let_go()

    async def _let_go(self):
        if self.holding:
            self.holding = False
            await asyncdb.let_go()

    async def _heartbeat(self):
        """Keep this socket counted as present, and notice when the other party's last socket
        vanished without saying so (its process died): its presence expired."""
        interval = max(1.0, settings.CHAT_PRESENCE_TTL_SECONDS / 3)
        # Spread out: sockets opened together must not all refresh in the same instant.
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            try:
                online = await realtime.presence_refresh(self.conversation_id, self.user.pk, self.channel_name,
                                                         other_id=self.other_id)
            except Exception:
                logger.warning("chat presence heartbeat failed", exc_info=True)
            else:
                if online != self.other_online:
                    self.other_online = online
                    try:
                        await self.send_json({"type": "presence", "user_id": self.other_id, "online": online})
                    except Exception:  # the client went away meanwhile; disconnect() ends this loop
                        return
            await asyncio.sleep(interval)

    # --- client frames ----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send_error(400, _("Send JSON text frames."))
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_error(413, _("The frame is too large."))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error(400, _("The frame is not valid JSON."))
            return
        if not isinstance(content, dict):
            await self.send_error(400, _("Send a JSON object with a type."))
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        handler = {"message": self.on_message, "typing": self.on_typing, "read": self.on_read,
                   "resume": self.on_resume}.get(content.get("type"))
        if handler is None:
            await self.send_error(400, _("Unknown frame type; use message, typing, read or resume."))
            return
        try:
            await handler(content)
        except ApplicationError as exc:
            await self.send_error(exc.status_code, exc.detail,
                                  client_id=content.get("client_id") if content.get("type") == "message" else None)

    async def on_message(self, content):
        payload, created, event_ids = await services.message_send_from_socket(
            conversation_id=self.conversation_id, sender=self.user, other_id=self.other_id, body=content.get("body"),
            client_id=content.get("client_id"))
        if not created:  # a resend: the stored message again, to this socket only
            await self.send_message(payload)
            return
        # Stored and committed: to both parties' sockets, then the events' relay.
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "message": payload})
        if event_ids:
            events.kick_relays_soon(event_ids)

    async def on_typing(self, content):
        now = time.monotonic()
        if now - self.last_typing < TYPING_MIN_INTERVAL:
            return
        self.last_typing = now
        await self.channel_layer.group_send(self.group, {"type": "chat.typing", "user_id": self.user.pk})

    async def on_read(self, content):
        _position, broadcasts = await db_parallel(_read_collecting)(
            conversation_id=self.conversation_id, user=self.user, message_id=content.get("message_id"))
        await self._broadcast(broadcasts)

    async def on_resume(self, content):
        after_id = content.get("after_id", 0)
        if after_id is None:
            after_id = 0
        if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
            raise ApplicationError(_("after_id: give the id of the last message you have (0 for none)."))
        # Group frames wait while this runs (a consumer handles one event at a time), so what
        # arrives live afterwards comes after the replay; ids already sent are not sent twice.
        while True:
            missed = await db_parallel(selectors.messages_after)(self.conversation_id, after_id, limit=REPLAY_BATCH)
            for message in missed:
                await self.send_message(realtime.message_payload(message))
            if len(missed) < REPLAY_BATCH:
                break
            after_id = missed[-1].pk
        position = await db_parallel(selectors.read_position_of)(self.conversation_id, self.other_id)
        if position:
            await self.send_json({"type": "read", "user_id": self.other_id, "message_id": position})

    async def _broadcast(self, broadcasts):
        for group, event in broadcasts:
            await self.channel_layer.group_send(group, event)

    # --- group events -----------------------------------------------------------------------

    async def chat_message(self, event):
        await self.send_message(event["message"])

    async def chat_typing(self, event):
        if event["user_id"] != self.user.pk:
            await self.send_json({"type": "typing", "user_id": event["user_id"]})

    async def chat_read(self, event):
        if event["user_id"] != self.user.pk:
            await self.send_json({"type": "read", "user_id": event["user_id"], "message_id": event["message_id"]})

    async def chat_presence(self, event):
        if event["user_id"] != self.user.pk:
            self.other_online = event["online"]
            await self.send_json({"type": "presence", "user_id": event["user_id"], "online": event["online"]})

    # --- sending ----------------------------------------------------------------------------

    async def send_message(self, payload):
        if payload["id"] in self.delivered:
            return
        self.delivered[payload["id"]] = None
        if len(self.delivered) > 2000:
            self.delivered.popitem(last=False)
        await self.send_json({"type": "message", "message": payload})

    async def send_error(self, status, detail, client_id=None):
        frame = {"type": "error", "status": status, "detail": str(detail)}
        if client_id is not None:
            frame["client_id"] = client_id
        with contextlib.suppress(Exception):
            await self.send_json(frame)
