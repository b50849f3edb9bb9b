"""Reads of notifications for the API, pages, sockets and export."""

from django.db.models import Prefetch

from notifications import kinds
from notifications.models import Channel, Delivery, Device, Notification, Preference, QuietHours


def notifications_of(user, *, unread_only=False):
    queryset = Notification.objects.filter(user=user).prefetch_related(
        Prefetch("deliveries", queryset=Delivery.objects.order_by("channel")))
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset.order_by("-created_at", "-id")


def unread_count(user_id):
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def live_devices_of(user):
    return Device.objects.filter(user=user, deactivated_at__isnull=True).order_by("pk")


def devices_of(user):
    return Device.objects.filter(user=user).order_by("-last_seen_at", "-id")


def preferences_table(user):
    """Every kind with its label and each optional channel's effective choice, plus quiet hours:
    {"kinds": [{kind, label, channels: {in_app, email, sms, push}}], "quiet_hours": {start, end}|None}."""
    chosen = {(p.kind, p.channel): p.enabled for p in Preference.objects.filter(user=user)}
    rows = []
    for kind in kinds.KINDS.values():
        channels = {Channel.IN_APP.value: True}
        for channel in kinds.OPTIONAL_CHANNELS:
            channels[channel.value] = chosen.get((kind.name, channel.value), channel in kind.defaults)
        rows.append({"kind": kind.name, "label": str(kind.label), "channels": channels})
    quiet = QuietHours.objects.filter(user=user).first()
    return {
        "kinds": rows,
        "quiet_hours": {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")} if quiet else None,
        "time_zone": user.time_zone,
    }


def notifications_export(user):
    """A person's notifications (with deliveries), preferences and devices (account export)."""
    return {
        "notifications": [
            {"id": n.pk, "kind": n.kind, "title": n.title, "body": n.body, "url": n.url,
             "created_at": n.created_at.isoformat(), "read_at": n.read_at.isoformat() if n.read_at else None,
             "deliveries": [{"channel": d.channel, "status": d.status, "attempts": d.attempts,
                             "last_error": d.last_error} for d in n.deliveries.all()]}
            for n in notifications_of(user).iterator(chunk_size=500)
        ],
        "preferences": preferences_table(user),
        "devices": [{"id": d.pk, "platform": d.platform, "created_at": d.created_at.isoformat(),
                     "last_seen_at": d.last_seen_at.isoformat(), "active": d.active}
                    for d in devices_of(user)],
    }
