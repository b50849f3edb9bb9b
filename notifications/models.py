"""Notifications, their delivery by channel, people's push devices and channel preferences."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In the app")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push")


class Notification(models.Model):
    """One thing to tell one person, created once per (source, user, kind): `source` names what
    caused it (an outbox event, "event:<id>"), so a handler that runs twice creates nothing twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
                             verbose_name=_("user"))
    kind = models.CharField(_("kind"), max_length=64)
    source = models.CharField(_("source"), max_length=128)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True, max_length=2000)
    url = models.CharField(_("link"), max_length=500, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    # Kinds that collapse bursts (chat) update an unread notification with the same key instead
    # of creating another one.
    collapse_key = models.CharField(_("collapse key"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "user", "kind"], name="notification_once_per_source"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_recent"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_user_unread"),
        ]

    def __str__(self):
        return f"{self.kind} → {self.user_id}: {self.title}"


class Delivery(models.Model):
    """The fate of one notification on one channel. Every notification has one per channel:
    `skipped` (with the reason in `last_error`) when preferences, quiet channels or missing
    contact details rule it out."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries",
                                     verbose_name=_("notification"))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True, max_length=2000)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True, db_index=True)
    # Not sent before this time: quiet hours, the digest's gathering delay, a retry's backoff.
    due_at = models.DateTimeField(_("due"))
    # When a task was last queued for it; the dispatcher requeues only what is overdue and stale.
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["notification_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_once_per_channel"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="delivery_channel_valid"),
            models.CheckConstraint(condition=Q(status__in=["pending", "sent", "delivered", "failed", "skipped"]),
                                   name="delivery_status_valid"),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="delivery_pending_due"),
        ]

    def __str__(self):
        return f"{self.notification_id}/{self.channel}: {self.status}"


class Device(models.Model):
    """A push token of one app install or browser; deactivated when the provider says it is dead."""

    class Platform(models.TextChoices):
        ANDROID = "android", _("Android")
        IOS = "ios", _("iOS")
        WEB = "web", _("Web")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices",
                             verbose_name=_("user"))
    token = models.CharField(_("token"), max_length=1024, unique=True)  # FCM tokens are ~160 characters
    platform = models.CharField(_("platform"), max_length=8, choices=Platform.choices)
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"))
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)
    deactivation_reason = models.CharField(_("deactivation reason"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(platform__in=["android", "ios", "web"]), name="device_platform_valid"),
        ]
        indexes = [models.Index(fields=["user"], condition=Q(deactivated_at__isnull=True), name="device_user_active")]

    def __str__(self):
        return f"{self.platform} device of {self.user_id}"

    @property
    def active(self):
        return self.deactivated_at is None


class Preference(models.Model):
    """A person's choice for one kind on one channel; without a row the kind's default holds."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_preferences", verbose_name=_("user"))
    kind = models.CharField(_("kind"), max_length=64)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"))

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "channel"], name="preference_once_per_kind_channel"),
        ]

    def __str__(self):
        return f"{self.user_id} {self.kind}/{self.channel}: {self.enabled}"


class QuietHours(models.Model):
    """Hours, in the person's own time zone, when non-urgent notifications on interrupting
    channels wait. `start` after `end` spans midnight (22:00 → 07:00)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="quiet_hours", verbose_name=_("user"))
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"))

    class Meta:
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")
        constraints = [models.CheckConstraint(condition=~Q(start=models.F("end")), name="quiet_hours_not_empty")]

    def __str__(self):
        return f"{self.start:%H:%M}–{self.end:%H:%M}"
