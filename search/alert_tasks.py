"""Celery tasks of saved-search alerts: the digest beat (thin; the work is search.services)."""

from celery import shared_task

from search import services


@shared_task(name="search.send_alert_digests", acks_late=True)
def send_alert_digests():
    """Publish the daily and weekly digests that are due. Safe to run often and twice at once."""
    return services.alerts_digest()
