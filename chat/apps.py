from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    """Chat: conversations, messages, websocket consumers."""

    name = "chat"
    verbose_name = _("Chat")

    def ready(self):
        from accounts.services import register_eraser, register_exporter
        from chat import selectors, services
        from realio.errors import register_constraint_message

        register_exporter("conversations", selectors.conversations_export)
        register_eraser(services.chat_erase)
        register_constraint_message("conversation_once_per_customer_listing",
                                    _("You already have a conversation about this listing."))
        register_constraint_message("message_client_id_once_per_sender",
                                    _("A message with this client_id was already sent."))
