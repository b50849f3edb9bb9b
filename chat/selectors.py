"""Reads on chat: a person's conversations with unread counts, history, replay, the export."""

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat.models import Conversation, Message, ReadPosition
from listings.models import ListingPhoto


def _with_inbox_details(queryset, user) -> QuerySet[Conversation]:
    """Each conversation with `unread` (the other party's messages after `user`'s read
    position) and what the inbox shows (listing and its photos, people, the last message)."""
    read = ReadPosition.objects.filter(conversation=OuterRef("pk"), user=user).values("last_read_id")[:1]
    unread = (Message.objects.filter(conversation=OuterRef("pk"), id__gt=OuterRef("my_read"))
              .exclude(sender=user).order_by().values("conversation").annotate(n=Count("id")).values("n"))
    return (
        queryset.annotate(my_read=Coalesce(Subquery(read), 0))
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .select_related("listing", "customer", "agent", "last_message", "last_message__sender")
        .prefetch_related(Prefetch("listing__photos", queryset=ListingPhoto.objects.order_by("position", "id")))
        .order_by(*Conversation._meta.ordering)
    )


def conversations_of(user) -> QuerySet[Conversation]:
    """The inbox of `user`: their conversations, newest activity first, with unread counts.

    An agent sees a conversation once it has a message: opening one is the customer's first
    step ("Contact the agent"), and an empty one is nothing to reply to yet."""
    return _with_inbox_details(
        Conversation.objects.filter(Q(customer=user) | Q(agent=user, last_message_at__isnull=False)), user)


def conversation_of(user, conversation_id) -> Conversation | None:
    """One conversation of `user` (a party) with the inbox details, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        return None
    return _with_inbox_details(
        Conversation.objects.filter(Q(customer=user) | Q(agent=user), pk=conversation_id), user).first()


def party_conversation(user, conversation_id) -> Conversation | None:
    """The bare conversation when `user` is a party (the socket's check), else None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Conversation.objects.filter(Q(customer=user) | Q(agent=user), pk=conversation_id).first()


def messages_of(conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).select_related("sender")


def messages_after(conversation_id, after_id, *, limit=200) -> list[Message]:
    """Messages after `after_id`, oldest first, at most `limit` (replay after a reconnect)."""
    return list(Message.objects.filter(conversation_id=conversation_id, id__gt=after_id)
                .select_related("sender").order_by("id")[:limit])


def latest_messages(conversation, *, limit=50) -> list[Message]:
    """The last `limit` messages, oldest first (a conversation page's first screen)."""
    newest = list(messages_of(conversation).order_by("-id")[:limit])
    return newest[::-1]


def read_position_of(conversation_id, user_id) -> int:
    return (ReadPosition.objects.filter(conversation_id=conversation_id, user_id=user_id)
            .values_list("last_read_id", flat=True).first()) or 0


def conversations_export(user) -> list[dict]:
    """A person's conversations and every message in them, for their data export (`me/export/`)."""
    from chat.realtime import iso

    data = []
    conversations = (Conversation.objects.filter(Q(customer=user) | Q(agent=user))
                     .select_related("listing", "customer", "agent").order_by("created_at", "id"))
    for conversation in conversations:
        data.append({
            "id": conversation.pk,
            "listing": {"id": conversation.listing_id, "title": conversation.listing.title},
            "customer": {"id": conversation.customer_id, "name": conversation.customer.name},
            "agent": {"id": conversation.agent_id, "name": conversation.agent.name},
            "started_at": iso(conversation.created_at),
            "messages": [
                {"id": m.pk, "sender": {"id": m.sender_id, "name": m.sender.name}, "body": m.body,
                 "created_at": iso(m.created_at), "attachment": bool(m.attachment),
                 "deleted": m.deleted_at is not None}
                for m in Message.objects.filter(conversation=conversation).select_related("sender").order_by("id")
            ],
        })
    return data
