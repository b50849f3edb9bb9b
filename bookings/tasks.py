"""Beat tasks of bookings: thin wrappers around the services (idempotent, safe to overlap)."""

from celery import shared_task

from bookings import services


@shared_task(name="bookings.sweep")
def sweep():
    """Expire unanswered requests, complete past viewings, publish due reminders."""
    return services.bookings_sweep()
