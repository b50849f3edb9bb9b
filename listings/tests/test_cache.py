"""A published listing's API body and its page's fragments come from Redis, and are never
stale: every write bumps the listing's cache version after commit."""

import pytest
from django.conf import settings

from accounts.tests.factories import AgentFactory, UserFactory
from listings import services
from listings.tests.factories import ListingFactory, image_upload
from realio import cache as versioned_cache
from realio.redis import get_redis

pytestmark = pytest.mark.django_db(transaction=True)  # versions are bumped after commit


def detail(client, listing):
    response = client.get(f"/api/v1/listings/{listing.pk}/")
    assert response.status_code == 200, response.content
    return response.json()


def cached(pattern):
    """Keys of the cache matching `pattern` (past the cache's prefix and version)."""
    return get_redis().keys(f"{settings.CACHES['default']['KEY_PREFIX']}:*:{pattern}")


def cached_bodies(listing):
    """The listing's bodies cached under its current version."""
    version = versioned_cache.version(versioned_cache.listing_namespace(listing.pk))
    keys = [key.decode().split(":", 2)[2] for key in cached(f"listing-api:{listing.pk}:*")]
    return [key for key in keys if versioned_cache.current_entry(versioned_cache.cache.get(key), version)]


def test_the_second_read_comes_from_the_cache_without_a_query(api_client, django_assert_num_queries):
    listing = ListingFactory(price="300000")
    first = detail(api_client, listing)

    with django_assert_num_queries(0):
        second = detail(api_client, listing)

    assert second == first
    assert len(cached_bodies(listing)) == 1


def test_a_write_through_the_service_is_seen_by_the_next_read(api_client):
    listing = ListingFactory(price="300000", title="Flat by the river")
    assert detail(api_client, listing)["price"] == "300000.00"

    services.listing_update(listing=listing, by=listing.agent, price="280000", title="Flat by the Seine")

    body = detail(api_client, listing)
    assert body["price"] == "280000.00"
    assert body["title"] == "Flat by the Seine"
    assert [row["price"] for row in body["price_history"]][-1] == "280000.00"


def test_an_agent_edit_through_the_api_is_seen_by_the_next_anonymous_read(api_client, auth_client):
    agent = AgentFactory()
    listing = ListingFactory(agent=agent, description="Old text.")
    detail(api_client, listing)

    response = auth_client(agent).patch(f"/api/v1/listings/{listing.pk}/", {"description": "New text."},
                                        format="json")
    assert response.status_code == 200

    assert detail(api_client, listing)["description"] == "New text."


def test_photos_added_moved_and_deleted_show_at_once(api_client):
    listing = ListingFactory()
    assert detail(api_client, listing)["photos"] == []

    first = services.photo_add(listing=listing, by=listing.agent, upload=image_upload(), caption="Kitchen")
    second = services.photo_add(listing=listing, by=listing.agent, upload=image_upload(), caption="Garden")
    assert [p["caption"] for p in detail(api_client, listing)["photos"]] == ["Kitchen", "Garden"]

    services.photo_update(photo_id=second.pk, listing_id=listing.pk, by=listing.agent, position=0)
    assert [p["caption"] for p in detail(api_client, listing)["photos"]] == ["Garden", "Kitchen"]

    services.photo_delete(photo_id=first.pk, listing_id=listing.pk, by=listing.agent)
    assert [p["caption"] for p in detail(api_client, listing)["photos"]] == ["Garden"]


def test_a_withdrawn_listing_is_gone_for_visitors_at_once_and_still_there_for_its_agent(api_client, auth_client):
    listing = ListingFactory()
    detail(api_client, listing)

    services.listing_set_status(listing=listing, by=listing.agent, status="withdrawn")

    assert api_client.get(f"/api/v1/listings/{listing.pk}/").status_code == 404
    assert detail(auth_client(listing.agent), listing)["status"] == "withdrawn"
    assert cached_bodies(listing) == []  # a body only its agent may see is never cached


def test_a_draft_is_not_cached_and_not_shown_to_others(api_client, auth_client):
    listing = ListingFactory(status="draft")

    assert detail(auth_client(listing.agent), listing)["status"] == "draft"
    assert auth_client(UserFactory()).get(f"/api/v1/listings/{listing.pk}/").status_code == 404
    assert api_client.get(f"/api/v1/listings/{listing.pk}/").status_code == 404
    assert cached_bodies(listing) == []


def test_a_deleted_listing_is_not_served_from_the_cache(api_client):
    listing = ListingFactory()
    detail(api_client, listing)

    services.listing_delete(listing=listing, by=listing.agent)

    assert api_client.get(f"/api/v1/listings/{listing.pk}/").status_code == 404


def test_view_counts_written_by_the_flush_are_seen_by_the_next_read(api_client, django_assert_num_queries):
    listing = ListingFactory()
    assert detail(api_client, listing)["view_count"] == 0  # this read queued one view
    body_keys = cached_bodies(listing)

    services.views_flush()

    # The cached body stays (a busy listing's would otherwise be rebuilt at every flush); the
    # count written is laid over it.
    with django_assert_num_queries(0):
        assert detail(api_client, listing)["view_count"] == 1
    assert cached_bodies(listing) == body_keys
    api_client.get(f"/api/v1/listings/{listing.pk}/", REMOTE_ADDR="10.9.8.7")  # no session: counted
    services.views_flush()
    assert detail(api_client, listing)["view_count"] == 3


def test_search_results_carry_the_flushed_view_counts(api_client):
    listing = ListingFactory(title="Counted loft")
    detail(api_client, listing)
    assert api_client.get("/api/v1/search/", {"q": "loft"}).json()["results"][0]["view_count"] == 0

    services.views_flush()

    [result] = api_client.get("/api/v1/search/", {"q": "loft"}).json()["results"]
    assert result["view_count"] == 1


def test_the_page_fragments_follow_an_edit(client):
    listing = ListingFactory(description="Sunny living room.", price="300000")
    page = client.get(f"/listings/{listing.pk}/").content.decode()
    assert "Sunny living room." in page
    assert cached("template.cache.listing-facts.*")  # the fragment was kept

    services.listing_update(listing=listing, by=listing.agent, description="Quiet bedroom.", price="250000")
    services.photo_add(listing=listing, by=listing.agent, upload=image_upload(), caption="The new terrace")

    page = client.get(f"/listings/{listing.pk}/").content.decode()
    assert "Quiet bedroom." in page
    assert "Sunny living room." not in page
    assert "The new terrace" in page  # the gallery
    assert "First price" in page and "−" in page  # the price history shows the cut


def test_a_page_whose_fragments_are_cached_reads_neither_photos_nor_prices(client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    listing = ListingFactory(price="300000")
    services.photo_add(listing=listing, by=listing.agent, upload=image_upload(), caption="Garden view")
    services.listing_update(listing=listing, by=listing.agent, price="280000")
    first = client.get(f"/listings/{listing.pk}/").content.decode()

    with CaptureQueriesContext(connection) as queries:
        second = client.get(f"/listings/{listing.pk}/").content.decode()

    tables = " ".join(query["sql"] for query in queries.captured_queries)
    assert "listings_listingphoto" not in tables and "listings_pricechange" not in tables
    for page in (first, second):  # the same head, gallery and history, from the cache the second time
        assert 'property="og:image"' in page and "Garden view" in page
        assert '"@type"' in page  # the JSON-LD
        assert "First price" in page
    # Another host gets its own absolute URLs, not the first one's.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "other.example.com"]
    other = client.get(f"/listings/{listing.pk}/", HTTP_HOST="other.example.com").content.decode()
    assert 'og:url" content="http://other.example.com/' in other
    assert 'og:image" content="http://other.example.com/' in other


def test_nothing_is_kept_when_the_cache_is_off(settings, api_client, client):
    settings.LISTING_CACHE_SECONDS = 0
    listing = ListingFactory()

    detail(api_client, listing)
    assert client.get(f"/listings/{listing.pk}/").status_code == 200

    assert cached_bodies(listing) == []
    assert cached("template.cache.*") == []


@pytest.fixture
def round_trips(monkeypatch):
    """The Redis round trips made from here on: a command's name, or a pipeline's commands
    joined by spaces."""
    import redis

    trips = []
    execute_command, execute_pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def command(self, *args, **options):
        trips.append(args[0])
        return execute_command(self, *args, **options)

    def pipeline(self, *args, **options):
        trips.append(" ".join(str(args[0]) for args, _options in self.command_stack))
        return execute_pipeline(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    return trips


def test_a_cached_read_costs_two_redis_round_trips(api_client, auth_client, round_trips):
    """The rate limit (one script), then the listing's version, body and view count with the
    view queued (one pipeline): the hot path of the site's most requested endpoint, for an
    anonymous caller and for a signed-in one."""
    listing = ListingFactory()
    customer = auth_client(UserFactory())
    detail(api_client, listing)
    round_trips.clear()

    detail(api_client, listing)
    assert round_trips == ["EVALSHA", "MGET RPUSH"], round_trips

    round_trips.clear()
    detail(customer, listing)
    assert round_trips == ["EVALSHA", "MGET RPUSH"], round_trips


def test_search_results_of_homes_never_read_cost_three_redis_round_trips(api_client, round_trips):
    """Versions, bodies and view counts in one MGET; the versions of homes never read before
    created together; the bodies built then kept together: whatever the page size. (No
    keywords: a keyword's match set, the first time a process uses it, is looked for in Redis
    and left there too: search/snapshot.py.)"""
    for number in range(12):
        ListingFactory(title=f"Harbour loft {number}")
    round_trips.clear()

    response = api_client.get("/api/v1/search/", {"page_size": 12})

    assert len(response.json()["results"]) == 12
    assert round_trips.count("MGET") == 1
    assert round_trips.count("GET") == 0, round_trips  # no version read one by one
    pipelines = [trip for trip in round_trips if " " in trip]
    assert pipelines == ["SET " * 11 + "SET", "MSET" + " EXPIRE" * 12], round_trips  # versions, then bodies
