"""Transport for listings: photo renditions and the batch writer of views."""

from celery import shared_task

from listings import services


@shared_task(name="listings.make_photo_renditions", acks_late=True, autoretry_for=(OSError,), max_retries=3,
             retry_backoff=True)
def make_photo_renditions(photo_id):
    services.photo_make_renditions(photo_id=photo_id)


@shared_task(name="listings.flush_views", acks_late=True)
def flush_views():
    return services.views_flush()
