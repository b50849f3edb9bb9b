"""Writes on notifications: creating them with a delivery per channel (preferences, quiet
hours, digests), delivering each on its channel with retries, reading, preferences, devices,
one-click unsubscribe, provider callbacks, export and erasure."""

import datetime
import logging
import random
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notifications import kinds, live
from notifications.backends import PermanentError, Skip, TransientError, backend_for
from notifications.models import Channel, Delivery, Device, Notification, Preference, QuietHours
from notifications.text import render_plain
from realio import metrics
from realio.errors import ApplicationError, NotFound

logger = logging.getLogger(__name__)
Status = Delivery.Status
UNSUBSCRIBE_SALT = "notifications-unsubscribe"


# --- creating -----------------------------------------------------------------------------------

def notify(*, user, kind, source, context=None, url="", data=None, collapse_key="", now=None):
    """Create `kind`'s notification for `user` once per `source`, with one delivery per channel.

    `source` names the cause ("event:<outbox id>"): calling again with it returns the stored
    notification and creates nothing. `context` feeds the kind's title/body templates (rendered
    in the person's language); `data` is kept with the notification (email templates read it).
    Deliveries are planned by the person's preferences and quiet hours and queued after commit.
    Returns the notification, or None for an inactive account.
    """
    kind_def = kinds.get(kind)
    if not user.is_active:
        return None
    now = now or timezone.now()
    data = dict(data or {})
    with transaction.atomic():
        existing = Notification.objects.filter(source=source, user=user, kind=kind).first()
        if existing is not None:
            return existing
        title, body = render_text(kind_def, user, context or {})
        if kind_def.collapse_window and collapse_key:
            collapsed = _collapse(user=user, kind_def=kind_def, collapse_key=collapse_key, source=source,
                                  title=title, body=body, url=url, data=data, now=now)
            if collapsed is not None:
                return collapsed
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    user=user, kind=kind, source=source, title=title[:200], body=body[:2000], url=url[:500],
                    data=data, collapse_key=collapse_key)
        except IntegrityError:  # a concurrent run for the same source won
            return Notification.objects.get(source=source, user=user, kind=kind)
        deliveries = Delivery.objects.bulk_create(plan_deliveries(notification, kind_def, now=now))
        due = [d.pk for d in deliveries if d.status == Status.PENDING and d.due_at <= now]
        transaction.on_commit(lambda: queue_deliveries(due))
    return notification


def _collapse(*, user, kind_def, collapse_key, source, title, body, url, data, now):
    """A burst: fold this into the unread notification of the same key, if one is recent."""
    burst = (Notification.objects.select_for_update()
             .filter(user=user, kind=kind_def.name, collapse_key=collapse_key, read_at__isnull=True,
                     created_at__gte=now - kind_def.collapse_window).order_by("-created_at").first())
    if burst is None:
        return None
    sources = burst.data.get("collapsed_sources", [])
    if source in sources:
        return burst
    burst.data = {**data, "collapsed_sources": [*sources, source][-50:], "count": burst.data.get("count", 1) + 1}
    burst.title, burst.body, burst.url = title[:200], body[:2000], url[:500]
    burst.save(update_fields=["data", "title", "body", "url"])
    notification_id = burst.pk
    transaction.on_commit(lambda: _rebroadcast(notification_id))
    return burst


def _rebroadcast(notification_id):
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is not None:
        try:
            live.broadcast_notification(notification)
        except Exception:
            logger.warning("could not broadcast notification %s", notification_id, exc_info=True)


def render_text(kind_def, user, context):
    """The kind's title and body, in the person's language."""
    context = {**context, "user": user, "site_name": settings.SITE_NAME}
    with translation.override(user.language or settings.LANGUAGE_CODE):
        title = render_plain(kind_def.template("title.txt"), context)
        body = render_plain(kind_def.template("body.txt"), context)
    return " ".join(title.split()), body.strip()


def plan_deliveries(notification, kind_def, *, now):
    """One unsaved Delivery per channel: pending (due now, or later for quiet hours and
    digests) or skipped with the reason."""
    user = notification.user
    choices = preferences_of(user)
    quiet = QuietHours.objects.filter(user=user).first()
    has_device = Device.objects.filter(user=user, deactivated_at__isnull=True).exists()
    rows = []
    for channel in Channel.values:
        row = Delivery(notification=notification, channel=channel, due_at=now, queued_at=now)
        reason = None
        if channel != Channel.IN_APP and not choices.get((kind_def.name, channel), channel in kind_def.defaults):
            reason = _("turned off in preferences")
        elif channel == Channel.SMS and not user.phone:
            reason = _("no phone number")
        elif channel == Channel.EMAIL and not user.email:
            reason = _("no email address")
        elif channel == Channel.PUSH and not has_device:
            reason = _("no device registered for push")
        if reason:
            row.status, row.last_error = Status.SKIPPED, str(reason)
        else:
            if kind_def.delay and channel != Channel.IN_APP:
                row.due_at = now + kind_def.delay
            if channel == Channel.EMAIL and kind_def.digest:
                row.due_at = now + timedelta(seconds=settings.NOTIFICATIONS_DIGEST_DELAY_SECONDS)
            if not kind_def.urgent and channel in settings.NOTIFICATIONS_QUIET_CHANNELS and quiet is not None:
                row.due_at = quiet_hours_end(quiet, user.time_zone, row.due_at)
            if row.due_at > now:
                row.queued_at = None  # the dispatcher queues it when it is due
        rows.append(row)
    return rows


def quiet_hours_end(quiet, time_zone, when):
    """`when`, or the end of the quiet hours (in the person's time zone) if it falls inside them."""
    try:
        zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = datetime.UTC
    local = when.astimezone(zone)
    start, end, clock = quiet.start, quiet.end, local.time()
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return when
    end_day = local.date() if (start < end or clock < end) else local.date() + timedelta(days=1)
    # Built on the wall clock of that day: a DST change inside the quiet hours is honoured.
    return datetime.datetime.combine(end_day, end, tzinfo=zone).astimezone(datetime.UTC)


# --- delivering -----------------------------------------------------------------------------------

def queue_deliveries(delivery_ids, countdown=None):
    """Queue a delivery task per id. A broker outage is logged; the dispatcher requeues them."""
    from notifications.tasks import deliver

    for delivery_id in delivery_ids:
        try:
            deliver.apply_async((delivery_id,), countdown=countdown, retry=False)
        except Exception:
            logger.warning("could not queue delivery %s; the dispatcher will", delivery_id, exc_info=True)


def backoff_seconds(attempts):
    """Exponential backoff with jitter after `attempts` failures, capped."""
    base = min(settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS * 2 ** (attempts - 1),
               settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS)
    return base + random.uniform(0, base / 4)


def deliver(delivery_id, *, now=None):
    """Send one pending, due delivery on its channel, at most once.

    The delivery's row is locked (SKIP LOCKED) and its status compared before anything is sent,
    and the outcome is written in the same transaction: a second task for it skips it while the
    first holds it, then finds it no longer pending. A digest email takes the person's other due
    digest emails along. Returns the countdown of a retry, or None.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("notification__user").filter(pk=delivery_id).first())
        if delivery is None or delivery.status != Status.PENDING or delivery.due_at > now:
            return None
        notification, user = delivery.notification, delivery.notification.user
        kind_def = kinds.KINDS.get(notification.kind)
        batch = [delivery]
        if kind_def is not None and kind_def.digest and delivery.channel == Channel.EMAIL:
            digest_kinds = [k.name for k in kinds.KINDS.values() if k.digest]
            batch += list(Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                          .select_related("notification")
                          .filter(channel=Channel.EMAIL, status=Status.PENDING, due_at__lte=now,
                                  notification__user=user, notification__kind__in=digest_kinds)
                          .exclude(pk=delivery.pk).order_by("notification__created_at", "pk"))
        try:
            if kind_def is None:
                raise PermanentError(f"unknown notification kind {notification.kind!r}")
            if not user.is_active:
                raise Skip(_("account closed"))
            if delivery.channel in kind_def.offline_only and live.is_online(user.pk):
                raise Skip(_("the recipient was online"))
            result = backend_for(delivery.channel).send(user, [d.notification for d in batch])
        except Skip as exc:
            _finish(batch, status=Status.SKIPPED, error=str(exc), now=now)
            return None
        except PermanentError as exc:
            logger.warning("delivery %s failed for good: %s", delivery_id, exc)
            _finish(batch, status=Status.FAILED, error=str(exc), now=now)
            return None
        except Exception as exc:  # TransientError, and anything unforeseen: retried up to the maximum
            level = logging.WARNING if isinstance(exc, TransientError) else logging.ERROR
            logger.log(level, "delivery %s failed (attempt %s)", delivery_id, delivery.attempts + 1,
                       exc_info=not isinstance(exc, TransientError))
            return _retry_or_fail(batch, error=f"{exc.__class__.__name__}: {exc}", now=now)
        status = Status.DELIVERED if result.delivered else Status.SENT
        for row in batch:
            row.status, row.attempts, row.provider_message_id = status, row.attempts + 1, result.message_id[:255]
            row.sent_at = now
            row.delivered_at = now if result.delivered else None
            row.last_error, row.updated_at = "", now
        Delivery.objects.bulk_update(batch, ["status", "attempts", "provider_message_id", "sent_at", "delivered_at",
                                             "last_error", "updated_at"])
        metrics.deliveries(batch, status)
    return None


def _finish(batch, *, status, error, now):
    for row in batch:
        row.status, row.last_error, row.updated_at = status, error[:2000], now
        if status == Status.FAILED:
            row.attempts += 1
            row.failed_at = now
    metrics.deliveries(batch, status)
    Delivery.objects.bulk_update(batch, ["status", "last_error", "attempts", "failed_at", "updated_at"])


def _retry_or_fail(batch, *, error, now):
    delay = None
    for row in batch:
        row.attempts += 1
        row.last_error, row.updated_at = error[:2000], now
        if row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            row.status, row.failed_at = Status.FAILED, now
        else:
            delay = backoff_seconds(row.attempts) if delay is None else delay
            row.due_at = now + timedelta(seconds=delay)
            # Short waits are a countdown on the queued task; longer ones wait for the dispatcher
            # (a countdown beyond the broker's visibility timeout would run twice).
            row.queued_at = now if delay <= settings.NOTIFICATIONS_COUNTDOWN_MAX_SECONDS else None
        metrics.deliveries([row], "failed" if row.status == Status.FAILED else "retry")
    Delivery.objects.bulk_update(batch, ["attempts", "last_error", "status", "failed_at", "due_at", "queued_at",
                                         "updated_at"])
    if delay is not None and delay <= settings.NOTIFICATIONS_COUNTDOWN_MAX_SECONDS:
        return delay
    return None


def dispatch_due(*, now=None, batch_size=1000):
    """Queue the pending deliveries that are due and have no live task: those waiting for the
    end of quiet hours, a digest or a long backoff, and those a broker outage left behind.
    Safe to run often and twice at once. Returns how many it queued."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_REQUEUE_AFTER_SECONDS)
    queued, last_pk = 0, 0
    while True:
        with transaction.atomic():
            ids = list(Delivery.objects.select_for_update(skip_locked=True)
                       .filter(status=Status.PENDING, due_at__lte=now, pk__gt=last_pk)
                       .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=stale))
                       .order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return queued
            Delivery.objects.filter(pk__in=ids).update(queued_at=now)
            transaction.on_commit(lambda ids=ids: queue_deliveries(ids))
        last_pk = ids[-1]
        queued += len(ids)


def deliveries_retry(*, delivery_ids):
    """Give failed deliveries a fresh start (the admin's action). Returns how many."""
    with transaction.atomic():
        ids = list(Delivery.objects.select_for_update().filter(pk__in=delivery_ids, status=Status.FAILED)
                   .values_list("pk", flat=True))
        now = timezone.now()
        Delivery.objects.filter(pk__in=ids).update(status=Status.PENDING, attempts=0, due_at=now, queued_at=now,
                                                   failed_at=None, updated_at=now)
        transaction.on_commit(lambda: queue_deliveries(ids))
    return len(ids)


# Provider states in the order a message goes through them; a late callback never goes back.
SMS_STATES = {
    "accepted": Status.SENT, "queued": Status.SENT, "sending": Status.SENT, "sent": Status.SENT,
    "delivered": Status.DELIVERED, "read": Status.DELIVERED,
    "undelivered": Status.FAILED, "failed": Status.FAILED, "canceled": Status.FAILED,
}
STATUS_RANK = {Status.PENDING: 0, Status.SENT: 1, Status.DELIVERED: 2, Status.FAILED: 2, Status.SKIPPED: 2}


def sms_status_update(*, message_id, provider_status, error_code=""):
    """Apply an SMS provider's status callback to its delivery. Returns the delivery or None."""
    status = SMS_STATES.get((provider_status or "").lower())
    if not message_id or status is None:
        return None
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update()
                    .filter(channel=Channel.SMS, provider_message_id=message_id).first())
        if delivery is None:
            return None
        if STATUS_RANK[status] <= STATUS_RANK[delivery.status] and status != delivery.status:
            return delivery
        now = timezone.now()
        delivery.status = status
        if status == Status.DELIVERED:
            delivery.delivered_at = now
        elif status == Status.FAILED:
            delivery.failed_at = now
            delivery.last_error = f"{provider_status} (error {error_code})" if error_code else provider_status
        delivery.save(update_fields=["status", "delivered_at", "failed_at", "last_error", "updated_at"])
    return delivery


# --- reading ----------------------------------------------------------------------------------

def notification_mark_read(*, user, notification_id):
    """Mark one of the caller's notifications read (again is harmless); 404 for anyone else's."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id, user=user).first()
        if notification is None:
            raise NotFound(_("Notification not found."))
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
            transaction.on_commit(lambda: live.broadcast_unread(user.pk))
    return notification


def notifications_mark_all_read(*, user):
    """Mark all of the caller's notifications read. Returns how many were unread."""
    with transaction.atomic():
        count = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
        if count:
            transaction.on_commit(lambda: live.broadcast_unread(user.pk))
    return count


# --- preferences ------------------------------------------------------------------------------------

def preferences_of(user):
    """{(kind, channel): enabled} for the choices the person has made."""
    return {(kind, channel): enabled for kind, channel, enabled in
            Preference.objects.filter(user=user).values_list("kind", "channel", "enabled")}


def preferences_update(*, user, choices=None, quiet_hours=...):
    """Set channel choices {kind: {channel: bool}} and/or quiet hours ({start, end} as times, or
    None to remove them). In-app cannot be turned off: it is the notification centre itself."""
    errors = {}
    for kind, channels in (choices or {}).items():
        if kind not in kinds.KINDS:
            errors.setdefault("kinds", []).append(_("Unknown kind: %(kind)s") % {"kind": kind})
            continue
        for channel, enabled in channels.items():
            if channel not in kinds.OPTIONAL_CHANNELS:
                message = (_("In-app notifications cannot be turned off.") if channel == Channel.IN_APP
                           else _("Unknown channel: %(channel)s") % {"channel": channel})
                errors.setdefault("kinds", []).append(message)
            elif not isinstance(enabled, bool):
                errors.setdefault("kinds", []).append(_("%(kind)s/%(channel)s: give true or false.")
                                                      % {"kind": kind, "channel": channel})
    if quiet_hours not in (..., None) and quiet_hours.get("start") == quiet_hours.get("end"):
        errors.setdefault("quiet_hours", []).append(_("Quiet hours must start and end at different times."))
    if errors:
        field, messages = next(iter(errors.items()))
        raise ApplicationError(f"{field}: {messages[0]}", errors=errors)
    with transaction.atomic():
        for kind, channels in (choices or {}).items():
            for channel, enabled in channels.items():
                Preference.objects.update_or_create(user=user, kind=kind, channel=channel,
                                                    defaults={"enabled": enabled})
        if quiet_hours is None:
            QuietHours.objects.filter(user=user).delete()
        elif quiet_hours is not ...:
            QuietHours.objects.update_or_create(user=user, defaults={"start": quiet_hours["start"],
                                                                     "end": quiet_hours["end"]})


# --- devices --------------------------------------------------------------------------------------

def device_register(*, user, token, platform):
    """Register (or re-register) a push token for the caller. A token seen under another account
    moves to this one: the install signed in as someone else. Returns (device, created)."""
    token = (token or "").strip()
    if not token or len(token) > 1024:
        message = _("Give the push token the app received (at most 1024 characters).")
        raise ApplicationError(f"token: {message}", errors={"token": [message]})
    if platform not in Device.Platform.values:
        message = _("Choose android, ios or web.")
        raise ApplicationError(f"platform: {message}", errors={"platform": [message]})
    now = timezone.now()
    with transaction.atomic():
        device, created = Device.objects.select_for_update().get_or_create(
            token=token, defaults={"user": user, "platform": platform, "last_seen_at": now})
        if not created:
            device.user, device.platform, device.last_seen_at = user, platform, now
            device.deactivated_at, device.deactivation_reason = None, ""
            device.save()
    return device, created


def device_delete(*, user, device_id):
    deleted, _rows = Device.objects.filter(pk=device_id, user=user).delete()
    if not deleted:
        raise NotFound(_("Device not found."))


def device_deactivate(*, device, reason):
    """The provider says this token is dead: no more pushes to it until the app registers again."""
    Device.objects.filter(pk=device.pk, deactivated_at__isnull=True).update(
        deactivated_at=timezone.now(), deactivation_reason=reason[:255])


# --- one-click unsubscribe ---------------------------------------------------------------------------

def unsubscribe_token(user, notifications):
    kinds_in = sorted({n.kind for n in notifications})
    data = {}
    if len(notifications) == 1 and "saved_search_id" in notifications[0].data:
        data["saved_search_id"] = notifications[0].data["saved_search_id"]
    return signing.dumps({"u": user.pk, "k": kinds_in, "d": data}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(user, notifications):
    return f"{settings.SITE_URL.rstrip('/')}/notifications/unsubscribe/{unsubscribe_token(user, notifications)}/"


def unsubscribe(*, token):
    """Do what an email's one-click unsubscribe link promises, without sign-in: by default the
    kind's email is turned off; a kind may do otherwise (a saved search stops its alerts).
    Returns the kinds' labels. Doing it twice is harmless."""
    from accounts.models import User

    try:
        payload = signing.loads(str(token or ""), salt=UNSUBSCRIBE_SALT)
        user_id, names, data = int(payload["u"]), list(payload["k"]), dict(payload.get("d") or {})
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        message = _("This unsubscribe link is not valid.")
        raise ApplicationError(message, errors={"token": [message]}) from None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound(_("This account no longer exists."))
    labels = []
    with transaction.atomic():
        for name in names:
            kind_def = kinds.KINDS.get(name)
            if kind_def is None:
                continue
            if kind_def.unsubscribe is not None and data:
                kind_def.unsubscribe(user, data)
            else:
                Preference.objects.update_or_create(user=user, kind=name, channel=Channel.EMAIL,
                                                    defaults={"enabled": False})
            labels.append(str(kind_def.label))
    return labels


# --- export and erasure (accounts registries) --------------------------------------------------------

def notifications_erase(user):
    """Delete a person's devices, notifications (and their deliveries) and preferences."""
    Device.objects.filter(user=user).delete()
    Notification.objects.filter(user=user).delete()
    Preference.objects.filter(user=user).delete()
    QuietHours.objects.filter(user=user).delete()
