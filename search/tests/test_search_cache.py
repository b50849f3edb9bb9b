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


def test_search_api_bodies_come_from_the_listing_cache_and_are_fresh_after_a_write(
        client, settings, django_assert_max_num_queries):
    settings.SEARCH_CACHE_SECONDS = 60
    settings.LISTING_CACHE_SECONDS = 600
    listing = ListingFactory(city="Lyon", title="Loft by the river")
    ListingFactory(city="Lyon", title="House with a garden")
    assert client.get("/api/v1/search/?q=loft").json()["results"][0]["title"] == "Loft by the river"

    # Page and bodies cached: no query for the listings (only what the request itself needs).
    with django_assert_max_num_queries(2):
        body = client.get("/api/v1/search/?q=loft").json()
    assert [result["id"] for result in body["results"]] == [listing.pk]

    listing_services.listing_update(listing=listing, by=listing.agent, title="Loft by the canal")
    (result,) = client.get("/api/v1/search/?q=loft").json()["results"]
    assert result["title"] == "Loft by the canal"
    assert client.get(f"/api/v1/listings/{listing.pk}/").json()["title"] == "Loft by the canal"

    listing_services.listing_update(listing=listing, by=listing.agent, status="withdrawn")
    assert client.get("/api/v1/search/").json()["count"] == 1
    assert [r["title"] for r in client.get("/api/v1/search/").json()["results"]] == ["House with a garden"]


@pytest.mark.parametrize("cached", [False, True])
def test_search_results_are_the_listing_api_bodies(client, settings, cached):
    """Search builds its bodies directly (listings/bodies.py): the same as the serializer's."""
    settings.LISTING_CACHE_SECONDS = 600 if cached else 0
    listing = ListingFactory(title="Loft by the river", area_sqm=None)
    listing_services.listing_update(listing=listing, by=listing.agent, price="349999.99")
    detail = client.get(f"/api/v1/listings/{listing.pk}/").json()
    (result,) = client.get("/api/v1/search/?q=loft").json()["results"]
    assert result == detail
    assert len(result["price_history"]) == 2 and result["url"].startswith("http://testserver/")
    (near,) = client.get("/api/v1/search/?q=loft&lat=48.869&lng=2.3312&radius_km=1").json()["results"]
    assert near == {**detail, "distance_km": near["distance_km"]} and near["distance_km"] < 1
