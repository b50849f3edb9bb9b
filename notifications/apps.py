from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    """Notifications: notification centre, delivery by channel, tracking."""

    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from accounts.services import register_eraser, register_exporter
        from notifications import selectors, services

        register_exporter("notifications", selectors.notifications_export)
        register_eraser(services.notifications_erase)
