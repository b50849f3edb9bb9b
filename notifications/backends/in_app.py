"""In-app channel: the notification is stored already; this pushes it live to the person's
open pages and apps over /ws/notifications/, with the new unread count, once the delivery's
status is committed."""

import logging

from django.db import transaction

from notifications import live
from notifications.backends import ChannelBackend, Sent
from notifications.models import Channel

logger = logging.getLogger(__name__)


class InAppBackend(ChannelBackend):
    channel = Channel.IN_APP

    def send(self, user, notifications):
        for notification in notifications:
            transaction.on_commit(lambda notification=notification: _broadcast(notification.pk))
        # Stored in the centre and offered to every open socket: as delivered as in-app gets
        # (a page or app that was closed fetches it from the list).
        return Sent(delivered=True)


def _broadcast(notification_id):
    from notifications.models import Notification

    notification = Notification.objects.filter(pk=notification_id).prefetch_related("deliveries").first()
    if notification is None:
        return
    try:
        live.broadcast_notification(notification)
    except Exception:
        logger.warning("could not broadcast notification %s live", notification_id, exc_info=True)
