from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    """Chat: conversations, messages, websocket consumers."""

    name = "chat"
    verbose_name = _("Chat")
