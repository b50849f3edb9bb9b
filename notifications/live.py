"""Live updates on /ws/notifications/ through the channel layer, and presence (whether a person
has a page or app open), which offline-only channels consult."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realio.redis import get_redis, key

logger = logging.getLogger(__name__)
# A socket refreshes its presence mark at least this often (seconds); a crashed server's marks
# expire after it.
PRESENCE_TTL = 120


def group_name(user_id):
    """The channel-layer group of one person's sockets, built from a validated integer id."""
    return f"notifications.user.{int(user_id)}"


def notification_payload(notification):
    from notifications.serializers import notification_json

    return notification_json(notification)


def broadcast_notification(notification):
    """Send a new notification and the unread count to the person's open sockets."""
    from notifications import selectors

    layer = get_channel_layer()
    group = group_name(notification.user_id)
    async_to_sync(layer.group_send)(group, {"type": "notification.created",
                                            "notification": notification_payload(notification)})
    async_to_sync(layer.group_send)(group, {"type": "notification.unread",
                                            "count": selectors.unread_count(notification.user_id)})


def broadcast_unread(user_id):
    """The unread count only (after marking read). Best effort: a page reload shows it anyway."""
    from notifications import selectors

    try:
        async_to_sync(get_channel_layer().group_send)(
            group_name(user_id), {"type": "notification.unread", "count": selectors.unread_count(user_id)})
    except Exception:
        logger.warning("could not send the unread count of user %s", user_id, exc_info=True)


def _presence_key(user_id):
    return key("notifications", "online", int(user_id))


def presence_connect(user_id, channel_name):
    client = get_redis()
    with client.pipeline() as pipe:
        pipe.sadd(_presence_key(user_id), channel_name)
        pipe.expire(_presence_key(user_id), PRESENCE_TTL)
        pipe.execute()


def presence_disconnect(user_id, channel_name):
    get_redis().srem(_presence_key(user_id), channel_name)


def is_online(user_id):
    return bool(get_redis().scard(_presence_key(user_id)))
