"""Booking notifications from the booking events, through the real broker and a worker: who is
told of what, in the listing's local time, with the viewing's .ics on the email, once."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from icalendar import Calendar

from accounts.tests.factories import AgentFactory, UserFactory
from bookings import services as booking_services
from listings.tests.factories import ListingFactory
from notifications import handlers
from notifications.models import Notification
from notifications.tests.conftest import wait_for
from realio.models import OutboxEvent

PARIS = ZoneInfo("Europe/Paris")


def next_weekday_at(hour, days_ahead=3):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS)


def notifications_of(user, kind):
    return list(Notification.objects.filter(user=user, kind=kind).order_by("pk"))


def one(user, kind):
    return wait_for(lambda: notifications_of(user, kind) or None, f"{kind} for {user.email}")[0]


def ics_of(message):
    [(filename, content, mimetype)] = message.attachments
    assert filename.endswith(".ics") and mimetype.startswith("text/calendar")
    return Calendar.from_ical(content)


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_viewing_from_request_to_cancellation_tells_the_other_party_each_time(celery_worker):
    agent = AgentFactory(time_zone="Europe/Paris", first_name="Ana", last_name="Agent")
    customer = UserFactory(first_name="Carl", last_name="Customer")
    listing = ListingFactory(agent=agent, title="Loft by the canal")
    start = next_weekday_at(10)

    # a request reaches the agent, in the listing's local time
    viewing = booking_services.booking_request(customer=customer, listing_id=listing.pk, start=start,
                                               note="I'll bring my partner")
    requested = one(agent, "booking.requested")
    assert requested.title == "Viewing request: Loft by the canal"
    assert "Carl Customer asks to view the home on" in requested.body
    assert f"{start:%H:%M} (Europe/Paris)" in requested.body
    assert "I'll bring my partner" in requested.body
    assert notifications_of(customer, "booking.requested") == []

    # the agent confirms: the customer is told, and the email carries the .ics
    booking_services.booking_confirm(viewing_id=viewing.pk, by=agent)
    confirmed = one(customer, "booking.confirmed")
    assert "Ana Agent expects you on" in confirmed.body
    email = wait_for(lambda: next((m for m in mail.outbox if m.subject == confirmed.title), None),
                     "the confirmation email")
    assert email.to == [customer.email]
    event = ics_of(email).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == start

    # the customer moves it: the agent is told of the new time
    new_start = start + dt.timedelta(hours=4)
    booking_services.booking_reschedule(viewing_id=viewing.pk, by=customer, start=new_start)
    moved = one(agent, "booking.rescheduled")
    assert f"to {new_start:%a %-d %b %Y, %H:%M}" in moved.body
    assert "Confirm or decline the new time." in moved.body

    # the agent cancels: the customer is told why
    booking_services.booking_cancel(viewing_id=viewing.pk, by=agent, reason="The owner is away")
    cancelled = one(customer, "booking.cancelled")
    assert "Ana Agent cancelled the viewing" in cancelled.body
    assert "The owner is away" in cancelled.body
    assert notifications_of(agent, "booking.cancelled") == []


@pytest.mark.django_db
def test_reminders_go_to_both_parties_once_and_only_while_the_viewing_stands(django_capture_on_commit_callbacks):
    agent = AgentFactory(time_zone="Europe/Paris")
    customer = UserFactory()
    listing = ListingFactory(agent=agent)
    booking_services.availability_replace(agent=agent, instant_booking=True)
    start = next_weekday_at(11)
    viewing = booking_services.booking_request(customer=customer, listing_id=listing.pk, start=start,
                                               now=start - dt.timedelta(days=2))
    booking_services.reminders_send(now=start - dt.timedelta(hours=23))
    event = OutboxEvent.objects.get(type="booking.reminder_due")

    handlers.booking_reminder(event)
    handlers.booking_reminder(event)  # a replay creates nothing more

    for user, text in ((customer, "shows you the home on"), (agent, "You show the home to")):
        [reminder] = notifications_of(user, "booking.reminder")
        assert reminder.title.startswith("Viewing tomorrow:")
        assert text in reminder.body
    # a cancelled viewing's late reminder is dropped
    booking_services.booking_cancel(viewing_id=viewing.pk, by=customer)
    Notification.objects.filter(kind="booking.reminder").delete()
    handlers.booking_reminder(event)
    assert not Notification.objects.filter(kind="booking.reminder").exists()


@pytest.mark.django_db
def test_instant_bookings_and_system_cancellations():
    agent = AgentFactory(time_zone="Europe/Paris")
    customer = UserFactory()
    listing = ListingFactory(agent=agent)
    booking_services.availability_replace(agent=agent, instant_booking=True)
    viewing = booking_services.booking_request(customer=customer, listing_id=listing.pk, start=next_weekday_at(14))
    handlers.booking_requested(OutboxEvent.objects.get(type="booking.requested"))
    handlers.booking_confirmed(OutboxEvent.objects.get(type="booking.confirmed"))
    assert notifications_of(agent, "booking.requested")[0].title.startswith("Viewing booked:")
    assert len(notifications_of(customer, "booking.confirmed")) == 1

    # an account deletion cancels the viewing "by the system": both parties are told
    from accounts.services import user_delete

    user_delete(user=customer)
    handlers.booking_cancelled(OutboxEvent.objects.get(type="booking.cancelled"))
    assert len(notifications_of(agent, "booking.cancelled")) == 1
    assert notifications_of(customer, "booking.cancelled") == []  # the deleted account gets nothing
    assert viewing.pk
