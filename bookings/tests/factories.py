import datetime as dt

import factory

from accounts.tests.factories import UserFactory
from bookings.models import Viewing
from listings.tests.factories import ListingFactory


class ViewingFactory(factory.django.DjangoModelFactory):
    """A requested 30-minute viewing (buffer 15 min) written straight to the table: tests that
    are about the rules book through bookings.services instead."""

    class Meta:
        model = Viewing

    listing = factory.SubFactory(ListingFactory)
    agent = factory.LazyAttribute(lambda o: o.listing.agent)
    customer = factory.SubFactory(UserFactory)
    start = factory.LazyFunction(lambda: (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
        minute=0, second=0, microsecond=0))
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=30))
    blocked_until = factory.LazyAttribute(lambda o: o.end + dt.timedelta(minutes=15))
    requested_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    status = Viewing.Status.REQUESTED
