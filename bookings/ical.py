"""Viewings as iCalendar (RFC 5545): one `.ics` per viewing and an agent's subscription feed.

Each viewing keeps one UID for its life; SEQUENCE grows with every change, so a calendar app
moves the event on a reschedule and removes it on a cancellation (METHOD:CANCEL).
"""

import datetime as dt
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vCalAddress, vText

from bookings.models import Viewing

Status = Viewing.Status
PRODID = "-//Realio//Viewings//EN"


def viewing_uid(viewing) -> str:
    return f"viewing-{viewing.pk}@{urlsplit(settings.SITE_URL).hostname or 'realio.local'}"


def _address(listing):
    parts = [listing.street, " ".join(p for p in (listing.postal_code, listing.city) if p), listing.region,
             listing.country]
    return ", ".join(p for p in parts if p)


def _person(user, role):
    address = vCalAddress(f"mailto:{user.email}")
    address.params["cn"] = vText(user.name)
    address.params["role"] = vText(role)
    return address


def _event(viewing) -> Event:
    listing = viewing.listing
    zone = ZoneInfo(listing.time_zone)
    event = Event()
    event.add("uid", viewing_uid(viewing))
    event.add("dtstamp", timezone.now())
    event.add("dtstart", viewing.start.astimezone(zone))
    event.add("dtend", viewing.end.astimezone(zone))
    event.add("sequence", viewing.sequence)
    event.add("summary", _("Viewing: %(title)s") % {"title": listing.title})
    event.add("location", _address(listing))
    url = settings.SITE_URL.rstrip("/") + reverse("listing_page", args=[listing.pk])
    event.add("url", url)
    lines = [_("Agent: %(name)s") % {"name": viewing.agent.name},
             _("Customer: %(name)s") % {"name": viewing.customer.name}]
    if viewing.note:
        lines.append(_("Note: %(note)s") % {"note": viewing.note})
    lines.append(url)
    event.add("description", "\n".join(lines))
    event.add("geo", (listing.latitude, listing.longitude))
    event.add("organizer", _person(viewing.agent, "CHAIR"))
    event.add("attendee", _person(viewing.customer, "REQ-PARTICIPANT"))
    event.add("status", {Status.CONFIRMED: "CONFIRMED", Status.REQUESTED: "TENTATIVE",
                         Status.COMPLETED: "CONFIRMED"}.get(viewing.status, "CANCELLED"))
    event.add("last-modified", viewing.updated_at)
    return event


def _calendar(method, name=None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def viewing_ics(viewing) -> bytes:
    """One viewing: METHOD:REQUEST while it stands, METHOD:CANCEL once it does not."""
    gone = viewing.status in (Status.CANCELLED, Status.DECLINED, Status.EXPIRED)
    calendar = _calendar("CANCEL" if gone else "REQUEST")
    calendar.add_component(_event(viewing))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def agent_feed_ics(agent, viewings) -> bytes:
    """An agent's subscription feed (METHOD:PUBLISH); cancelled viewings appear as cancelled."""
    calendar = _calendar("PUBLISH", name=_("Realio viewings — %(name)s") % {"name": agent.name})
    calendar.add("refresh-interval", dt.timedelta(minutes=30), parameters={"VALUE": "DURATION"})
    for viewing in viewings:
        calendar.add_component(_event(viewing))
    calendar.add_missing_timezones()
    return calendar.to_ical()
