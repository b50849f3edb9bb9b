"""Identical searches come from the cache, and a listing write makes the next one fresh."""

import pytest

from listings import services as listing_services
from listings.tests.factories import ListingFactory
from search import services
from search.query import SearchQuery

pytestmark = pytest.mark.django_db(transaction=True)  # the version is bumped after commit


def test_cached_results_are_dropped_by_a_listing_write(settings, django_assert_max_num_queries):
    settings.SEARCH_CACHE_SECONDS = 60
    listing = ListingFactory(city="Lyon", price="300000")
    query = SearchQuery.from_params({"max_price": "400000"})
    assert services.search(query).result.ids == [listing.pk]

    with django_assert_max_num_queries(3):  # hydration only: the result came from the cache
        assert services.search(query).result.ids == [listing.pk]

    listing_services.listing_update(listing=listing, by=listing.agent, price="450000")

    assert services.search(query).result.ids == []
    assert services.search(query).total == 0
