"""No double booking, ever (DESIGN.md section 6): parallel requests on separate database
connections, and the exclusion constraints on their own."""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import AgentFactory, UserFactory
from bookings.models import Viewing
from bookings.tests.factories import ViewingFactory
from listings.tests.factories import ListingFactory

PARIS = ZoneInfo("Europe/Paris")
PARALLEL = 24


def next_weekday_at(hour):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS)


def race(requests):
    """Run each `(user, body)` as a POST bookings/ in its own thread (own connection), all
    released at once; return the status codes."""
    barrier = threading.Barrier(len(requests))
    codes = [None] * len(requests)

    tokens = [str(RefreshToken.for_user(user).access_token) for user, _ in requests]

    def worker(index, user, body):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[index]}")
        try:
            barrier.wait(timeout=30)
            codes[index] = client.post("/api/v1/bookings/", body, format="json").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, user, body)) for i, (user, body) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes


@pytest.mark.django_db(transaction=True)
def test_many_customers_racing_for_one_slot_exactly_one_wins():
    listing = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    start = next_weekday_at(10).isoformat()
    codes = race([(UserFactory(), {"listing": listing.pk, "start": start}) for _ in range(PARALLEL)])
    assert sorted(codes) == [201] + [409] * (PARALLEL - 1)
    assert Viewing.objects.filter(status__in=Viewing.ACTIVE).count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_customers_racing_for_overlapping_off_grid_times_exactly_one_wins():
    listing = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    base = next_weekday_at(10)
    # 10:00 on the grid, and times 5–40 minutes later: every pair overlaps with the buffer
    starts = [base + dt.timedelta(minutes=5 * (i % 9)) for i in range(PARALLEL)]
    codes = race([(UserFactory(), {"listing": listing.pk, "start": s.isoformat()}) for s in starts])
    assert codes.count(201) <= 1
    assert all(code in (201, 400, 409) for code in codes)
    assert Viewing.objects.filter(status__in=Viewing.ACTIVE).count() == codes.count(201)


@pytest.mark.django_db(transaction=True)
def test_one_customer_booking_many_agents_at_once_is_in_one_viewing_only():
    # Different agents: no shared lock, only the customer's exclusion constraint stops this.
    customer = UserFactory()
    listings = [ListingFactory(agent=AgentFactory(time_zone="Europe/Paris")) for _ in range(PARALLEL)]
    start = next_weekday_at(11).isoformat()
    codes = race([(customer, {"listing": listing.pk, "start": start}) for listing in listings])
    assert sorted(codes) == [201] + [409] * (PARALLEL - 1)
    assert Viewing.objects.filter(customer=customer, status__in=Viewing.ACTIVE).count() == 1


@pytest.mark.django_db
def test_the_database_refuses_overlaps_written_past_the_services():
    first = ViewingFactory()
    with pytest.raises(IntegrityError, match="viewing_agent_no_overlap"), transaction.atomic():
        # another customer, 10 minutes after the first one ends: inside the agent's buffer
        ViewingFactory(listing=first.listing, start=first.end + dt.timedelta(minutes=10))
    with pytest.raises(IntegrityError, match="viewing_customer_no_overlap"), transaction.atomic():
        ViewingFactory(customer=first.customer, start=first.start + dt.timedelta(minutes=15))
    # cancelled viewings hold nothing
    Viewing.objects.filter(pk=first.pk).update(status=Viewing.Status.CANCELLED)
    assert ViewingFactory(listing=first.listing, customer=first.customer, start=first.start).pk
