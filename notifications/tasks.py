"""Celery tasks of notifications (queue "notifications"): thin transport over services."""

from celery import shared_task

from notifications import services


@shared_task(name="notifications.deliver", acks_late=True)
def deliver(delivery_id):
    """Send one delivery; a transient failure is retried after a backoff. Running it twice sends
    nothing twice (services.deliver)."""
    delay = services.deliver(delivery_id)
    if delay is not None:
        services.queue_deliveries([delivery_id], countdown=delay)


@shared_task(name="notifications.dispatch_due", acks_late=True)
def dispatch_due():
    """Queue deliveries that became due (quiet hours over, digest gathered, long backoff)."""
    return services.dispatch_due()
