"""Writes on bookings: availability, viewing requests and their workflow, expiry, completion,
reminders.

Booking a time serialises on the agent's availability row (`select_for_update`), judges
conflicts, then the grid; the database's exclusion constraints are the last word (a customer
booking two agents at once is not serialised by either lock), and their IntegrityError is a
409. Every change publishes its `booking.*` event in the same transaction.
"""

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings import scheduling
from bookings.models import (
    AgentAvailability,
    AvailabilityException,
    AvailabilityRule,
    ListingBookingOption,
    Viewing,
    ViewingStatusChange,
)
from listings.models import Listing
from listings.selectors import listings_visible_to
from realio import events, metrics
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound, conflict_from_integrity_error

logger = logging.getLogger(__name__)
Status = Viewing.Status

DEFAULT_RULES = [(weekday, dt.time(9), dt.time(17)) for weekday in range(5)]  # Mon–Fri 09:00–17:00
REMINDER_LEADS = {"24h": dt.timedelta(hours=24), "1h": dt.timedelta(hours=1)}
MAX_RULES = 50
MAX_EXCEPTIONS = 400

# Who moves a viewing from one status to another. "system" is the beat (expiry, completion).
TRANSITIONS = {
    (Status.REQUESTED, Status.CONFIRMED): "agent",
    (Status.REQUESTED, Status.DECLINED): "agent",
    (Status.REQUESTED, Status.CANCELLED): "party",
    (Status.CONFIRMED, Status.CANCELLED): "party",
    (Status.REQUESTED, Status.EXPIRED): "system",
    (Status.CONFIRMED, Status.COMPLETED): "system",
}


# --- availability -----------------------------------------------------------------------------

def _check_agent(user):
    if not (getattr(user, "is_agent", False) or getattr(user, "sees_everything", False)):
        raise Forbidden(_("Only agents have viewing availability."))


def availability_get(*, agent, lock=False) -> AgentAvailability:
    """The agent's availability, created with the default week (Mon–Fri 09:00–17:00, in the
    agent's own time zone) the first time it is needed. `lock` takes the row lock that every
    booking of this agent serialises on (the caller must be in a transaction)."""
    availability = AgentAvailability.objects.filter(agent=agent)
    if lock:
        availability = availability.select_for_update()
    found = availability.first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            created = AgentAvailability.objects.create(agent=agent, time_zone=agent.time_zone or "UTC")
            AvailabilityRule.objects.bulk_create(
                AvailabilityRule(availability=created, weekday=weekday, start=start, end=end)
                for weekday, start, end in DEFAULT_RULES)
    except IntegrityError:  # created at the same moment by another request
        pass
    return availability.get()


def _time(value, field):
    if isinstance(value, dt.time):
        return value
    try:
        parsed = dt.time.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError(_("%(f)s: give a time as HH:MM.") % {"f": field}, errors={field: [
            _("Give a time as HH:MM.")]}) from None
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


def _clean(instance, field_prefix=""):
    try:
        instance.full_clean(exclude=["availability", "agent"])
    except ValidationError as exc:
        error = ApplicationError.from_validation_error(exc)
        if field_prefix:
            error = ApplicationError(f"{field_prefix}{error.detail}", errors={
                f"{field_prefix}{k}": v for k, v in error.errors.items()})
        raise error from exc


def availability_replace(*, agent, time_zone=None, rules=None, exceptions=None, **policy) -> AgentAvailability:
    """Replace the agent's weekly hours (and exceptions, and policy fields, when given).

    `rules` [{weekday, start, end}], `exceptions` [{date, kind, start?, end?, note?}];
    `policy` any of buffer_minutes, min_notice_minutes, horizon_days, slot_minutes,
    instant_booking. Booked viewings are kept as they are.
    """
    _check_agent(agent)
    allowed = {"buffer_minutes", "min_notice_minutes", "horizon_days", "slot_minutes", "instant_booking"}
    unknown = set(policy) - allowed
    if unknown:
        raise ApplicationError(_("Unknown fields: %(f)s") % {"f": ", ".join(sorted(unknown))})
    with transaction.atomic():
        availability = availability_get(agent=agent, lock=True)
        if time_zone is not None:
            availability.time_zone = time_zone
        for name, value in policy.items():
            if value is not None:
                setattr(availability, name, value)
        _clean(availability)
        availability.save()
        if rules is not None:
            if len(rules) > MAX_RULES:
                raise ApplicationError(_("At most %(n)d weekly periods.") % {"n": MAX_RULES})
            new_rules = []
            for index, rule in enumerate(rules):
                new = AvailabilityRule(availability=availability, weekday=rule.get("weekday"),
                                       start=_time(rule.get("start"), f"rules[{index}].start"),
                                       end=_time(rule.get("end"), f"rules[{index}].end"))
                if new.start >= new.end:
                    raise ApplicationError(_("rules[%(i)d]: the end must be after the start.") % {"i": index},
                                           errors={f"rules[{index}]": [_("The end must be after the start.")]})
                _clean(new, f"rules[{index}].")
                new_rules.append(new)
            availability.rules.all().delete()
            AvailabilityRule.objects.bulk_create(new_rules)
        if exceptions is not None:
            if len(exceptions) > MAX_EXCEPTIONS:
                raise ApplicationError(_("At most %(n)d exceptions.") % {"n": MAX_EXCEPTIONS})
            new_exceptions = []
            for index, item in enumerate(exceptions):
                start, end = item.get("start"), item.get("end")
                new = AvailabilityException(
                    availability=availability, date=item.get("date"), kind=item.get("kind") or "off",
                    start=None if start in (None, "") else _time(start, f"exceptions[{index}].start"),
                    end=None if end in (None, "") else _time(end, f"exceptions[{index}].end"),
                    note=item.get("note") or "")
                if (new.start is None) != (new.end is None) or (new.start and new.start >= new.end) \
                        or (new.kind == AvailabilityException.Kind.EXTRA and new.start is None):
                    raise ApplicationError(
                        _("exceptions[%(i)d]: give both times with the end after the start, or neither for a "
                          "whole day off.") % {"i": index},
                        errors={f"exceptions[{index}]": [_("Give both times, or neither for a whole day off.")]})
                _clean(new, f"exceptions[{index}].")
                new_exceptions.append(new)
            availability.exceptions.all().delete()
            AvailabilityException.objects.bulk_create(new_exceptions)
        events.publish("availability.changed", agent_id=agent.pk)
    return availability


def availability_feed_token_reset(*, agent) -> AgentAvailability:
    """A new private calendar-feed address for the agent (the old one stops working)."""
    _check_agent(agent)
    from bookings.models import new_feed_token

    with transaction.atomic():
        availability = availability_get(agent=agent, lock=True)
        availability.feed_token = new_feed_token()
        availability.save(update_fields=["feed_token", "updated_at"])
    return availability


def listing_booking_mode_set(*, listing, by, instant_booking):
    """Instant booking or review for one listing; None goes back to the agent's default."""
    from listings.services import access_listing_for_change

    with transaction.atomic():
        listing = access_listing_for_change(listing_id=listing.pk, user=by)
        if instant_booking is None:
            ListingBookingOption.objects.filter(listing=listing).delete()
        else:
            ListingBookingOption.objects.update_or_create(listing=listing,
                                                          defaults={"instant_booking": bool(instant_booking)})


def instant_booking_for(listing, availability) -> bool:
    option = ListingBookingOption.objects.filter(listing=listing).values_list("instant_booking", flat=True).first()
    return availability.instant_booking if option is None else option


# --- slots ------------------------------------------------------------------------------------

def _weekly_and_exceptions(availability, first_day, last_day):
    weekly = [scheduling.WeeklyHours(r.weekday, r.start, r.end) for r in availability.rules.all()]
    exceptions = [scheduling.DateException(e.date, e.kind, e.start, e.end)
                  for e in availability.exceptions.filter(date__gte=first_day, date__lte=last_day)]
    return weekly, exceptions


def _intervals(availability, window_start, window_end):
    zone = ZoneInfo(availability.time_zone)
    first = window_start.astimezone(zone).date() - dt.timedelta(days=1)
    last = window_end.astimezone(zone).date() + dt.timedelta(days=1)
    weekly, exceptions = _weekly_and_exceptions(availability, first, last)
    return scheduling.available_intervals(window_start, window_end, zone, weekly, exceptions)


def _busy(agent, window_start, window_end, *, exclude_id=None):
    queryset = Viewing.objects.filter(agent=agent, status__in=Viewing.ACTIVE, start__lt=window_end,
                                      blocked_until__gt=window_start)
    if exclude_id:
        queryset = queryset.exclude(pk=exclude_id)
    return [scheduling.Busy(start, blocked_until) for start, blocked_until in
            queryset.values_list("start", "blocked_until")]


def _duration(duration_minutes):
    minutes = settings.BOOKING_DEFAULT_MINUTES if duration_minutes is None else duration_minutes
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 15 <= minutes <= settings.BOOKING_MAX_MINUTES \
            or minutes % 15:
        raise ApplicationError(
            _("duration_minutes: a multiple of 15 between 15 and %(max)d.") % {"max": settings.BOOKING_MAX_MINUTES},
            errors={"duration_minutes": [_("A multiple of 15 between 15 and %(max)d.")
                                         % {"max": settings.BOOKING_MAX_MINUTES}]})
    return dt.timedelta(minutes=minutes)


def listing_slots_by_day(*, listing, first_day, days=1, duration_minutes=None, now=None, exclude_viewing_id=None):
    """Free viewing times of `listing` on `days` local dates from `first_day`: {date: [(start,
    end)]} with aware datetimes in the listing's time zone; every day is present (maybe empty).
    The same few queries however many days. `exclude_viewing_id` leaves one viewing out (a
    reschedule may move it onto its own old time). Empty when the listing is not on the market."""
    duration = _duration(duration_minutes)
    zone = ZoneInfo(listing.time_zone)
    dates = [first_day + dt.timedelta(days=n) for n in range(days)]
    result = {day: [] for day in dates}
    if listing.status != Listing.Status.ACTIVE or not dates:
        return result
    now = now or timezone.now()
    window_start = dt.datetime.combine(dates[0], dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    window_end = dt.datetime.combine(dates[-1] + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    availability = availability_get(agent=listing.agent)
    earliest = now + dt.timedelta(minutes=availability.min_notice_minutes)
    latest = now + dt.timedelta(days=availability.horizon_days)
    if window_end <= earliest or window_start > latest:
        return result
    intervals = _intervals(availability, window_start, window_end)
    busy = _busy(listing.agent, window_start - dt.timedelta(days=1), window_end + dt.timedelta(days=1),
                 exclude_id=exclude_viewing_id)
    slots = scheduling.free_slots(
        intervals=intervals, busy=busy, duration=duration, step=dt.timedelta(minutes=availability.slot_minutes),
        buffer=dt.timedelta(minutes=availability.buffer_minutes), earliest=earliest, latest=latest,
        window_start=window_start, window_end=window_end)
    for start, end in slots:
        local_start = start.astimezone(zone)
        result.setdefault(local_start.date(), []).append((local_start, end.astimezone(zone)))
    return result


def listing_slots(*, listing, date, duration_minutes=None, now=None, exclude_viewing_id=None):
    """Free viewing times [(start, end)] of `listing` on its local `date` (aware datetimes in
    the listing's time zone). Empty when the listing is not on the market."""
    return listing_slots_by_day(listing=listing, first_day=date, duration_minutes=duration_minutes, now=now,
                                exclude_viewing_id=exclude_viewing_id)[date]


# --- booking ----------------------------------------------------------------------------------

def access_viewing(*, viewing_id, user, lock=False) -> Viewing:
    """The viewing `user` takes part in (customer or agent; staff any), locked when `lock`.
    NotFound for anyone else."""
    queryset = Viewing.objects.select_related("listing", "agent", "customer")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    if not getattr(user, "sees_everything", False):
        queryset = queryset.filter(Q(customer=user) | Q(agent=user))
    try:
        viewing_id = int(viewing_id)
    except (TypeError, ValueError):
        raise NotFound(_("No such viewing.")) from None
    viewing = queryset.filter(pk=viewing_id).first()
    if viewing is None:
        raise NotFound(_("No such viewing."))
    return viewing


def _check_conflicts(*, agent, customer, start, end, blocked_until, exclude_id=None):
    active = Viewing.objects.filter(status__in=Viewing.ACTIVE)
    if exclude_id:
        active = active.exclude(pk=exclude_id)
    if active.filter(agent=agent, start__lt=blocked_until, blocked_until__gt=start).exists():
        raise Conflict(_("The agent is not free at that time."))
    if active.filter(customer=customer, start__lt=end, end__gt=start).exists():
        raise Conflict(_("You already have a viewing at that time."))


def _check_time(*, availability, start, duration, now):
    """400 with the reason when `start` cannot be booked: past, notice, horizon, hours, grid."""
    if start <= now:
        raise ApplicationError(_("start: that time has passed."), errors={"start": [_("That time has passed.")]})
    notice = dt.timedelta(minutes=availability.min_notice_minutes)
    if start < now + notice:
        hours = availability.min_notice_minutes / 60
        message = _("Viewings need at least %(h)s hours' notice.") % {"h": f"{hours:g}"}
        raise ApplicationError(f"start: {message}", errors={"start": [message]})
    if start > now + dt.timedelta(days=availability.horizon_days):
        message = _("Viewings can be booked at most %(d)d days ahead.") % {"d": availability.horizon_days}
        raise ApplicationError(f"start: {message}", errors={"start": [message]})
    intervals = _intervals(availability, start - dt.timedelta(hours=1), start + duration + dt.timedelta(hours=1))
    problem = scheduling.grid_problem(start=start, duration=duration,
                                      step=dt.timedelta(minutes=availability.slot_minutes), intervals=intervals)
    if problem == "outside":
        message = _("The agent does not show homes at that time.")
        raise ApplicationError(f"start: {message}", errors={"start": [message]})
    if problem == "off_grid":
        message = _("Viewings start every %(m)d minutes; pick one of the offered times.") % {
            "m": availability.slot_minutes}
        raise ApplicationError(f"start: {message}", errors={"start": [message]})


def _record(viewing, *, old_status, by, reason="", old_start=None):
    """One history row; the times are kept when the viewing is booked or moved."""
    moved = old_start is not None or not old_status
    ViewingStatusChange.objects.create(
        viewing=viewing, old_status=old_status or "", new_status=viewing.status, by=by, reason=reason,
        old_start=old_start, new_start=viewing.start if moved else None)


def _save_guarded(viewing, **kwargs):
    """Save in a savepoint so an exclusion-constraint violation is a 409, not a broken transaction."""
    try:
        with transaction.atomic():
            viewing.save(**kwargs)
    except IntegrityError as exc:
        raise conflict_from_integrity_error(exc) from exc


@metrics.booking_conflicts("request")
def booking_request(*, customer, listing_id, start, duration_minutes=None, note="", now=None) -> Viewing:
    """Ask for a viewing of a listing at `start` (aware). Confirmed at once under instant
    booking, else `requested` until the agent answers or it expires.

    409 when the agent (with their buffer) or the customer is taken then; 400 when the time is
    past, inside the notice, beyond the horizon, outside the agent's hours or off the grid.
    """
    now = now or timezone.now()
    if timezone.is_naive(start):
        raise ApplicationError(_("start: give the time with its UTC offset."))
    duration = _duration(duration_minutes)
    note = (note or "").strip()
    if len(note) > 1000:
        raise ApplicationError(_("note: at most 1,000 characters."), errors={"note": [_("At most 1,000 characters.")]})
    listing = listings_visible_to(customer).select_related("agent").filter(pk=listing_id).first()
    if listing is None:
        raise NotFound(_("No such listing."))
    if listing.agent_id == customer.pk:
        raise Forbidden(_("You cannot book a viewing of your own listing."))
    if listing.status != Listing.Status.ACTIVE:
        raise ApplicationError(_("listing: this home is not open for viewings."),
                               errors={"listing": [_("This home is not open for viewings.")]})
    start = start.astimezone(dt.UTC).replace(microsecond=0)
    end = start + duration
    # A first look without the lock answers most losers of a race at once, instead of queueing
    # them behind the winner on the agent's row; the check under the lock is the one that counts.
    unlocked = availability_get(agent=listing.agent)
    _check_conflicts(agent=listing.agent, customer=customer, start=start, end=end,
                     blocked_until=end + dt.timedelta(minutes=unlocked.buffer_minutes))
    with transaction.atomic():
        availability = availability_get(agent=listing.agent, lock=True)
        blocked_until = end + dt.timedelta(minutes=availability.buffer_minutes)
        _check_conflicts(agent=listing.agent, customer=customer, start=start, end=end, blocked_until=blocked_until)
        _check_time(availability=availability, start=start, duration=duration, now=now)
        instant = instant_booking_for(listing, availability)
        viewing = Viewing(listing=listing, agent=listing.agent, customer=customer, start=start, end=end,
                          blocked_until=blocked_until, note=note, requested_at=now,
                          status=Status.CONFIRMED if instant else Status.REQUESTED)
        _save_guarded(viewing)
        _record(viewing, old_status="", by=customer)
        events.publish("booking.requested", booking_id=viewing.pk, instant=instant)
        if instant:
            events.publish("booking.confirmed", booking_id=viewing.pk, instant=True)
    return viewing


def _transition(*, viewing_id, by, new_status, reason="", now=None) -> Viewing:
    with transaction.atomic():
        viewing = access_viewing(viewing_id=viewing_id, user=by, lock=True)
        who = TRANSITIONS.get((viewing.status, new_status))
        staff = getattr(by, "sees_everything", False)
        is_agent = viewing.agent_id == by.pk
        is_customer = viewing.customer_id == by.pk
        if who == "agent" and not (is_agent or staff):
            raise Forbidden(_("Only the agent can confirm or decline a viewing."))
        if who is None and new_status in (Status.CONFIRMED, Status.DECLINED) and not (is_agent or staff):
            raise Forbidden(_("Only the agent can confirm or decline a viewing."))
        if who not in ("agent", "party"):
            raise Conflict(_("A %(old)s viewing cannot be %(new)s.") % {
                "old": viewing.get_status_display().lower(), "new": Status(new_status).label.lower()})
        if new_status == Status.CONFIRMED and viewing.start <= (now or timezone.now()):
            raise Conflict(_("This viewing's time has passed."))
        old = viewing.status
        viewing.status = new_status
        viewing.sequence = F("sequence") + 1
        if new_status in (Status.CANCELLED, Status.DECLINED):
            viewing.cancel_reason = (reason or "").strip()[:500]
        _save_guarded(viewing)
        viewing.refresh_from_db(fields=["sequence", "updated_at"])
        _record(viewing, old_status=old, by=by, reason=viewing.cancel_reason)
        payload = {"booking_id": viewing.pk, "old": old}
        if new_status == Status.CANCELLED:
            payload["by"] = "agent" if is_agent else "customer" if is_customer else "staff"
        events.publish(f"booking.{new_status}", **payload)
    return viewing


def booking_confirm(*, viewing_id, by, now=None) -> Viewing:
    return _transition(viewing_id=viewing_id, by=by, new_status=Status.CONFIRMED, now=now)


def booking_decline(*, viewing_id, by, reason="") -> Viewing:
    return _transition(viewing_id=viewing_id, by=by, new_status=Status.DECLINED, reason=reason)


def booking_cancel(*, viewing_id, by, reason="") -> Viewing:
    return _transition(viewing_id=viewing_id, by=by, new_status=Status.CANCELLED, reason=reason)


@metrics.booking_conflicts("reschedule")
def booking_reschedule(*, viewing_id, by, start, now=None) -> Viewing:
    """Move the customer's viewing to `start`, keeping its id and length. One UPDATE of the
    row: the old time is freed only if the new one is taken. Back to `requested` unless the
    listing books instantly."""
    now = now or timezone.now()
    if timezone.is_naive(start):
        raise ApplicationError(_("start: give the time with its UTC offset."))
    start = start.astimezone(dt.UTC).replace(microsecond=0)
    with transaction.atomic():
        viewing = access_viewing(viewing_id=viewing_id, user=by, lock=True)
        if viewing.customer_id != by.pk and not getattr(by, "sees_everything", False):
            raise Forbidden(_("Only the customer can reschedule a viewing."))
        if not viewing.is_active:
            raise Conflict(_("A %(old)s viewing cannot be rescheduled.") % {
                "old": viewing.get_status_display().lower()})
        # The agent's row first, as every booking does, then this viewing again (now current).
        availability = availability_get(agent=viewing.agent, lock=True)
        duration = viewing.end - viewing.start
        end = start + duration
        blocked_until = end + dt.timedelta(minutes=availability.buffer_minutes)
        _check_conflicts(agent=viewing.agent, customer=viewing.customer, start=start, end=end,
                         blocked_until=blocked_until, exclude_id=viewing.pk)
        _check_time(availability=availability, start=start, duration=duration, now=now)
        if viewing.listing.status != Listing.Status.ACTIVE:
            raise ApplicationError(_("listing: this home is not open for viewings."))
        old_start, old_status = viewing.start, viewing.status
        instant = instant_booking_for(viewing.listing, availability)
        viewing.start, viewing.end, viewing.blocked_until = start, end, blocked_until
        viewing.status = Status.CONFIRMED if instant else Status.REQUESTED
        viewing.requested_at = now
        viewing.reminded_24h_at = viewing.reminded_1h_at = None
        viewing.sequence = F("sequence") + 1
        _save_guarded(viewing)
        viewing.refresh_from_db(fields=["sequence", "updated_at"])
        _record(viewing, old_status=old_status, by=by, old_start=old_start)
        events.publish("booking.rescheduled", booking_id=viewing.pk, old_start=old_start.isoformat(),
                       new_start=start.isoformat(), status=viewing.status)
    return viewing


# --- the beat: expiry, completion, reminders ----------------------------------------------------

BATCH = 500


def _system_transition(queryset, new_status, *, reason=""):
    """Move each viewing of `queryset` to `new_status` in batches, each row locked and skipped
    when another worker holds it. Returns how many moved."""
    moved = 0
    while True:
        with transaction.atomic():
            batch = list(queryset.select_for_update(skip_locked=True).order_by("pk")[:BATCH])
            if not batch:
                return moved
            payloads = []
            for viewing in batch:
                old = viewing.status
                viewing.status = new_status
                viewing.save(update_fields=["status", "updated_at"])
                _record(viewing, old_status=old, by=None, reason=reason)
                payloads.append({"booking_id": viewing.pk, "old": old})
            events.publish_many(f"booking.{new_status}", payloads)
            moved += len(batch)


def bookings_expire(*, now=None) -> int:
    """Requests the agent left unanswered for BOOKING_REVIEW_HOURS, or whose time has come,
    expire (freeing the time)."""
    now = now or timezone.now()
    deadline = now - dt.timedelta(hours=settings.BOOKING_REVIEW_HOURS)
    due = Viewing.objects.filter(Q(requested_at__lte=deadline) | Q(start__lte=now), status=Status.REQUESTED)
    return _system_transition(due, Status.EXPIRED, reason="unanswered")


def bookings_complete(*, now=None) -> int:
    """Confirmed viewings whose time is over are completed."""
    now = now or timezone.now()
    return _system_transition(Viewing.objects.filter(status=Status.CONFIRMED, end__lte=now), Status.COMPLETED)


def reminders_send(*, now=None) -> int:
    """Publish `booking.reminder_due` {booking_id, lead} once per confirmed viewing and lead
    (24 h, 1 h) when its time comes. A viewing booked inside a lead gets no reminder for it
    (the confirmation is fresher); its mark is set all the same, so nothing is sent later."""
    now = now or timezone.now()
    published = 0
    leads = sorted(REMINDER_LEADS.items(), key=lambda item: item[1], reverse=True)
    for index, (lead, delta) in enumerate(leads):
        field = f"reminded_{lead}_at"
        # When a shorter lead is already due (the beat was down), only that one is sent.
        shorter = leads[index + 1][1] if index + 1 < len(leads) else dt.timedelta(0)
        while True:
            with transaction.atomic():
                batch = list(
                    Viewing.objects.filter(status=Status.CONFIRMED, start__gt=now, start__lte=now + delta,
                                           **{f"{field}__isnull": True})
                    .select_for_update(skip_locked=True).order_by("pk").only("pk", "requested_at", "start")[:BATCH])
                if not batch:
                    break
                Viewing.objects.filter(pk__in=[v.pk for v in batch]).update(**{field: now})
                payloads = [{"booking_id": v.pk, "lead": lead} for v in batch
                            if v.requested_at < v.start - delta and v.start > now + shorter]
                if payloads:
                    events.publish_many("booking.reminder_due", payloads)
                published += len(payloads)
    return published


def bookings_sweep(*, now=None) -> dict:
    """The periodic pass: expire, complete, remind."""
    return {"expired": bookings_expire(now=now), "completed": bookings_complete(now=now),
            "reminded": reminders_send(now=now)}


# --- account data -------------------------------------------------------------------------------

def viewings_on_account_delete(user):
    """A deleted account's upcoming viewings are cancelled (the counterpart is told by the
    events); past ones stay as history with "deleted user" shown."""
    upcoming = Viewing.objects.filter(Q(customer=user) | Q(agent=user), status__in=Viewing.ACTIVE)
    for viewing in upcoming.select_for_update():
        old = viewing.status
        viewing.status = Status.CANCELLED
        viewing.cancel_reason = "account deleted"
        viewing.note = ""
        viewing.sequence = F("sequence") + 1
        viewing.save(update_fields=["status", "cancel_reason", "note", "sequence", "updated_at"])
        _record(viewing, old_status=old, by=None, reason="account deleted")
        events.publish("booking.cancelled", booking_id=viewing.pk, old=old, by="system")
    # Notes are the customer's words: erased from past viewings too.
    Viewing.objects.filter(customer=user).exclude(note="").update(note="")
