"""Agent availability (weekly rules, exceptions, policy) and viewing appointments.

The rule that matters most lives here, in the database: two viewings of one agent (with the
agent's travel buffer) or of one customer never overlap while requested or confirmed. Two
exclusion constraints over `tstzrange` hold it under any concurrency (DESIGN.md section 6).
"""

import secrets

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import validate_time_zone


def new_feed_token():
    return secrets.token_urlsafe(24)


class TsTzRange(Func):
    """tstzrange(start, end): half-open [start, end), immutable so it can be indexed."""

    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class AgentAvailability(models.Model):
    """One agent's booking policy: their time zone, buffer, notice, horizon, slot step and
    whether viewings are confirmed at once (instant) or reviewed."""

    agent = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability",
                                 limit_choices_to={"role": "agent"})
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone],
                                 help_text=_("The weekly hours below are in this time zone."))
    buffer_minutes = models.PositiveSmallIntegerField(
        _("buffer between viewings (minutes)"), default=15, validators=[MaxValueValidator(240)],
        help_text=_("Travel time kept free after each viewing."))
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"), default=120, validators=[MaxValueValidator(60 * 24 * 14)])
    horizon_days = models.PositiveSmallIntegerField(
        _("booking horizon (days)"), default=60, validators=[MinValueValidator(1), MaxValueValidator(365)])
    slot_minutes = models.PositiveSmallIntegerField(
        _("slot step (minutes)"), default=30, validators=[MinValueValidator(5), MaxValueValidator(240)])
    instant_booking = models.BooleanField(
        _("instant booking"), default=False,
        help_text=_("Confirm requests at once; otherwise you confirm or decline each one."))
    feed_token = models.CharField(max_length=64, unique=True, default=new_feed_token, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("availability")
        verbose_name_plural = _("availability")

    def __str__(self):
        return str(_("Availability of %(agent)s") % {"agent": self.agent.name})


class AvailabilityRule(models.Model):
    """Weekly hours: on `weekday` (0 = Monday) from `start` to `end`, in the agent's time zone."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    availability = models.ForeignKey(AgentAvailability, on_delete=models.CASCADE, related_name="rules")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"))

    class Meta:
        verbose_name = _("weekly hours")
        verbose_name_plural = _("weekly hours")
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="availability_rule_start_before_end"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="availability_rule_weekday_range"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class AvailabilityException(models.Model):
    """A day off (no times: the whole day), hours off, or extra hours on one date."""

    class Kind(models.TextChoices):
        OFF = "off", _("Not available")
        EXTRA = "extra", _("Extra hours")

    availability = models.ForeignKey(AgentAvailability, on_delete=models.CASCADE, related_name="exceptions")
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.OFF)
    start = models.TimeField(_("from"), null=True, blank=True, help_text=_("Empty for the whole day."))
    end = models.TimeField(_("until"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("exception")
        verbose_name_plural = _("exceptions")
        ordering = ["date", "start"]
        constraints = [
            # Both times or neither (a whole day); extra hours always have times.
            models.CheckConstraint(
                condition=(Q(start__isnull=True, end__isnull=True, kind="off")
                           | Q(start__isnull=False, end__isnull=False, start__lt=F("end"))),
                name="availability_exception_times"),
        ]
        indexes = [models.Index(fields=["availability", "date"], name="availability_exception_day")]

    def __str__(self):
        times = f" {self.start:%H:%M}–{self.end:%H:%M}" if self.start else ""
        return f"{self.date:%Y-%m-%d}{times} {self.get_kind_display()}"


class ListingBookingOption(models.Model):
    """A listing's own choice of instant booking or review, overriding the agent's default."""

    listing = models.OneToOneField("listings.Listing", on_delete=models.CASCADE, related_name="booking_option")
    instant_booking = models.BooleanField(_("instant booking"))

    class Meta:
        verbose_name = _("listing booking option")
        verbose_name_plural = _("listing booking options")

    def __str__(self):
        return f"{self.listing_id}: {'instant' if self.instant_booking else 'review'}"


class Viewing(models.Model):
    """A customer's appointment to view a listing with its agent."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        CONFIRMED = "confirmed", _("Confirmed")
        DECLINED = "declined", _("Declined")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")
        COMPLETED = "completed", _("Completed")

    ACTIVE = (Status.REQUESTED, Status.CONFIRMED)

    # A listing with viewings is withdrawn, not deleted: its appointments are history.
    listing = models.ForeignKey("listings.Listing", on_delete=models.PROTECT, related_name="viewings")
    # Copied from the listing when booked: the constraint needs it on this row, and a listing
    # handed to another agent keeps its booked viewings with the agent who accepted them.
    # Accounts are anonymised, never deleted (accounts.services.user_delete), so PROTECT.
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="agent_viewings")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="viewings")
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    # end + the agent's buffer at booking time: the agent's constraint covers [start, blocked_until).
    blocked_until = models.DateTimeField(editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.REQUESTED)
    note = models.TextField(_("note"), max_length=1000, blank=True)
    cancel_reason = models.CharField(_("reason"), max_length=500, blank=True)
    # Bumped on every change a calendar must see (iCalendar SEQUENCE).
    sequence = models.PositiveIntegerField(default=0, editable=False)
    reminded_24h_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_1h_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    # When the current time was asked for (a reschedule restarts the review clock).
    requested_at = models.DateTimeField(_("requested at"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("viewing")
        verbose_name_plural = _("viewings")
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="viewing_ends_after_start"),
            models.CheckConstraint(condition=Q(blocked_until__gte=F("end")), name="viewing_buffer_not_negative"),
            models.CheckConstraint(condition=~Q(agent=F("customer")), name="viewing_not_with_oneself"),
            ExclusionConstraint(
                name="viewing_agent_no_overlap",
                expressions=[(TsTzRange("start", "blocked_until"), RangeOperators.OVERLAPS),
                             ("agent", RangeOperators.EQUAL)],
                condition=Q(status__in=["requested", "confirmed"]),
            ),
            ExclusionConstraint(
                name="viewing_customer_no_overlap",
                expressions=[(TsTzRange("start", "end"), RangeOperators.OVERLAPS),
                             ("customer", RangeOperators.EQUAL)],
                condition=Q(status__in=["requested", "confirmed"]),
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "start"], name="viewing_customer_start"),
            models.Index(fields=["agent", "start"], name="viewing_agent_start"),
            models.Index(fields=["status", "requested_at"], name="viewing_status_requested"),
            models.Index(fields=["status", "start"], name="viewing_status_start"),
        ]

    def __str__(self):
        # In the listing's time zone, named: what both parties see on the pages.
        from zoneinfo import ZoneInfo

        local = self.start.astimezone(ZoneInfo(self.listing.time_zone)) if self.start else None
        when = f"{local:%Y-%m-%d %H:%M %Z}" if local else "?"
        return f"{self.listing.title if self.listing_id else '?'} · {when} ({self.get_status_display()})"

    @property
    def is_active(self):
        return self.status in self.ACTIVE


class ViewingStatusChange(models.Model):
    """The history of a viewing: every status change and reschedule, who made it and why."""

    viewing = models.ForeignKey(Viewing, on_delete=models.CASCADE, related_name="history")
    old_status = models.CharField(max_length=16, choices=Viewing.Status.choices, blank=True)
    new_status = models.CharField(max_length=16, choices=Viewing.Status.choices)
    old_start = models.DateTimeField(null=True, blank=True)
    new_start = models.DateTimeField(null=True, blank=True)
    # SET_NULL: the system (expiry, completion) acts with no person.
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.old_status or '∅'} → {self.new_status}"
