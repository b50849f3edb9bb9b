from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingsConfig(AppConfig):
    """Bookings: agent availability, viewing appointments, scheduling, reminders."""

    name = "bookings"
    verbose_name = _("Bookings")

    def ready(self):
        from accounts.services import register_eraser, register_exporter
        from bookings import selectors, services
        from realio.errors import register_constraint_message

        for name, message in {
            "viewing_agent_no_overlap": _("The agent is not free at that time."),
            "viewing_customer_no_overlap": _("You already have a viewing at that time."),
            "viewing_not_with_oneself": _("You cannot book a viewing of your own listing."),
            "availability_rule_start_before_end": _("The end must be after the start."),
            "availability_exception_times": _("Give both times, or neither for a whole day off."),
        }.items():
            register_constraint_message(name, message)
        register_exporter("viewings", selectors.viewings_export)
        register_eraser(services.viewings_on_account_delete)
