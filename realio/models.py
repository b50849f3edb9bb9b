"""The events outbox: one row per published event, one per (event, handler) run."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxEvent(models.Model):
    """An event written by a service inside its transaction, relayed to handlers after commit."""

    type = models.CharField(_("type"), max_length=64)
    # Ids and the few values that changed; never personal data.
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("published"), auto_now_add=True)
    # Set when the relay has created the handler runs and queued them.
    relayed_at = models.DateTimeField(_("relayed"), null=True, blank=True)
    # Set when every handler has run to completion.
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(relayed_at__isnull=True),
                         name="outbox_unrelayed_idx"),
            models.Index(fields=["type", "created_at"], name="outbox_type_created_idx"),
        ]

    def __str__(self):
        return f"{self.type} #{self.pk}"


class HandlerRun(models.Model):
    """The record that makes a handler act once per event, however often its task runs."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="runs")
    handler = models.CharField(_("handler"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("handler run")
        verbose_name_plural = _("handler runs")
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="outbox_run_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"),
                         name="outbox_run_pending_idx"),
            # Small: /metrics counts the events with a failed handler on every scrape.
            models.Index(fields=["event"], condition=models.Q(status="failed"), name="outbox_run_failed_idx"),
        ]

    def __str__(self):
        return f"{self.handler} for {self.event_id}: {self.status}"
