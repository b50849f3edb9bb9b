"""Writes on chat: starting a conversation, sending and reading messages, and a person's part of
account deletion. The API, the socket consumer and the pages all come here.

A message is stored before anyone sees it: it is written, `chat.message_sent` (and, when the
recipient has the conversation open nowhere, `chat.message_unread`) published in the same
transaction, and the sockets get it only after commit (chat.realtime.broadcast).
"""

import logging
import time
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import realtime
from chat.models import MAX_BODY_LENGTH, MAX_CLIENT_ID_LENGTH, Conversation, Message, ReadPosition, attachment_path
from listings import selectors as listing_selectors
from realio import events, metrics
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound, RateLimited, TooLarge
from realio.images import image_check
from realio.redis import get_redis
from realio.redis import key as redis_key

logger = logging.getLogger(__name__)


def access_conversation(*, conversation_id, user, lock=False) -> Conversation:
    """The conversation if `user` is one of its two parties, else NotFound (404: others may not
    even learn it exists). `lock=True` takes its row lock (FOR UPDATE) for a write that follows."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    if not getattr(user, "is_authenticated", False):
        raise NotFound()
    queryset = Conversation.objects.filter(Q(customer=user) | Q(agent=user), pk=conversation_id)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    conversation = queryset.first()
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


def rate_limit_check(*, user_id, present=None):
    """Count a message against the sender's sliding window (CHAT_RATE_MESSAGES per
    CHAT_RATE_SECONDS, in Redis so that every process shares it); RateLimited (429) beyond.

    `present=(conversation_id, user_id)` also asks, in the same round trip, whether that person
    has the conversation open (chat.realtime.is_present), and returns the answer."""
    window_ms = settings.CHAT_RATE_SECONDS * 1000
    now_ms = int(time.time() * 1000)
    pipe = get_redis().pipeline(transaction=False)
    pipe.eval(RATE_LIMIT_SCRIPT, 1, redis_key("chat", "rate", int(user_id)), now_ms, window_ms,
              settings.CHAT_RATE_MESSAGES, f"{now_ms}:{uuid.uuid4().hex[:8]}")
    if present is not None:
        realtime.queue_is_present(pipe, *present)
    answers = pipe.execute()
    if answers[0]:
        seconds = max(1, round(int(answers[0]) / 1000))
        raise RateLimited(_("You are sending messages too fast. Try again in %(s)d s.") % {"s": seconds})
    return answers[1] > 0 if present is not None else None


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


def _stored_for_client_id(*, conversation, sender, client_id):
    stored = Message.objects.select_related("sender").filter(sender=sender, client_id=client_id).first()
    if stored is not None and stored.conversation_id != conversation.pk:
        message = _("This client_id was already used for a message in another conversation.")
        raise Conflict(f"client_id: {message}", errors={"client_id": [message]})
    return stored


def message_send(*, conversation_id, sender, body="", client_id=None, attachment=None) -> tuple[Message, bool]:
    """Store a message from `sender` (a party) and deliver it after commit: (message, created).

    A `client_id` the sender used before returns the stored message (created False) and
    delivers nothing again. `attachment` is an uploaded image (checked, re-encoded, stored
    privately). Raises NotFound (not a party), ApplicationError (400: empty, bad field),
    TooLarge (413), RateLimited (429), Conflict (409: the other person deleted their account).

    The conversation's row lock is held while the message is written, so within a conversation
    message ids follow commit order: a client that resumes "after id N" never misses one that
    committed later with a smaller id.

    Every message takes this path, so it is cut to four round trips: the locked read (which also
    answers the client-id check), one Redis pipeline (the rate limit and the recipient's
    presence), one statement that writes the message, the conversation, the read position and
    the events (STORE_SQL), and the commit. After commit the sockets get the message before the
    events' relay is queued.
    """
    body = _clean_body(body)
    client_id = _clean_client_id(client_id)
    if not body.strip() and attachment is None:
        message = _("Write a message or attach an image.")
        raise ApplicationError(f"body: {message}", errors={"body": [message]})
    stored_name = checked = None
    if attachment is not None:
        access_conversation(conversation_id=conversation_id, user=sender)  # no stranger's upload is processed
        checked = image_check(attachment, max_bytes=settings.CHAT_ATTACHMENT_MAX_BYTES)
        # Written before the transaction (a slow upload never holds the row lock) and removed
        # again if the message is not stored.
        stored_name = storages["private"].save(attachment_path(None, checked.file.name), checked.file)
    conversation = None
    try:
        with transaction.atomic():
            conversation, other_deleted, resent = _lock_for_sending(conversation_id=conversation_id, sender=sender,
                                                                    client_id=client_id)
            if resent:
                stored = _stored_for_client_id(conversation=conversation, sender=sender, client_id=client_id)
                if stored is not None:
                    _delete_file(stored_name)
                    return stored, False
            if other_deleted:
                raise Conflict(_("This person has deleted their account and cannot receive messages."))
            other_id = conversation.other_party_id(sender.pk)
            other_present = rate_limit_check(user_id=sender.pk, present=(conversation.pk, other_id))
            message = Message(conversation=conversation, sender=sender, body=body, client_id=client_id,
                              created_at=timezone.now(), attachment=stored_name or "",
                              attachment_type=checked.file.content_type if checked else "")
            event_ids = _store(message, other_id=other_id, unread=not other_present)
            if event_ids is None:
                # The same client_id committed meanwhile from another connection (ON CONFLICT).
                raise IntegrityError("chat_message: the client_id was stored concurrently")
            metrics.chat_message_stored()
            # Written by _store's own statement, not events.publish: counted here.
            metrics.EVENTS_PUBLISHED.labels("chat.message_sent").inc()
            if not other_present:
                metrics.EVENTS_PUBLISHED.labels("chat.message_unread").inc()
            payload = realtime.message_payload(message)
            # Registered in this order, the sockets get the message before the relay is queued.
            transaction.on_commit(lambda: realtime.broadcast(conversation.pk, {"type": "chat.message",
                                                                               "message": payload}))
            events.relay_on_commit(event_ids)
    except IntegrityError:
        _delete_file(stored_name)
        if client_id is None or conversation is None:
            raise
        # The same client_id raced in from a second connection: the first one stored it.
        stored = _stored_for_client_id(conversation=conversation, sender=sender, client_id=client_id)
        if stored is None:
            raise
        return stored, False
    except BaseException:
        _delete_file(stored_name)
        raise
    return message, True


# The message, the conversation's last message, the sender's own read position and the
# message's events in the outbox (chat.message_sent, and chat.message_unread when the recipient
# has the conversation open nowhere) in one statement: this runs for every message, and the
# ORM's writes cost several times its CPU and a round trip each. A client_id stored meanwhile
# by a second connection inserts nothing (ON CONFLICT), and then nothing else is written.
STORE_SQL = """
    WITH stored AS (
        INSERT INTO chat_message (conversation_id, sender_id, body, created_at, client_id, attachment,
                                  attachment_type)
        VALUES (%(conversation)s, %(sender)s, %(body)s, %(created_at)s, %(client_id)s, %(attachment)s,
                %(attachment_type)s)
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
          FROM stored WHERE %(unread)s
        RETURNING id
    )
    SELECT stored.id, ARRAY(SELECT id FROM sent UNION ALL SELECT id FROM unread) FROM stored
"""


def _store(message, *, other_id, unread):
    """Insert `message` (edited/deleted unset), move the conversation's last message and the
    sender's read position to it and write its events; the caller holds the conversation's row
    lock and relays the events (their ids are returned). None: its client_id was taken."""
    with connection.cursor() as cursor:
        cursor.execute(STORE_SQL, {
            "conversation": message.conversation_id, "sender": message.sender_id, "body": message.body,
            "created_at": message.created_at, "client_id": message.client_id,
            "attachment": message.attachment.name or "", "attachment_type": message.attachment_type,
            "other": other_id, "unread": bool(unread),
        })
        row = cursor.fetchone()
    if row is None:
        return None
    message.pk, event_ids = row
    message._state.adding = False
    return event_ids


LOCK_SQL = """
    SELECT conversation.customer_id, conversation.agent_id,
           customer.deleted_at IS NOT NULL, agent.deleted_at IS NOT NULL,
           EXISTS(SELECT FROM chat_message WHERE sender_id = %(sender)s AND client_id = %(client_id)s)
      FROM chat_conversation conversation
      JOIN accounts_user customer ON customer.id = conversation.customer_id
      JOIN accounts_user agent ON agent.id = conversation.agent_id
     WHERE conversation.id = %(conversation)s
       AND (conversation.customer_id = %(sender)s OR conversation.agent_id = %(sender)s)
       FOR UPDATE OF conversation
"""


def _lock_for_sending(*, conversation_id, sender, client_id):
    """Lock the conversation's row (FOR UPDATE) if `sender` is a party, else NotFound; returns
    (conversation, whether the other party deleted their account, whether the sender already
    stored a message with `client_id`), in one statement of plain values: the hot path of every
    message never builds the two people's model instances."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    with connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, {"conversation": conversation_id, "sender": sender.pk, "client_id": client_id})
        row = cursor.fetchone()
    if row is None:
        raise NotFound()
    customer_id, agent_id, customer_deleted, agent_deleted, resent = row
    other_deleted = agent_deleted if sender.pk == customer_id else customer_deleted
    return Conversation(pk=conversation_id, customer_id=customer_id, agent_id=agent_id), other_deleted, resent


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
