"""Delivery to open sockets: group names, the frames' message shape, broadcasts after commit, and
presence (who has a conversation open, counted across processes in Redis)."""

import contextlib
import contextvars
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from realio.redis import get_redis
from realio.redis import key as redis_key

_collected: contextvars.ContextVar[list | None] = contextvars.ContextVar("chat_collected_broadcasts", default=None)


def group_name(conversation_id) -> str:
    """The channel-layer group of a conversation, from its validated integer id only."""
    return f"chat.conversation.{int(conversation_id)}"


def iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def attachment_url(message):
    if not message.attachment:
        return None
    return f"/api/v1/conversations/{message.conversation_id}/messages/{message.pk}/attachment/"


def message_payload(message) -> dict:
    """A message as the API and the socket frames show it (DESIGN.md section 5, plus the
    attachment's URL and the edited/deleted flags). `message.sender` should be loaded."""
    return {
        "id": message.pk,
        "sender": {"id": message.sender_id, "name": message.sender.name},
        "body": message.body,
        "created_at": iso(message.created_at),
        "client_id": message.client_id,
        "attachment": attachment_url(message),
        "edited": message.edited_at is not None,
        "deleted": message.deleted_at is not None,
    }


def broadcast(conversation_id, event):
    """Send `event` to every socket of the conversation (on any process, through Redis).

    Inside `collected()` the event is kept for the caller to send from its event loop instead
    (a consumer does that so the shared sync thread never waits on Redis)."""
    pending = _collected.get()
    if pending is not None:
        pending.append((group_name(conversation_id), event))
        return
    async_to_sync(get_channel_layer().group_send)(group_name(conversation_id), event)


@contextlib.contextmanager
def collected():
    """Collect the broadcasts made inside the block (after commit) as (group, event) pairs."""
    events = []
    token = _collected.set(events)
    try:
        yield events
    finally:
        _collected.reset(token)


# --- presence -------------------------------------------------------------------------------
# Each open socket is a member of a sorted set per (conversation, user), scored by the time it
# stops counting. A socket refreshes its score every third of CHAT_PRESENCE_TTL_SECONDS and
# removes itself on close; a process that dies leaves members that simply expire. The socket's
# calls run on its event loop's Redis client (realio.asyncdb).

def _presence_key(conversation_id, user_id):
    return redis_key("chat", "presence", int(conversation_id), int(user_id))


async def presence_join(conversation_id, user_id, channel_name, *, other_id):
    """Count this socket as present: (whether the person was not present before, whether the
    other party is present), in one round trip on the event loop's client (realio.asyncdb)."""
    from realio import asyncdb

    now, ttl = time.time(), settings.CHAT_PRESENCE_TTL_SECONDS
    name = _presence_key(conversation_id, user_id)
    pipe = asyncdb.redis_client().pipeline()
    pipe.zremrangebyscore(name, "-inf", now)
    pipe.zcard(name)
    pipe.zadd(name, {channel_name: now + ttl})
    pipe.expire(name, ttl * 2)
    queue_is_present(pipe, conversation_id, other_id)
    _, before, _, _, other = await pipe.execute()
    return before == 0, other > 0


async def presence_refresh(conversation_id, user_id, channel_name, *, other_id):
    """Keep this socket counted as present; returns whether the other party is present (one
    round trip)."""
    from realio import asyncdb

    now, ttl = time.time(), settings.CHAT_PRESENCE_TTL_SECONDS
    name = _presence_key(conversation_id, user_id)
    pipe = asyncdb.redis_client().pipeline(transaction=False)
    pipe.zadd(name, {channel_name: now + ttl})
    pipe.expire(name, ttl * 2)
    pipe.zcount(_presence_key(conversation_id, other_id), now, "+inf")
    return (await pipe.execute())[2] > 0


async def presence_leave(conversation_id, user_id, channel_name) -> bool:
    """Stop counting this socket; True when the person has no socket left."""
    from realio import asyncdb

    name = _presence_key(conversation_id, user_id)
    pipe = asyncdb.redis_client().pipeline()
    pipe.zrem(name, channel_name)
    pipe.zremrangebyscore(name, "-inf", time.time())
    pipe.zcard(name)
    return (await pipe.execute())[2] == 0


def is_present(conversation_id, user_id) -> bool:
    """Whether the person has the conversation open on a live socket (any process)."""
    return get_redis().zcount(_presence_key(conversation_id, user_id), time.time(), "+inf") > 0


def queue_is_present(pipe, conversation_id, user_id):
    """Queue is_present()'s question on a Redis pipeline (its answer: a count, > 0 when present),
    for a caller that asks Redis something else in the same round trip."""
    pipe.zcount(_presence_key(conversation_id, user_id), time.time(), "+inf")
