from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealioConfig(AppConfig):
    """The project's own app: the events outbox and cross-cutting pieces."""

    name = "realio"
    verbose_name = _("Platform")

    def ready(self):
        from realio import events

        events.autodiscover_handlers()
