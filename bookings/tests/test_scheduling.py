"""Slot arithmetic, property-tested: no slot overlaps a booking (with the buffer), every slot lies
inside availability and on its grid, and daylight-saving days come out right."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bookings import scheduling
from bookings.scheduling import Busy, DateException, WeeklyHours

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
MIN = dt.timedelta(minutes=1)


def day_window(day, zone):
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def slots_for(day, zone, weekly, exceptions=(), busy=(), duration=30, step=30, buffer=15, earliest=None,
              latest=None):
    window_start, window_end = day_window(day, zone)
    intervals = scheduling.available_intervals(window_start, window_end, zone, weekly, list(exceptions))
    return scheduling.free_slots(
        intervals=intervals, busy=list(busy), duration=duration * MIN, step=step * MIN, buffer=buffer * MIN,
        earliest=earliest or window_start - dt.timedelta(days=2), latest=latest or window_end + dt.timedelta(days=2),
        window_start=window_start, window_end=window_end)


def local_times(slots, zone):
    return [s.astimezone(zone).strftime("%H:%M") for s, _ in slots]


WEEK_9_TO_17 = [WeeklyHours(d, dt.time(9), dt.time(17)) for d in range(7)]


def test_a_plain_day_has_a_slot_every_half_hour_from_nine_to_half_past_four():
    # given Mon–Sun 09:00–17:00 in Paris, when the slots of a Monday are computed
    slots = slots_for(dt.date(2026, 12, 7), PARIS, WEEK_9_TO_17)
    # then 16 slots, 09:00 … 16:30, each 30 minutes long
    assert local_times(slots, PARIS)[0] == "09:00"
    assert local_times(slots, PARIS)[-1] == "16:30"
    assert len(slots) == 16
    assert all(end - start == 30 * MIN for start, end in slots)


def test_a_booking_removes_its_slot_and_the_buffer_after_it():
    day = dt.date(2026, 12, 7)
    booked = dt.datetime(2026, 12, 7, 11, 0, tzinfo=PARIS).astimezone(UTC)
    busy = [Busy(booked, booked + 45 * MIN)]  # 30 min + 15 min buffer
    times = local_times(slots_for(day, PARIS, WEEK_9_TO_17, busy=busy), PARIS)
    # 10:30 would end at 11:00 and its buffer would run into the booking; 11:00 is the booking;
    # 11:30 is inside the booking's buffer (until 11:45); 12:00 is free again.
    assert "10:00" in times
    assert "10:30" not in times
    assert "11:00" not in times
    assert "11:30" not in times
    assert "12:00" in times


def test_a_day_off_has_no_slots_and_extra_hours_add_some():
    day = dt.date(2026, 12, 8)
    assert slots_for(day, PARIS, WEEK_9_TO_17, [DateException(day, "off")]) == []
    extra = [DateException(day, "off"), DateException(day, "extra", dt.time(18), dt.time(19))]
    assert local_times(slots_for(day, PARIS, WEEK_9_TO_17, extra), PARIS) == ["18:00", "18:30"]


def test_hours_off_are_cut_out_of_the_day():
    day = dt.date(2026, 12, 8)
    off = [DateException(day, "off", dt.time(12), dt.time(14))]
    times = local_times(slots_for(day, PARIS, WEEK_9_TO_17, off), PARIS)
    assert "11:30" in times
    assert "12:00" not in times
    assert "13:30" not in times
    assert "14:00" in times


def test_spring_forward_day_in_paris_keeps_wall_clock_hours():
    # 2026-03-29: Paris clocks jump from 02:00 to 03:00. Hours 09:00–17:00 are still 16 slots
    # at the usual wall-clock times, now at UTC+2.
    slots = slots_for(dt.date(2026, 3, 29), PARIS, WEEK_9_TO_17)
    assert len(slots) == 16
    assert local_times(slots, PARIS)[0] == "09:00"
    assert slots[0][0].astimezone(PARIS).utcoffset() == dt.timedelta(hours=2)


def test_fall_back_night_hours_span_twenty_five_hours_without_doubling_a_slot():
    # 2026-10-25: Paris goes back from 03:00 to 02:00. A night shift 00:00–05:00 lasts 6 real
    # hours: 12 half-hour slots, all distinct instants, none overlapping.
    night = [WeeklyHours(6, dt.time(0), dt.time(5))]  # Sunday
    slots = slots_for(dt.date(2026, 10, 25), PARIS, night)
    assert len(slots) == 12
    assert len({s for s, _ in slots}) == 12
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(slots))


def test_spring_forward_night_hours_lose_the_missing_hour():
    # 2026-03-08 in New York: 02:00 does not exist. Hours 00:00–05:00 last 4 real hours.
    night = [WeeklyHours(6, dt.time(0), dt.time(5))]
    slots = slots_for(dt.date(2026, 3, 8), NEW_YORK, night)
    assert len(slots) == 8


def test_agent_hours_in_another_zone_than_the_listing_are_converted():
    # The agent works 09:00–17:00 in New York; the listing's day is a Paris date: the slots are
    # 15:00–22:30 Paris time (UTC-5 vs UTC+1 in December).
    window_start, window_end = day_window(dt.date(2026, 12, 7), PARIS)
    intervals = scheduling.available_intervals(window_start, window_end, NEW_YORK, WEEK_9_TO_17, [])
    slots = scheduling.free_slots(intervals=intervals, busy=[], duration=30 * MIN, step=30 * MIN, buffer=15 * MIN,
                                  earliest=window_start, latest=window_end, window_start=window_start,
                                  window_end=window_end)
    assert local_times(slots, PARIS)[0] == "15:00"
    assert local_times(slots, PARIS)[-1] == "22:30"


def test_notice_and_horizon_bound_the_slots():
    day = dt.date(2026, 12, 7)
    earliest = dt.datetime(2026, 12, 7, 12, 10, tzinfo=PARIS).astimezone(UTC)
    latest = dt.datetime(2026, 12, 7, 14, 0, tzinfo=PARIS).astimezone(UTC)
    times = local_times(slots_for(day, PARIS, WEEK_9_TO_17, earliest=earliest, latest=latest), PARIS)
    assert times == ["12:30", "13:00", "13:30", "14:00"]


def test_grid_problem_tells_outside_from_off_grid():
    window_start, window_end = day_window(dt.date(2026, 12, 7), PARIS)
    intervals = scheduling.available_intervals(window_start, window_end, PARIS, WEEK_9_TO_17, [])

    def at(hour, minute):
        return dt.datetime(2026, 12, 7, hour, minute, tzinfo=PARIS).astimezone(UTC)

    assert scheduling.grid_problem(start=at(9, 30), duration=30 * MIN, step=30 * MIN, intervals=intervals) is None
    assert scheduling.grid_problem(start=at(9, 40), duration=30 * MIN, step=30 * MIN,
                                   intervals=intervals) == "off_grid"
    assert scheduling.grid_problem(start=at(16, 45), duration=30 * MIN, step=30 * MIN,
                                   intervals=intervals) == "outside"
    assert scheduling.grid_problem(start=at(7, 0), duration=30 * MIN, step=30 * MIN,
                                   intervals=intervals) == "outside"


# --- properties ---------------------------------------------------------------------------------

ZONES = [PARIS, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")]
# Days around the 2026 changes of the zones above, plus ordinary days.
DAYS = [dt.date(2026, 3, 8), dt.date(2026, 3, 29), dt.date(2026, 4, 5), dt.date(2026, 10, 4),
        dt.date(2026, 10, 25), dt.date(2026, 11, 1), dt.date(2026, 6, 15), dt.date(2026, 12, 7)]

quarter_hours = st.integers(min_value=0, max_value=95).map(lambda q: dt.time(q // 4, q % 4 * 15))


@st.composite
def weekly_hours(draw):
    rules = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        start, end = sorted(draw(st.lists(quarter_hours, min_size=2, max_size=2, unique=True)))
        rules.append(WeeklyHours(draw(st.integers(min_value=0, max_value=6)), start, end))
    return rules


@st.composite
def busy_list(draw, day, zone):
    base = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC) - dt.timedelta(hours=6)
    items = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        start = base + draw(st.integers(min_value=0, max_value=36 * 4)) * 15 * MIN
        length = draw(st.sampled_from([30, 45, 60, 90])) * MIN
        buffer = draw(st.sampled_from([0, 10, 15, 30])) * MIN
        items.append(Busy(start, start + length + buffer))
    return items


@settings(max_examples=300, deadline=None)
@given(data=st.data(), zone=st.sampled_from(ZONES), day=st.sampled_from(DAYS), weekly=weekly_hours(),
       duration=st.sampled_from([15, 30, 45, 60]), step=st.sampled_from([15, 30, 60]),
       buffer=st.sampled_from([0, 15, 30]))
def test_every_slot_is_free_inside_availability_on_the_grid_and_on_the_day(data, zone, day, weekly, duration, step,
                                                                            buffer):
    busy = data.draw(busy_list(day, zone))
    window_start, window_end = day_window(day, zone)
    intervals = scheduling.available_intervals(window_start, window_end, zone, weekly, [])
    slots = scheduling.free_slots(intervals=intervals, busy=busy, duration=duration * MIN, step=step * MIN,
                                  buffer=buffer * MIN, earliest=window_start, latest=window_end,
                                  window_start=window_start, window_end=window_end)
    starts = [s for s, _ in slots]
    assert starts == sorted(set(starts)), "slots are distinct and in order"
    for start, end in slots:
        assert end - start == duration * MIN
        assert window_start <= start < window_end, "on the asked day"
        # no booking overlaps the slot or the buffer after it
        assert all(not (b.start < end + buffer * MIN and start < b.blocked_until) for b in busy)
        # inside one available interval, on its grid
        assert scheduling.grid_problem(start=start, duration=duration * MIN, step=step * MIN,
                                       intervals=intervals) is None
        # and covered by the agent's wall-clock hours (adjacent periods join up)
        assert _covered(start, end, weekly, zone), "inside the weekly hours"


def _covered(start, end, weekly, zone):
    """Whether the weekly hours, turned into instants day by day, cover [start, end)."""
    day = start.astimezone(zone).date()
    periods = sorted(
        (scheduling.wall_clock(d, rule.start, zone), scheduling.wall_clock(d, rule.end, zone))
        for d in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1))
        for rule in weekly if rule.weekday == d.weekday())
    reached = start
    for opens, closes in periods:
        if opens <= reached < closes:
            reached = closes
    return reached >= end


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), day=st.sampled_from(DAYS), weekly=weekly_hours())
def test_without_bookings_every_grid_start_that_fits_is_offered(zone, day, weekly):
    window_start, window_end = day_window(day, zone)
    intervals = scheduling.available_intervals(window_start, window_end, zone, weekly, [])
    slots = scheduling.free_slots(intervals=intervals, busy=[], duration=30 * MIN, step=30 * MIN, buffer=15 * MIN,
                                  earliest=window_start, latest=window_end, window_start=window_start,
                                  window_end=window_end)
    expected = []
    for interval_start, interval_end in intervals:
        start = interval_start
        while start + 30 * MIN <= interval_end:
            if window_start <= start < window_end:
                expected.append(start)
            start += 30 * MIN
    assert [s for s, _ in slots] == expected
