"""Writes on chat: starting a conversation, sending and reading messages, and a person's part of
account deletion. The API, the socket consumer and the pages all come here.

A message is stored before anyone sees it: it is written, `chat.message_sent` (and, when the
recipient has the conversation open nowhere, `chat.message_unread`) published in the same
transaction, and the sockets get it only after commit (chat.realtime.broadcast).
"""

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import storages
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import realtime
from chat.models import MAX_BODY_LENGTH, MAX_CLIENT_ID_LENGTH, Conversation, Message, ReadPosition, attachment_path
from listings import selectors as listing_selectors
from realio import asyncdb, events, metrics
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound, RateLimited, TooLarge
from realio.images import image_check
from realio.redis import get_redis
from realio.redis import key as redis_key

logger = logging.getLogger(__name__)


def access_conversation(*, conversation_id, user) -> Conversation:
    """The conversation if `user` is one of its two parties, else NotFound (404: others may not
    even learn it exists)."""
    conversation_id = _conversation_id(conversation_id, user)
    conversation = Conversation.objects.filter(Q(customer=user) | Q(agent=user), pk=conversation_id).first()
    if conversation is None:
        raise NotFound()
    return conversation


def conversation_start(*, user, listing_id) -> tuple[Conversation, bool]:
    """Open the conversation of customer `user` about a listing with its agent: (conversation,
    created). The existing one comes back when there is one. Agents and staff never start a
    conversation (403): an agent replies in one a customer started.
    """
    if not user.is_customer:
        raise Forbidden(_("Only customers start conversations: an agent can only reply in one a customer started."))
    try:
        listing_id = int(listing_id)
    except (TypeError, ValueError):
        raise ApplicationError(_("listing: give the id of a listing.")) from None
    existing = Conversation.objects.filter(customer=user, listing_id=listing_id).first()
    if existing is not None:
        return existing, False
    listing = listing_selectors.listings_visible_to(user).select_related("agent").filter(pk=listing_id).first()
    if listing is None:
        raise NotFound(_("No such listing."))
    if not listing.agent.is_active:
        raise Conflict(_("The agent of this listing can no longer be contacted."))
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(customer=user, agent=listing.agent, listing=listing)
            ReadPosition.objects.bulk_create([ReadPosition(conversation=conversation, user_id=uid)
                                              for uid in conversation.party_ids()])
            # "Contact started": a strong interest signal for the recommender.
            events.publish("chat.conversation_started", conversation_id=conversation.pk,
                           listing_id=listing.pk)
    except IntegrityError:  # the same customer started it concurrently (another tab, a retry)
        existing = Conversation.objects.filter(customer=user, listing_id=listing_id).first()
        if existing is None:
            raise
        return existing, False
    return conversation, True


# --- sending ------------------------------------------------------------------------------------

# A sliding window per sender: the message's member is added only when the window has room
# (0 comes back), else the milliseconds until it has (the member is not added).
RATE_LIMIT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""


def _rate_key(user_id):
    return redis_key("chat", "rate", int(user_id))


def _queue_rate_limit(pipe, *, user_id, present):
    """Queue, on a Redis pipeline (sync or asyncio), the count of a message against the sender's
    sliding window (CHAT_RATE_MESSAGES per CHAT_RATE_SECONDS, in Redis so that every process
    shares it) and whether `present` = (conversation_id, user_id) has the conversation open
    (chat.realtime.is_present); returns the window's member for this message."""
    window_ms = settings.CHAT_RATE_SECONDS * 1000
    now_ms = int(time.time() * 1000)
    member = f"{now_ms}:{uuid.uuid4().hex[:8]}"
    pipe.eval(RATE_LIMIT_SCRIPT, 1, _rate_key(user_id), now_ms, window_ms, settings.CHAT_RATE_MESSAGES, member)
    realtime.queue_is_present(pipe, *present)
    return member


def _rate_answers(answers):
    """(milliseconds to wait, 0 when the message was counted; whether the person is present)."""
    return int(answers[0]), answers[1] > 0


def _rate_limited(wait_ms):
    seconds = max(1, round(wait_ms / 1000))
    return RateLimited(_("You are sending messages too fast. Try again in %(s)d s.") % {"s": seconds})


def _clean_body(body):
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise ApplicationError(_("body: send the message as text."), errors={"body": [_("Send the message as text.")]})
    if len(body) > MAX_BODY_LENGTH:
        message = _("A message can have at most %(n)s characters.") % {"n": f"{MAX_BODY_LENGTH:,}"}
        raise TooLarge(f"body: {message}", errors={"body": [message]})
    if "\x00" in body:
        message = _("The text contains a character that cannot be stored (NUL).")
        raise ApplicationError(f"body: {message}", errors={"body": [message]})
    return body


def _clean_client_id(client_id):
    if client_id in (None, ""):
        return None
    if isinstance(client_id, int) and not isinstance(client_id, bool):
        client_id = str(client_id)
    if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID_LENGTH or "\x00" in client_id:
        message = _("Give a text of at most %(n)s characters.") % {"n": MAX_CLIENT_ID_LENGTH}
        raise ApplicationError(f"client_id: {message}", errors={"client_id": [message]})
    return client_id


def _checked_request(*, conversation_id, sender, body, client_id, attachment=None):
    """(conversation id, body, client_id) of a message to send, or the error it deserves."""
    body = _clean_body(body)
    client_id = _clean_client_id(client_id)
    if not body.strip() and attachment is None:
        message = _("Write a message or attach an image.")
        raise ApplicationError(f"body: {message}", errors={"body": [message]})
    return _conversation_id(conversation_id, sender), body, client_id


def _conversation_id(conversation_id, user):
    """The conversation id as a number, for a signed-in `user`; else NotFound (as for a stranger's)."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    if not getattr(user, "is_authenticated", False):
        raise NotFound()
    return conversation_id


def _stored_for_client_id(*, conversation_id, sender, client_id):
    """The message `sender` stored before with `client_id`, if any (in this conversation, else
    Conflict: a client id names one message)."""
    if client_id is None:
        return None
    stored = Message.objects.select_related("sender").filter(sender=sender, client_id=client_id).first()
    if stored is not None and stored.conversation_id != conversation_id:
        message = _("This client_id was already used for a message in another conversation.")
        raise Conflict(f"client_id: {message}", errors={"client_id": [message]})
    return stored


def _other_party(*, conversation_id, sender):
    """The other party's id when `sender` is a party of the conversation, else NotFound."""
    row = (Conversation.objects.filter(Q(customer=sender) | Q(agent=sender), pk=conversation_id)
           .values_list("customer_id", "agent_id").first())
    if row is None:
        raise NotFound()
    return row[1] if row[0] == sender.pk else row[0]


def message_send(*, conversation_id, sender, body="", client_id=None, attachment=None) -> tuple[Message, bool]:
    """Store a message from `sender` (a party) and deliver it after commit: (message, created).

    A `client_id` the sender used before returns the stored message (created False) and
    delivers nothing again. `attachment` is an uploaded image (checked, re-encoded, stored
    privately). Raises NotFound (not a party), ApplicationError (400: empty, bad field),
    TooLarge (413), RateLimited (429), Conflict (409: the other person deleted their account).

    A message is three round trips: the other party's id, one Redis pipeline (the rate limit, and
    whether the recipient has the conversation open), then one statement (SEND_SQL) that locks
    the conversation's row, checks the parties, the other's account and the client id, and
    writes the message and all that goes with it. Outside a transaction that statement commits by itself, so the lock
    is held from before the message's id is drawn until it commits: within a conversation
    message ids follow commit order, and a client that resumes "after id N" never misses one
    that committed later with a smaller id. After commit the sockets get the message, then the
    events' relay is queued. A message that is not stored gives its rate-limit slot back.
    message_send_from_socket is the same on an event loop.
    """
    conversation_id, body, client_id = _checked_request(conversation_id=conversation_id, sender=sender, body=body,
                                                        client_id=client_id, attachment=attachment)
    # The other party (for its presence), or NotFound before a stranger's upload is processed.
    other_id = _other_party(conversation_id=conversation_id, sender=sender)
    pipe = get_redis().pipeline(transaction=False)
    member = _queue_rate_limit(pipe, user_id=sender.pk, present=(conversation_id, other_id))
    wait_ms, other_present = _rate_answers(pipe.execute())
    if wait_ms:
        # A resend of a stored message is answered even when the sender is over the limit.
        earlier = _stored_for_client_id(conversation_id=conversation_id, sender=sender, client_id=client_id)
        if earlier is not None:
            return earlier, False
        raise _rate_limited(wait_ms)
    stored_name = checked = outcome = None
    try:
        if attachment is not None:
            checked = image_check(attachment, max_bytes=settings.CHAT_ATTACHMENT_MAX_BYTES)
            # Written before the statement (a slow upload never holds the row lock) and removed
            # again if the message is not stored.
            stored_name = storages["private"].save(attachment_path(None, checked.file.name), checked.file)
        message = _new_message(conversation_id=conversation_id, sender=sender, body=body, client_id=client_id,
                               attachment=stored_name or "",
                               attachment_type=checked.file.content_type if checked else "")
        with connection.cursor() as cursor:
            cursor.execute(SEND_SQL, _send_params(message, other_id=other_id, unread=not other_present))
            outcome = _outcome(message, cursor.fetchone())
    finally:
        if outcome is None or not outcome.stored:
            _delete_file(stored_name)
            _refund(get_redis(), user_id=sender.pk, member=member)
    if not outcome.stored:
        _refuse(outcome)
        # A resend, or the same client_id committed meanwhile from another connection.
        return _earlier(conversation_id=conversation_id, sender=sender, client_id=client_id), False
    payload = _count_stored(message, other_present=other_present)
    # In this order, the sockets get the message before the relay is queued; run at once when
    # the statement committed by itself, else when the caller's transaction commits.
    transaction.on_commit(lambda: realtime.broadcast(conversation_id, {"type": "chat.message", "message": payload}))
    events.relay_on_commit(outcome.event_ids)
    return message, True


async def message_send_from_socket(*, conversation_id, sender, other_id, body, client_id):
    """message_send for a socket consumer, on its event loop (no attachment; `other_id` known):
    the Redis pipeline and the statement run on the loop's own clients (realio.asyncdb), with
    no thread between. Returns (the message's payload, created, the ids of its events); the
    caller delivers the payload to the conversation's sockets when created, then relays the
    events. Raises what message_send raises."""
    conversation_id, body, client_id = _checked_request(conversation_id=conversation_id, sender=sender, body=body,
                                                        client_id=client_id)
    redis_client = asyncdb.redis_client()
    pipe = redis_client.pipeline(transaction=False)
    member = _queue_rate_limit(pipe, user_id=sender.pk, present=(conversation_id, other_id))
    wait_ms, other_present = _rate_answers(await pipe.execute())
    if wait_ms:
        earlier = await asyncdb.db(_stored_for_client_id)(conversation_id=conversation_id, sender=sender,
                                                        client_id=client_id)
        if earlier is not None:
            return realtime.message_payload(earlier), False, []
        raise _rate_limited(wait_ms)
    message = _new_message(conversation_id=conversation_id, sender=sender, body=body, client_id=client_id)
    outcome = None
    try:
        row = await asyncdb.fetch_one(SEND_SQL, _send_params(message, other_id=other_id, unread=not other_present))
        outcome = _outcome(message, row)
    finally:
        if outcome is None or not outcome.stored:
            await _refund_async(redis_client, user_id=sender.pk, member=member)
    if not outcome.stored:
        _refuse(outcome)
        earlier = await asyncdb.db(_earlier)(conversation_id=conversation_id, sender=sender, client_id=client_id)
        return realtime.message_payload(earlier), False, []
    return _count_stored(message, other_present=other_present, committed=True), True, outcome.event_ids


def _new_message(*, conversation_id, sender, body, client_id, attachment="", attachment_type=""):
    return Message(conversation_id=conversation_id, sender=sender, body=body, client_id=client_id,
                   created_at=timezone.now(), attachment=attachment, attachment_type=attachment_type)


def _send_params(message, *, other_id, unread):
    return {"conversation": message.conversation_id, "sender": message.sender_id, "other": other_id,
            "body": message.body, "created_at": message.created_at, "client_id": message.client_id,
            "attachment": message.attachment.name or "", "attachment_type": message.attachment_type,
            "unread": bool(unread)}


def _refund(redis_client, *, user_id, member):
    """Give back a rate-limit slot counted for a message that was not stored."""
    try:
        redis_client.zrem(_rate_key(user_id), member)
    except Exception:  # the window forgets it by itself
        logger.warning("could not give back a chat rate-limit slot", exc_info=True)


async def _refund_async(redis_client, *, user_id, member):
    try:
        await redis_client.zrem(_rate_key(user_id), member)
    except Exception:
        logger.warning("could not give back a chat rate-limit slot", exc_info=True)


def _refuse(outcome):
    """Raise why SEND_SQL stored nothing, unless it was for a client_id already used."""
    if not outcome.party:
        raise NotFound()
    if outcome.earlier_conversation_id is None and outcome.other_deleted:
        raise Conflict(_("This person has deleted their account and cannot receive messages."))


def _earlier(*, conversation_id, sender, client_id):
    """The message stored before for this client_id: a resend, or the same client_id committed
    meanwhile from another connection (SEND_SQL's ON CONFLICT)."""
    earlier = _stored_for_client_id(conversation_id=conversation_id, sender=sender, client_id=client_id)
    if earlier is None:
        raise IntegrityError("chat_message: a client_id that is taken but not found")
    return earlier


def _count_stored(message, *, other_present, committed=False):
    """Count a stored message and its events (written by SEND_SQL, not events.publish); its
    payload for the sockets."""
    metrics.chat_message_stored(committed=committed)
    metrics.EVENTS_PUBLISHED.labels("chat.message_sent").inc()
    if not other_present:
        metrics.EVENTS_PUBLISHED.labels("chat.message_unread").inc()
    return realtime.message_payload(message)


# The whole of sending, in one statement: a message costs one round trip to the database (two
# with the caller's transaction, whose commit is its own). `party` locks the conversation's row
# (FOR UPDATE) when the sender and `other` are its two parties; the message is inserted only
# when there is such a row, the other's account is not deleted and the sender has no message
# with this client_id; the conversation's last message, the sender's read position and the
# message's events in the outbox (chat.message_sent, and chat.message_unread when the recipient
# has the conversation open nowhere) follow from the insert. The insert reads `party`, so the
# id is drawn after the lock is taken. A client_id committed by another connection after this
# statement's snapshot inserts nothing (ON CONFLICT), and then nothing else is written.
SEND_SQL = """
    WITH party AS (
        SELECT conversation.id, other.deleted_at IS NOT NULL AS other_deleted
          FROM chat_conversation conversation
          JOIN accounts_user other ON other.id = %(other)s
         WHERE conversation.id = %(conversation)s
           AND ((conversation.customer_id = %(sender)s AND conversation.agent_id = %(other)s)
                OR (conversation.agent_id = %(sender)s AND conversation.customer_id = %(other)s))
           FOR UPDATE OF conversation
    ), earlier AS (
        SELECT conversation_id FROM chat_message
         WHERE sender_id = %(sender)s AND client_id = %(client_id)s AND %(client_id)s::text IS NOT NULL
    ), stored AS (
        INSERT INTO chat_message (conversation_id, sender_id, body, created_at, client_id, attachment,
                                  attachment_type)
        SELECT party.id, %(sender)s, %(body)s, %(created_at)s, %(client_id)s, %(attachment)s, %(attachment_type)s
          FROM party
         WHERE NOT party.other_deleted AND NOT EXISTS (SELECT FROM earlier)
        ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id
    ), conversation AS (
        UPDATE chat_conversation SET last_message_id = stored.id, last_message_at = %(created_at)s
          FROM stored WHERE chat_conversation.id = %(conversation)s
    ), position AS (
        UPDATE chat_readposition SET last_read_id = GREATEST(last_read_id, stored.id), read_at = %(created_at)s
          FROM stored WHERE conversation_id = %(conversation)s AND user_id = %(sender)s
    ), sent AS (
        INSERT INTO realio_outboxevent (type, payload, created_at)
        SELECT 'chat.message_sent', jsonb_build_object('message_id', stored.id, 'conversation_id',
               %(conversation)s::bigint, 'sender_id', %(sender)s::bigint), %(created_at)s
          FROM stored
        RETURNING id
    ), unread AS (
        INSERT INTO realio_outboxevent (type, payload, created_at)
        SELECT 'chat.message_unread', jsonb_build_object('message_id', stored.id, 'conversation_id',
               %(conversation)s::bigint, 'recipient_id', %(other)s::bigint), %(created_at)s
          FROM stored WHERE %(unread)s::boolean
        RETURNING id
    )
    SELECT EXISTS (SELECT FROM party), COALESCE((SELECT other_deleted FROM party), false),
           (SELECT conversation_id FROM earlier), (SELECT id FROM stored),
           ARRAY(SELECT id FROM sent UNION ALL SELECT id FROM unread)
"""


@dataclass(frozen=True)
class _Outcome:
    party: bool
    other_deleted: bool
    earlier_conversation_id: int | None
    stored: bool
    event_ids: list


def _outcome(message, row):
    """SEND_SQL's answer; when the message was stored, `message` gets its id."""
    party, other_deleted, earlier_conversation_id, message_id, event_ids = row
    if message_id is not None:
        message.pk = message_id
        message._state.adding = False
    return _Outcome(party=party, other_deleted=other_deleted, earlier_conversation_id=earlier_conversation_id,
                    stored=message_id is not None, event_ids=list(event_ids))


def _delete_file(name):
    if name:
        storages["private"].delete(name)


def message_read(*, conversation_id, user, message_id) -> int:
    """Record that `user` has read the conversation up to `message_id` (positions only grow);
    returns the read position. The other party's sockets get a `read` frame when it moved."""
    try:
        message_id = int(message_id)
    except (TypeError, ValueError):
        message = _("Give the id of a message of this conversation.")
        raise ApplicationError(f"message_id: {message}", errors={"message_id": [message]}) from None
    conversation = access_conversation(conversation_id=conversation_id, user=user)
    if not Message.objects.filter(conversation=conversation, pk=message_id).exists():
        message = _("Give the id of a message of this conversation.")
        raise ApplicationError(f"message_id: {message}", errors={"message_id": [message]})
    with transaction.atomic():
        position, _created = ReadPosition.objects.select_for_update().get_or_create(
            conversation=conversation, user=user)
        if message_id <= position.last_read_id:
            return position.last_read_id
        position.last_read_id = message_id
        position.read_at = timezone.now()
        position.save(update_fields=["last_read_id", "read_at"])
        transaction.on_commit(lambda: realtime.broadcast(conversation.pk, {
            "type": "chat.read", "user_id": user.pk, "message_id": message_id}))
    return message_id


# --- account deletion --------------------------------------------------------------------------

def chat_erase(user):
    """A person's part of account deletion (accounts.services.user_delete, in its transaction).

    Conversations stay: they are the counterpart's record too, and the person now shows as
    "deleted user" (User.name). The text of their messages stays with them, as in the other
    party's mailbox. Their attachments go: pictures are the most personal part and the least
    needed to follow the conversation; each such message is flagged deleted so both sides see
    that something was removed. Conversations they started and never wrote in are deleted.
    """
    with_files = Message.objects.filter(sender=user).exclude(attachment="")
    names = list(with_files.values_list("attachment", flat=True))
    with_files.update(attachment="", attachment_type="", deleted_at=timezone.now())
    empty = Conversation.objects.filter(Q(customer=user) | Q(agent=user), last_message__isnull=True)
    empty.filter(~Q(pk__in=Message.objects.values("conversation_id"))).delete()
    storage = storages["private"]

    def delete_files():
        for name in names:
            try:
                storage.delete(name)
            except OSError:
                logger.warning("could not delete attachment %s", name, exc_info=True)

    transaction.on_commit(delete_files)
