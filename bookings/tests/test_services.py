"""The booking rules through the services: conflicts (409) before time rules (400), instant and
review, who may do what, rescheduling atomically, history, events, the beat's expiry,
completion and reminders, and account deletion."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from accounts.services import user_delete
from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from bookings import services
from bookings.models import AvailabilityException, Viewing, ViewingStatusChange
from bookings.tests.factories import ViewingFactory
from listings.models import Listing
from listings.services import listing_delete
from listings.tests.factories import ListingFactory
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
# A Monday morning; the services take `now`, so the calendar is fixed.
NOW = dt.datetime(2027, 1, 4, 7, 0, tzinfo=PARIS)
Status = Viewing.Status


def at(day_offset, hour, minute=0):
    """A Paris wall-clock time `day_offset` days after NOW's date."""
    day = NOW.date() + dt.timedelta(days=day_offset)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


@pytest.fixture
def agent():
    return AgentFactory(time_zone="Europe/Paris")


@pytest.fixture
def listing(agent):
    return ListingFactory(agent=agent)


@pytest.fixture
def customer():
    return UserFactory()


def book(customer, listing, start, **kwargs):
    return services.booking_request(customer=customer, listing_id=listing.pk, start=start, now=NOW, **kwargs)


def events(kind):
    return [e.payload for e in OutboxEvent.objects.filter(type=kind).order_by("pk")]


# --- availability -----------------------------------------------------------------------------

def test_a_new_agent_starts_with_weekdays_nine_to_five_in_their_time_zone(agent):
    availability = services.availability_get(agent=agent)
    assert availability.time_zone == "Europe/Paris"
    assert [(r.weekday, r.start, r.end) for r in availability.rules.all()] == [
        (d, dt.time(9), dt.time(17)) for d in range(5)]
    assert (availability.buffer_minutes, availability.min_notice_minutes, availability.horizon_days) == (15, 120, 60)


def test_availability_replace_checks_every_rule_and_changes_nothing_on_error(agent):
    services.availability_get(agent=agent)
    with pytest.raises(ApplicationError) as error:
        services.availability_replace(agent=agent, time_zone="Europe/Paris", rules=[
            {"weekday": 0, "start": "10:00", "end": "12:00"}, {"weekday": 1, "start": "14:00", "end": "13:00"}])
    assert "rules[1]" in error.value.detail
    assert services.availability_get(agent=agent).rules.count() == 5
    with pytest.raises(ApplicationError):
        services.availability_replace(agent=agent, time_zone="Mars/Olympus", rules=[])
    with pytest.raises(ApplicationError):
        services.availability_replace(agent=agent, rules=[{"weekday": 9, "start": "10:00", "end": "12:00"}])
    with pytest.raises(ApplicationError):
        services.availability_replace(agent=agent, exceptions=[{"date": "2027-01-05", "kind": "extra"}])
    assert services.availability_get(agent=agent).exceptions.count() == 0


def test_customers_have_no_availability(customer):
    with pytest.raises(Forbidden):
        services.availability_replace(agent=customer, rules=[])


# --- conflicts first (409), then the time rules (400) ----------------------------------------------

def test_instant_booking_confirms_at_once_and_review_waits(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    assert viewing.status == Status.REQUESTED
    assert events("booking.requested") == [{"booking_id": viewing.pk, "instant": False}]
    services.availability_replace(agent=agent, instant_booking=True)
    other = book(UserFactory(), listing, at(1, 11))
    assert other.status == Status.CONFIRMED
    assert events("booking.confirmed") == [{"booking_id": other.pk, "instant": True}]
    # a listing's own choice overrides the agent's default
    services.listing_booking_mode_set(listing=listing, by=agent, instant_booking=False)
    assert book(UserFactory(), listing, at(1, 12)).status == Status.REQUESTED


def test_the_agents_buffer_keeps_viewings_apart(listing, customer):
    book(customer, listing, at(1, 10))  # 10:00–10:30, agent held until 10:45
    with pytest.raises(Conflict, match="agent is not free"):
        book(UserFactory(), listing, at(1, 10, 30))
    with pytest.raises(Conflict, match="agent is not free"):
        book(UserFactory(), listing, at(1, 9, 30))  # would end at 10:00 + buffer 10:15
    assert book(UserFactory(), listing, at(1, 11)).pk


def test_an_overlap_is_409_whatever_the_alignment(listing, customer):
    book(customer, listing, at(1, 10))
    # 10:10 is off the grid, but the conflict is judged first
    with pytest.raises(Conflict):
        book(UserFactory(), listing, at(1, 10, 10))
    # and in the past too
    with pytest.raises(Conflict):
        services.booking_request(customer=UserFactory(), listing_id=listing.pk, start=at(1, 10, 10),
                                 now=at(2, 0))


def test_a_customer_cannot_be_in_two_viewings_at_once(listing, customer):
    book(customer, listing, at(1, 10))
    elsewhere = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    with pytest.raises(Conflict, match="already have a viewing"):
        book(customer, elsewhere, at(1, 10))
    assert book(customer, elsewhere, at(1, 10, 30)).pk  # the customer needs no buffer


def test_a_cancelled_viewing_frees_its_time(listing, customer):
    viewing = book(customer, listing, at(1, 10))
    services.booking_cancel(viewing_id=viewing.pk, by=customer, reason="changed my mind")
    assert book(UserFactory(), listing, at(1, 10)).pk


@pytest.mark.parametrize(("start", "now", "message"), [
    (at(0, 6), NOW, "passed"),
    (at(0, 8, 30), NOW, "notice"),
    (at(61, 10), NOW, "ahead"),
    (at(1, 18), NOW, "does not show homes"),
    (at(5, 10), NOW, "does not show homes"),  # Saturday
    (at(1, 16, 45), NOW, "does not show homes"),  # would end after 17:00
    (at(1, 10, 10), NOW, "every 30 minutes"),
])
def test_times_that_cannot_be_booked_are_400_with_the_reason(listing, customer, start, now, message):
    with pytest.raises(ApplicationError, match=message) as error:
        services.booking_request(customer=customer, listing_id=listing.pk, start=start, now=now)
    assert error.value.status_code == 400
    assert not Viewing.objects.exists()


def test_exceptions_close_and_open_hours(agent, listing, customer):
    day = at(1, 0).date()
    services.availability_replace(agent=agent, exceptions=[
        {"date": day, "kind": "off"},
        {"date": day + dt.timedelta(days=4), "kind": "extra", "start": "10:00", "end": "12:00"},
    ])
    with pytest.raises(ApplicationError, match="does not show homes"):
        book(customer, listing, at(1, 10))
    # Saturday, extra hours
    assert book(customer, listing, at(5, 10)).pk
    assert AvailabilityException.objects.count() == 2


def test_a_listing_off_the_market_or_hidden_cannot_be_booked(agent, customer):
    draft = ListingFactory(agent=agent, status=Listing.Status.DRAFT)
    with pytest.raises(NotFound):
        book(customer, draft, at(1, 10))
    sold = ListingFactory(agent=agent, status=Listing.Status.SOLD)
    with pytest.raises(ApplicationError, match="not open for viewings"):
        book(customer, sold, at(1, 10))


def test_an_agent_cannot_book_their_own_listing(agent, listing):
    with pytest.raises(Forbidden):
        book(agent, listing, at(1, 10))


def test_bad_durations_and_notes_are_400(listing, customer):
    for minutes in (0, 10, 20, 500, True):
        with pytest.raises(ApplicationError, match="duration_minutes"):
            book(customer, listing, at(1, 10), duration_minutes=minutes)
    with pytest.raises(ApplicationError, match="note"):
        book(customer, listing, at(1, 10), note="x" * 1001)
    viewing = book(customer, listing, at(1, 10), duration_minutes=60)
    assert viewing.end - viewing.start == dt.timedelta(hours=1)


def test_naive_start_is_refused(listing, customer):
    with pytest.raises(ApplicationError, match="offset"):
        book(customer, listing, dt.datetime(2027, 1, 5, 10, 0))


# --- slots --------------------------------------------------------------------------------------

def test_slots_leave_out_booked_times_and_the_notice(listing, customer):
    book(customer, listing, at(1, 10))
    tomorrow = [s.strftime("%H:%M") for s, _ in
                services.listing_slots(listing=listing, date=at(1, 0).date(), now=NOW)]
    # 09:30 would end at 10:00 with the agent's buffer running into the 10:00 viewing; 10:30
    # starts inside that viewing's buffer
    assert tomorrow[:3] == ["09:00", "11:00", "11:30"]
    assert len(tomorrow) == 16 - 3
    today = [s.strftime("%H:%M") for s, _ in services.listing_slots(listing=listing, date=NOW.date(), now=NOW)]
    assert today[0] == "09:00"  # NOW is 07:00, two hours' notice
    later = services.listing_slots(listing=listing, date=NOW.date(), now=at(0, 8, 10))
    assert later[0][0].strftime("%H:%M") == "10:30"
    assert services.listing_slots(listing=listing, date=at(70, 0).date(), now=NOW) == []


def test_every_offered_slot_can_be_booked(listing):
    for start, end in services.listing_slots(listing=listing, date=at(2, 0).date(), now=NOW)[::5]:
        viewing = book(UserFactory(), listing, start)
        assert (viewing.start, viewing.end) == (start, end)


# --- the workflow ---------------------------------------------------------------------------------

def test_only_the_agent_confirms_or_declines_and_strangers_see_nothing(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    with pytest.raises(Forbidden):
        services.booking_confirm(viewing_id=viewing.pk, by=customer, now=NOW)
    with pytest.raises(NotFound):
        services.booking_confirm(viewing_id=viewing.pk, by=AgentFactory(), now=NOW)
    with pytest.raises(NotFound):
        services.booking_cancel(viewing_id=viewing.pk, by=UserFactory())
    confirmed = services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    assert confirmed.status == Status.CONFIRMED
    assert confirmed.sequence == 1
    assert events("booking.confirmed") == [{"booking_id": viewing.pk, "old": "requested"}]


def test_illegal_transitions_are_409(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    services.booking_cancel(viewing_id=viewing.pk, by=agent, reason="ill")
    with pytest.raises(Conflict):
        services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    with pytest.raises(Conflict):
        services.booking_cancel(viewing_id=viewing.pk, by=customer)
    with pytest.raises(Conflict):
        services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 11), now=NOW)
    declined = book(customer, listing, at(1, 11))
    services.booking_decline(viewing_id=declined.pk, by=agent, reason="sold already")
    with pytest.raises(Conflict):
        services.booking_decline(viewing_id=declined.pk, by=agent)
    assert events("booking.cancelled") == [{"booking_id": viewing.pk, "old": "requested", "by": "agent"}]


def test_staff_may_act_on_any_viewing(listing, customer):
    viewing = book(customer, listing, at(1, 10))
    assert services.booking_confirm(viewing_id=viewing.pk, by=StaffFactory(), now=NOW).status == Status.CONFIRMED


def test_reschedule_keeps_the_id_and_frees_the_old_time_only_when_the_new_one_is_taken(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    blocker = book(UserFactory(), listing, at(1, 14))
    # the new time is taken: 409, and the viewing still holds its old time
    with pytest.raises(Conflict):
        services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 14), now=NOW)
    viewing.refresh_from_db()
    assert (viewing.start, viewing.status) == (at(1, 10), Status.CONFIRMED)
    with pytest.raises(Conflict):
        book(UserFactory(), listing, at(1, 10))
    # the agent may not reschedule (the customer chooses)
    with pytest.raises(Forbidden):
        services.booking_reschedule(viewing_id=viewing.pk, by=agent, start=at(1, 15), now=NOW)
    moved = services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 15), now=NOW)
    assert moved.pk == viewing.pk
    assert (moved.start, moved.end, moved.status) == (at(1, 15), at(1, 15, 30), Status.REQUESTED)
    assert moved.sequence == 2
    # the old time is free, and moving next to oneself (overlapping one's own old time) is fine
    assert book(UserFactory(), listing, at(1, 10)).pk
    services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 15, 30), now=NOW)
    assert blocker.pk
    payload = events("booking.rescheduled")[0]
    assert payload["booking_id"] == viewing.pk
    assert payload["status"] == "requested"


def test_history_keeps_every_change(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 11), now=NOW)
    services.booking_cancel(viewing_id=viewing.pk, by=customer, reason="found another")
    history = list(ViewingStatusChange.objects.filter(viewing=viewing).values_list(
        "old_status", "new_status", "by_id", "reason"))
    assert history == [("", "requested", customer.pk, ""), ("requested", "confirmed", agent.pk, ""),
                       ("confirmed", "requested", customer.pk, ""),
                       ("requested", "cancelled", customer.pk, "found another")]


# --- the beat -------------------------------------------------------------------------------------

def test_unanswered_requests_expire_after_a_day_and_free_the_time(listing, customer):
    viewing = book(customer, listing, at(3, 10))
    assert services.bookings_expire(now=NOW + dt.timedelta(hours=23)) == 0
    assert services.bookings_expire(now=NOW + dt.timedelta(hours=24)) == 1
    viewing.refresh_from_db()
    assert viewing.status == Status.EXPIRED
    assert events("booking.expired") == [{"booking_id": viewing.pk, "old": "requested"}]
    assert services.bookings_expire(now=NOW + dt.timedelta(hours=25)) == 0
    with pytest.raises(Conflict):
        services.booking_confirm(viewing_id=viewing.pk, by=listing.agent, now=NOW)
    assert book(UserFactory(), listing, at(3, 10)).pk


def test_past_confirmed_viewings_are_completed(agent, listing, customer):
    viewing = book(customer, listing, at(1, 10))
    services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    assert services.bookings_complete(now=at(1, 10, 29)) == 0
    assert services.bookings_complete(now=at(1, 10, 30)) == 1
    viewing.refresh_from_db()
    assert viewing.status == Status.COMPLETED
    assert events("booking.completed") == [{"booking_id": viewing.pk, "old": "confirmed"}]


def test_reminders_are_published_once_each_at_24h_and_1h(agent, listing, customer):
    viewing = book(customer, listing, at(2, 10))
    services.booking_confirm(viewing_id=viewing.pk, by=agent, now=NOW)
    assert services.reminders_send(now=at(1, 9, 59)) == 0
    assert services.reminders_send(now=at(1, 10)) == 1
    assert services.reminders_send(now=at(1, 10, 5)) == 0
    assert services.reminders_send(now=at(2, 9)) == 1
    assert services.reminders_send(now=at(2, 9, 30)) == 0
    assert events("booking.reminder_due") == [{"booking_id": viewing.pk, "lead": "24h"},
                                              {"booking_id": viewing.pk, "lead": "1h"}]


def test_a_viewing_booked_inside_a_lead_gets_no_reminder_for_it(listing, customer):
    services.availability_replace(agent=listing.agent, instant_booking=True)
    viewing = book(customer, listing, at(0, 15))  # booked at 07:00 for 15:00: only the 1 h reminder
    assert services.reminders_send(now=at(0, 7, 5)) == 0
    assert services.reminders_send(now=at(0, 14)) == 1
    assert events("booking.reminder_due") == [{"booking_id": viewing.pk, "lead": "1h"}]


def test_requested_viewings_get_no_reminders(listing, customer):
    book(customer, listing, at(1, 10))
    assert services.reminders_send(now=at(1, 9, 30)) == 0


def test_a_rescheduled_viewing_is_reminded_again_for_its_new_time(agent, listing, customer):
    services.availability_replace(agent=agent, instant_booking=True)
    viewing = book(customer, listing, at(2, 10))
    assert services.reminders_send(now=at(1, 10)) == 1
    services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(3, 10), now=at(1, 11))
    assert services.reminders_send(now=at(2, 10)) == 1


# --- people and listings going away -----------------------------------------------------------------

def test_deleting_an_account_cancels_its_upcoming_viewings_and_erases_notes(listing, customer):
    upcoming = book(customer, listing, at(1, 10), note="I have a dog")
    past = ViewingFactory(listing=listing, customer=customer, status=Status.COMPLETED, note="bring keys",
                          start=at(-3, 10), end=at(-3, 10, 30), blocked_until=at(-3, 10, 45))
    user_delete(user=customer)
    upcoming.refresh_from_db()
    past.refresh_from_db()
    assert upcoming.status == Status.CANCELLED
    assert (upcoming.note, past.note) == ("", "")
    assert past.status == Status.COMPLETED
    assert past.customer.name == "deleted user"


def test_a_listing_with_viewings_is_withdrawn_not_deleted(agent, listing, customer):
    book(customer, listing, at(1, 10))
    with pytest.raises(Conflict, match="withdraw"):
        listing_delete(listing=listing, by=agent)


def test_slots_for_a_reschedule_leave_the_viewing_itself_out(listing, customer):
    viewing = book(customer, listing, at(1, 10))
    day = at(1, 0).date()
    plain = [s.strftime("%H:%M") for s, _ in services.listing_slots(listing=listing, date=day, now=NOW)]
    moving = [s.strftime("%H:%M") for s, _ in services.listing_slots(listing=listing, date=day, now=NOW,
                                                                     exclude_viewing_id=viewing.pk)]
    assert "10:30" not in plain
    assert "10:30" in moving  # overlaps its own old buffer only: the reschedule accepts it
    assert services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=at(1, 10, 30), now=NOW).pk


def test_slots_by_day_covers_every_day_in_few_queries(listing, django_assert_max_num_queries):
    services.availability_get(agent=listing.agent)  # created once, on first use
    # availability, rules, exceptions, booked viewings
    with django_assert_max_num_queries(4):
        by_day = services.listing_slots_by_day(listing=listing, first_day=NOW.date(), days=14, now=NOW)
    assert list(by_day) == [NOW.date() + dt.timedelta(days=n) for n in range(14)]
    assert [len(slots) for slots in by_day.values()][:7] == [16, 16, 16, 16, 16, 0, 0]
    assert all(s.date() == day for day, slots in by_day.items() for s, _ in slots)
