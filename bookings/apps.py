from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingsConfig(AppConfig):
    """Bookings: agent availability, viewing appointments, scheduling, reminders."""

    name = "bookings"
    verbose_name = _("Bookings")
