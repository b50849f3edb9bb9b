"""Pure scheduling arithmetic: an agent's available intervals and the free viewing slots in them.

No database here, so the rules can be property-tested (bookings/tests/test_scheduling.py).
Every instant is an aware datetime; weekly hours are wall-clock times in the agent's time
zone, turned into instants day by day, so a daylight-saving change moves them correctly.
The slot grid is anchored at the start of each available interval (09:00, 09:30, …) and steps
in real elapsed time, so no slot is skipped or doubled on a day with 23 or 25 hours.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC


@dataclass(frozen=True)
class WeeklyHours:
    weekday: int  # 0 = Monday
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class DateException:
    date: dt.date
    kind: str  # "off" | "extra"
    start: dt.time | None = None
    end: dt.time | None = None


@dataclass(frozen=True)
class Busy:
    """A viewing that holds the agent: [start, blocked_until) includes the travel buffer."""

    start: dt.datetime
    blocked_until: dt.datetime


def wall_clock(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The instant at `time` on `day` in `zone`, in UTC.

    A time that does not exist (skipped by a spring-forward change) maps to the instant the
    same number of minutes after the gap opened; an ambiguous one (repeated in autumn) to its
    first occurrence.
    """
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(UTC)


def _subtract(intervals, cut_start, cut_end):
    result = []
    for start, end in intervals:
        if cut_end <= start or cut_start >= end:
            result.append((start, end))
            continue
        if start < cut_start:
            result.append((start, cut_start))
        if cut_end < end:
            result.append((cut_end, end))
    return result


def _merge(intervals):
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def day_intervals(day: dt.date, zone: ZoneInfo, weekly, exceptions):
    """The agent's available intervals (UTC) on their local `day`: weekly hours minus time off,
    plus extra hours (which win over time off on the same day)."""
    exceptions = [e for e in exceptions if e.date == day]
    intervals = [(wall_clock(day, r.start, zone), wall_clock(day, r.end, zone))
                 for r in weekly if r.weekday == day.weekday()]
    for exception in exceptions:
        if exception.kind != "off":
            continue
        if exception.start is None:
            intervals = []
        else:
            intervals = _subtract(intervals, wall_clock(day, exception.start, zone),
                                  wall_clock(day, exception.end, zone))
    intervals += [(wall_clock(day, e.start, zone), wall_clock(day, e.end, zone))
                  for e in exceptions if e.kind == "extra"]
    return _merge([(s, e) for s, e in intervals if s < e])


def available_intervals(window_start, window_end, zone: ZoneInfo, weekly, exceptions):
    """Available intervals (UTC, merged, sorted) of every agent-local day touching the window.

    Intervals are not clipped to the window: the slot grid is anchored at their real start.
    """
    first = window_start.astimezone(zone).date() - dt.timedelta(days=1)
    last = window_end.astimezone(zone).date() + dt.timedelta(days=1)
    intervals = []
    day = first
    while day <= last:
        intervals += day_intervals(day, zone, weekly, exceptions)
        day += dt.timedelta(days=1)
    return [(s, e) for s, e in _merge(intervals) if e > window_start and s < window_end]


def overlaps_busy(start, end, buffer, busy):
    """Whether a viewing [start, end) plus the agent's buffer after it meets a booked one."""
    blocked_until = end + buffer
    return any(b.start < blocked_until and start < b.blocked_until for b in busy)


def free_slots(*, intervals, busy, duration, step, buffer, earliest, latest, window_start, window_end):
    """Free slots [(start, end)] starting inside the window: on the grid of their interval,
    wholly inside it, not before `earliest` (now + notice), not after `latest` (the horizon),
    and clear of every busy viewing with the buffer on both sides."""
    slots = []
    for interval_start, interval_end in intervals:
        start = interval_start
        while start + duration <= interval_end:
            if window_start <= start < window_end and earliest <= start <= latest \
                    and not overlaps_busy(start, start + duration, buffer, busy):
                slots.append((start, start + duration))
            start += step
    return slots


def grid_problem(*, start, duration, step, intervals):
    """None when [start, start + duration) is a slot of the grid, else why not: "outside" (not
    wholly inside available hours) or "off_grid" (inside, but not at a slot start)."""
    for interval_start, interval_end in intervals:
        if interval_start <= start and start + duration <= interval_end:
            offset = start - interval_start
            return None if offset % step == dt.timedelta(0) else "off_grid"
    return "outside"
