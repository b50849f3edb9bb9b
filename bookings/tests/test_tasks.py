"""The bookings beat task through the real Redis broker and a worker: expiry, completion and
reminders happen once however often the sweep runs."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from bookings import services, tasks
from bookings.models import Viewing
from bookings.tests.factories import ViewingFactory
from realio.models import OutboxEvent

Status = Viewing.Status


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_sweep_expires_completes_and_reminds_once(celery_worker):
    now = timezone.now().replace(microsecond=0)
    # given a request unanswered for a day, a confirmed viewing that is over, and confirmed
    # viewings 20 hours and 40 minutes ahead (booked days ago)
    stale = ViewingFactory(requested_at=now - dt.timedelta(hours=25), start=now + dt.timedelta(days=3))
    over = ViewingFactory(status=Status.CONFIRMED, start=now - dt.timedelta(hours=2),
                          requested_at=now - dt.timedelta(days=3))
    tomorrow = ViewingFactory(status=Status.CONFIRMED, start=now + dt.timedelta(hours=20),
                              requested_at=now - dt.timedelta(days=3))
    soon = ViewingFactory(status=Status.CONFIRMED, start=now + dt.timedelta(minutes=40),
                          requested_at=now - dt.timedelta(days=3))

    # when the beat's task runs through the broker
    tasks.sweep.delay()

    # then the worker expires, completes and reminds
    deadline = time.monotonic() + 30
    while OutboxEvent.objects.filter(type="booking.reminder_due").count() < 2 \
            or Viewing.objects.filter(pk__in=[stale.pk, over.pk], status__in=Viewing.ACTIVE).exists():
        assert time.monotonic() < deadline, "the worker did not sweep"
        time.sleep(0.1)
    # and a second pass finds nothing left to do
    assert services.bookings_sweep() == {"expired": 0, "completed": 0, "reminded": 0}
    assert Viewing.objects.get(pk=stale.pk).status == Status.EXPIRED
    assert Viewing.objects.get(pk=over.pk).status == Status.COMPLETED
    reminders = sorted((e.payload["booking_id"], e.payload["lead"])
                       for e in OutboxEvent.objects.filter(type="booking.reminder_due"))
    # the viewing 40 minutes ahead gets the 1 h reminder only (the 24 h one would be late)
    assert reminders == sorted([(tomorrow.pk, "24h"), (soon.pk, "1h")])
    assert OutboxEvent.objects.filter(type="booking.expired").count() == 1
    assert OutboxEvent.objects.filter(type="booking.completed").count() == 1
