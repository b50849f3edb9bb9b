"""Conversations between a customer and a listing's agent, their messages and read positions."""

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MAX_BODY_LENGTH = 5000
MAX_CLIENT_ID_LENGTH = 64


def private_storage():
    """Chat attachments live in the "private" storage: never under the public media URL, read
    only through the permission-checked attachment view (chat.api.AttachmentView)."""
    return storages["private"]


def attachment_path(instance, filename):
    # Random names: the path reveals neither the conversation nor the original file name.
    import uuid

    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"chat/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class Conversation(models.Model):
    """One conversation per customer and listing, between the customer and the listing's agent."""

    # People are anonymised, never deleted (accounts.services.user_delete keeps the row as
    # "deleted user"), so the counterpart keeps the conversation: PROTECT refuses a hard delete
    # that would silently take the other party's history with it.
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="customer_conversations", verbose_name=_("customer"),
                                 db_index=False)  # led by the inbox index and the unique (customer, listing)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="agent_conversations", verbose_name=_("agent"),
                              db_index=False)  # led by the agent's inbox index
    # A listing with conversations cannot be deleted (listings.services.listing_delete answers
    # 409 "withdraw it instead"): the conversation is both parties' record.
    listing = models.ForeignKey("listings.Listing", on_delete=models.PROTECT, related_name="conversations",
                                verbose_name=_("listing"))
    created_at = models.DateTimeField(_("started"), default=timezone.now)
    # Denormalised for the inbox (ordered by the last message, with its preview), written by
    # chat.services.message_send under the conversation's row lock. SET_NULL: only a whole
    # conversation's messages are ever deleted, with it.
    last_message_at = models.DateTimeField(_("last message"), null=True, blank=True)
    last_message = models.ForeignKey("Message", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("last message"))

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = [models.F("last_message_at").desc(nulls_last=True), "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "listing"], name="conversation_once_per_customer_listing"),
            models.CheckConstraint(condition=~Q(customer=models.F("agent")), name="conversation_two_people"),
        ]
        indexes = [
            # The inbox of each side, newest activity first.
            models.Index(models.F("customer"), models.F("last_message_at").desc(nulls_last=True),
                         name="conv_customer_inbox_idx"),
            models.Index(models.F("agent"), models.F("last_message_at").desc(nulls_last=True),
                         name="conv_agent_inbox_idx"),
        ]

    def __str__(self):
        return f"{self.listing_id}: {self.customer_id} ↔ {self.agent_id}"

    def party_ids(self):
        return (self.customer_id, self.agent_id)

    def other_party_id(self, user_id):
        return self.agent_id if user_id == self.customer_id else self.customer_id


class Message(models.Model):
    # A conversation's messages go with it (only staff can delete a conversation).
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages",
                                     verbose_name=_("conversation"), db_index=False)  # message_conv_id_idx leads
    # Anonymised, never deleted (see Conversation.customer).
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_messages",
                               verbose_name=_("sender"))
    body = models.TextField(_("text"), max_length=MAX_BODY_LENGTH, blank=True)
    created_at = models.DateTimeField(_("sent"), default=timezone.now)
    edited_at = models.DateTimeField(_("edited"), null=True, blank=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    # The sender's own id for the message: a client that resends after a lost answer gets the
    # stored message back instead of a second one (unique per sender).
    client_id = models.CharField(_("client id"), max_length=MAX_CLIENT_ID_LENGTH, null=True,  # noqa: DJ001
                                 blank=True)  # null: most API clients send none, unique among those that do
    # An image checked by realio.images.image_check (re-encoded, no metadata), stored privately.
    attachment = models.FileField(_("attachment"), storage=private_storage, upload_to=attachment_path, blank=True,
                                  max_length=200)
    attachment_type = models.CharField(_("attachment type"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sender", "client_id"], condition=Q(client_id__isnull=False),
                                    name="message_client_id_once_per_sender"),
        ]
        indexes = [
            # History pages, replay after a reconnect and unread counts: by conversation, then id
            # (ids follow commit order within a conversation, see chat.services.message_send).
            models.Index(fields=["conversation", "id"], name="message_conv_id_idx"),
            models.Index(fields=["conversation", "created_at"], name="message_conv_time_idx"),
        ]

    def __str__(self):
        return f"{self.conversation_id}/{self.pk}"


class ReadPosition(models.Model):
    """How far one party has read a conversation: unread counts and read receipts."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_positions",
                                     verbose_name=_("conversation"), db_index=False)  # the unique key leads
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("user"))
    # The id of the last message read (0: none). A plain id rather than a foreign key: it only
    # ever grows (GREATEST in chat.services.message_read) and is compared with message ids.
    last_read_id = models.PositiveBigIntegerField(_("last read message"), default=0)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("read position")
        verbose_name_plural = _("read positions")
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="read_position_once")]

    def __str__(self):
        return f"{self.user_id} read {self.conversation_id} up to {self.last_read_id}"
