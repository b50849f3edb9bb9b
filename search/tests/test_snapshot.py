"""The facet snapshot (search/snapshot.py): the same counts as SQL, and never stale — committed
changes from any connection are seen, running and rolled-back ones are not."""

import random
import re
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from listings.models import Feature, Listing
from listings.tests.factories import ListingFactory
from realio.errors import ApplicationError
from search import snapshot as snapshot_module
from search.backends.postgres import PostgresBackend
from search.query import SearchQuery
from search.snapshot import ListingSnapshot

PROPERTY_TYPES = Listing.PropertyType.values
FEATURES = Feature.values


def other_connection():
    """A connection of its own to the test database (autocommit), as another process would have."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**{k: v for k, v in params.items() if k in {
        "dbname", "user", "password", "host", "port"}}, autocommit=True)


def facets_of(query_params, snap):
    """(SQL result, snapshot result) of the same query."""
    query = SearchQuery.from_params(query_params)
    by_sql = PostgresBackend(snapshot=lambda: None).search(query)

    def current():
        snap.refresh()
        return snap

    by_snapshot = PostgresBackend(snapshot=current).search(query)
    return by_sql, by_snapshot


@pytest.fixture
def catalogue(db):
    """80 active listings with varied attributes around Paris and Lyon, and a few hidden ones."""
    rng = random.Random(5)
    for index in range(90):
        lng, lat = rng.choice([(2.35, 48.85), (4.83, 45.76)])
        ListingFactory(
            status="active" if index < 80 else rng.choice(["draft", "pending", "withdrawn"]),
            listing_type=rng.choice(["sale", "rent"]),
            property_type=rng.choice(PROPERTY_TYPES),
            price=Decimal(rng.randrange(500, 2_000_000)) / 1 + Decimal("0.50") * rng.randrange(2),
            bedrooms=rng.randrange(0, 6), bathrooms=rng.randrange(0, 4),
            area_sqm=rng.choice([None, Decimal(rng.randrange(2000, 30000)) / 100]),
            year_built=rng.choice([None, rng.randrange(1850, 2025)]),
            features=rng.sample(FEATURES, rng.randrange(0, 5)),
            title=rng.choice(["Garden house", "Bright flat", "Quiet loft"]),
            location=Point(lng + rng.uniform(-0.1, 0.1), lat + rng.uniform(-0.1, 0.1), srid=4326),
        )


QUERIES = st.fixed_dictionaries({}, optional={
    "listing_type": st.sampled_from(["sale", "rent", "sale,rent"]),
    "property_type": st.lists(st.sampled_from(PROPERTY_TYPES), min_size=1, max_size=3).map(",".join),
    "min_price": st.sampled_from(["1000", "250000.5", "600000"]),
    "max_price": st.sampled_from(["2000", "900000", "1500000.49"]),
    "min_beds": st.integers(0, 5).map(str),
    "min_baths": st.integers(0, 3).map(str),
    "min_area": st.sampled_from(["50", "120.5"]),
    "max_area": st.sampled_from(["100", "250"]),
    "min_year": st.sampled_from(["1900", "1990"]),
    "max_year": st.sampled_from(["1950", "2020"]),
    "features": st.lists(st.sampled_from(FEATURES), min_size=1, max_size=2).map(",".join),
    "q": st.sampled_from(["garden", "bright", "loft"]),
    "bbox": st.sampled_from(["2.3,48.8,2.4,48.9", "4.7,45.6,4.9,45.8", "2.2,48.7,2.5,49.0"]),
    "radius_km": st.sampled_from(["3", "8"]),
    "sort": st.sampled_from(["relevance", "newest", "price_asc", "price_desc", "distance"]),
    "page": st.sampled_from(["1", "2", "4"]),
    "page_size": st.sampled_from(["5", "20"]),
})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(params=QUERIES)
def test_snapshot_counts_equal_sql(catalogue, params):
    if "radius_km" in params:
        params = {**params, "lat": "48.85", "lng": "2.35"}
    try:
        SearchQuery.from_params(params)
    except ApplicationError:
        assume(False)  # a 400, tested elsewhere
    snap = ListingSnapshot()
    by_sql, by_snapshot = facets_of(params, snap)
    assert by_snapshot.total == by_sql.total
    assert by_snapshot.facets == by_sql.facets
    assert by_snapshot.ids == by_sql.ids
    assert by_snapshot.distances_km == by_sql.distances_km


def test_no_snapshot_inside_a_transaction(catalogue):
    assert connection.in_atomic_block
    assert snapshot_module.current() is None  # uncommitted rows must not enter process state


@pytest.mark.django_db(transaction=True)
def test_committed_changes_from_another_connection_are_seen():
    listing = ListingFactory(property_type="house", features=["garden"])
    snap = ListingSnapshot()
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[1]["property_type"] == {"house": 1}

    with other_connection() as other:
        other.execute("UPDATE listings_listing SET property_type = 'condo', features = '{pool}' WHERE id = %s",
                      [listing.pk])
    snap.refresh()
    total, facets, _ = snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))
    assert (total, facets["property_type"], facets["features"]) == (1, {"condo": 1}, {"pool": 1})

    with other_connection() as other:
        other.execute("UPDATE listings_listing SET status = 'sold', close_price = price, closed_at = now() "
                      "WHERE id = %s", [listing.pk])
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[0] == 0

    second = ListingFactory(price=Decimal("1000.00"))
    snap.refresh()
    cheap = SearchQuery(max_price=Decimal("1000"))
    assert snap.counts(cheap, snap.base_mask(cheap))[0] == 1
    second.delete()
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_change_running_during_a_refresh_is_seen_once_committed_and_a_rollback_never():
    listing = ListingFactory(bedrooms=2)
    snap = ListingSnapshot()
    snap.refresh()
    with other_connection() as running, other_connection() as rolled_back:
        running.autocommit = rolled_back.autocommit = False
        running.execute("UPDATE listings_listing SET bedrooms = 4 WHERE id = %s", [listing.pk])
        rolled_back.execute("INSERT INTO search_listing_change (listing_id) VALUES (%s)", [listing.pk])
        rolled_back.execute("UPDATE listings_listing SET price = 1 WHERE id = %s", [listing.pk + 10**6])
        snap.refresh()  # both transactions are still running: nothing new yet
        assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[1]["bedrooms"] == {"2": 1}
        rolled_back.rollback()
        running.commit()
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[1]["bedrooms"] == {"4": 1}


@pytest.mark.django_db(transaction=True)
def test_view_counts_write_no_change_rows_and_truncate_reloads():
    listing = ListingFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM search_listing_change")
        before = cursor.fetchone()[0]
        cursor.execute("UPDATE listings_listing SET view_count = view_count + 1 WHERE id = %s", [listing.pk])
        cursor.execute("SELECT count(*) FROM search_listing_change")
        assert cursor.fetchone()[0] == before
    snap = ListingSnapshot()
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[0] == 1
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE listings_listing CASCADE")
    snap.refresh()
    assert snap.counts(SearchQuery(), snap.base_mask(SearchQuery()))[0] == 0


@pytest.mark.django_db(transaction=True)
def test_the_process_snapshot_serves_search_outside_transactions(monkeypatch):
    from search import services

    ListingFactory(property_type="house")
    reloads = []
    original = ListingSnapshot._reload
    monkeypatch.setattr(ListingSnapshot, "_reload", lambda self: (reloads.append(1), original(self))[1])
    monkeypatch.setattr(snapshot_module, "_snapshot", ListingSnapshot())
    page = services.search(SearchQuery())
    assert page.total == 1 and page.result.facets["property_type"] == {"house": 1}
    ListingFactory(property_type="condo")
    page = services.search(SearchQuery())
    assert page.total == 2 and page.result.facets["property_type"] == {"condo": 1, "house": 1}
    assert reloads == [1]  # the second search read only the change


@pytest.mark.django_db(transaction=True)
def test_old_change_rows_are_pruned_and_a_long_idle_snapshot_reloads(monkeypatch):
    ListingFactory()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE search_listing_change SET changed_at = now() - interval '2 days'")
    ListingFactory()
    assert snapshot_module.prune_changes() >= 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM search_listing_change")
        assert cursor.fetchone()[0] == 1
    snap = ListingSnapshot()
    snap.refresh()
    snap._refreshed -= snapshot_module.FULL_RELOAD_AFTER_SECONDS + 1
    reloads = []
    monkeypatch.setattr(snap, "_reload", lambda: reloads.append(1))
    snap.refresh()
    assert reloads == [1]


@pytest.mark.parametrize("page", ["1", "2", "3", "5"])
def test_ranked_pages_across_the_rank_window_agree(catalogue, monkeypatch, page):
    """Relevance ranks the most recent matches only; pages past that window follow in newest
    order — the same in both ways of computing them."""
    from search.backends import postgres

    monkeypatch.setattr(postgres, "RANK_WINDOW", 7)
    by_sql, by_snapshot = facets_of({"q": "garden", "page": page, "page_size": "4"}, ListingSnapshot())
    assert by_sql.ids  # the catalogue has enough gardens for five pages
    assert by_snapshot.ids == by_sql.ids


@pytest.mark.django_db(transaction=True)
def test_kept_keyword_sets_follow_title_edits_from_other_connections():
    gardens = [ListingFactory(title="House with a garden") for _ in range(2)]
    ListingFactory(title="Flat with a view")
    snap = ListingSnapshot()
    snap.refresh()
    assert sorted(snap.keyword_ids("garden")) == sorted(listing.pk for listing in gardens)
    assert "garden" in snap.keywords  # kept

    with other_connection() as other:
        other.execute("UPDATE listings_listing SET title = 'Flat with a terrace' WHERE id = %s", [gardens[0].pk])
        other.execute("UPDATE listings_listing SET title = 'Garden flat' WHERE title = 'Flat with a view'")
        other.execute("UPDATE listings_listing SET status = 'withdrawn', published_at = NULL WHERE id = %s",
                      [gardens[1].pk])
    snap.refresh()
    (flat,) = Listing.objects.filter(title="Garden flat")
    assert list(snap.keywords["garden"].ids) == [flat.pk]
    query = SearchQuery(q="garden")
    assert snap.counts(query, snap.base_mask(query) & snap.rows_for_ids(snap.keyword_ids("garden")))[0] == 1


@pytest.mark.django_db(transaction=True)
def test_kept_ranks_are_reused_and_follow_edits_from_other_connections():
    """A kept keyword set remembers the ranks a search read, so the same window is ranked again
    without a statement; an edit elsewhere re-ranks the edited home, as SQL ranks it."""
    from django.test.utils import CaptureQueriesContext

    titled = ListingFactory(title="Garden house", description="Near the park.")
    described = ListingFactory(title="Flat", description="A flat with a small garden.")
    snap = ListingSnapshot()
    query = {"q": "garden"}
    by_sql, by_snapshot = facets_of(query, snap)
    assert by_snapshot.ids == by_sql.ids == [titled.pk, described.pk]
    with CaptureQueriesContext(connection) as queries:
        assert facets_of(query, snap)[1].ids == [titled.pk, described.pk]
    assert not [q for q in queries if "ts_rank_cd" in q["sql"] and "= ANY" in q["sql"]]  # remembered

    with other_connection() as other:
        other.execute("UPDATE listings_listing SET title = 'Garden flat' WHERE id = %s", [described.pk])
    by_sql, by_snapshot = facets_of(query, snap)
    assert by_snapshot.ids == by_sql.ids == [described.pk, titled.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sort", ["distance", "newest"])
def test_radius_and_distance_order_follow_the_spheroid_near_the_edge(sort):
    """The snapshot decides a radius on a sphere only where the sphere cannot be wrong: homes
    near the edge (at the equator a kilometre north is shorter on the spheroid than on the sphere,
    a kilometre east longer) are decided by PostGIS, and pages by distance follow its distances."""
    import math

    degrees_per_km = 180 / (math.pi * snapshot_module.EARTH_RADIUS_M / 1000)
    rng = random.Random(3)
    for index in range(48):
        bearing = math.radians(index * 7.5)
        km = rng.uniform(9.93, 10.07)
        ListingFactory(title="Garden flat" if index % 2 else "Quiet loft", location=Point(
            km * degrees_per_km * math.sin(bearing), km * degrees_per_km * math.cos(bearing), srid=4326))
    snap = ListingSnapshot()
    for params in ({"radius_km": "10"}, {"radius_km": "10", "q": "garden"}):
        for page in ("1", "2", "3"):
            query = {**params, "lat": "0", "lng": "0", "sort": sort, "page": page, "page_size": "7"}
            by_sql, by_snapshot = facets_of(query, snap)
            assert (by_snapshot.total, by_snapshot.ids, by_snapshot.distances_km) == (
                by_sql.total, by_sql.ids, by_sql.distances_km)
    # The sphere alone would have been wrong about some of them.
    within = set(Listing.objects.filter(location__dwithin=(Point(0, 0, srid=4326), 10_000)).values_list(
        "pk", flat=True))
    rows = np.arange(snap.size)
    by_sphere = set(snap.ids[rows[snap.sphere_distances(rows, 0.0, 0.0) <= 10_000]].tolist())
    assert within != by_sphere


def _full_reads(queries):
    return [q for q in queries if "array_agg(l.id ORDER BY l.id)" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_a_keyword_set_read_by_one_process_serves_the_others_brought_up_to_date():
    from django.test.utils import CaptureQueriesContext

    gardens = [ListingFactory(title="Garden house") for _ in range(3)]
    ListingFactory(title="Flat with a view")
    first = ListingSnapshot()
    first.refresh()
    assert sorted(first.keyword_ids("garden")) == sorted(listing.pk for listing in gardens)

    with other_connection() as other:  # changes after the first process read the set
        other.execute("UPDATE listings_listing SET title = 'Flat' WHERE id = %s", [gardens[0].pk])
        other.execute("UPDATE listings_listing SET title = 'Garden flat' WHERE title = 'Flat with a view'")
    added = ListingFactory(title="Another garden")
    (flat,) = Listing.objects.filter(title="Garden flat")

    second = ListingSnapshot()  # another process
    second.refresh()
    with CaptureQueriesContext(connection) as queries:
        ids = second.keyword_ids("garden")
    assert not _full_reads(queries)  # taken from Redis, with the changes since tested again
    assert sorted(ids) == sorted([gardens[1].pk, gardens[2].pk, flat.pk, added.pk])
    # The kept set is current: the same counts as SQL.
    by_sql, by_snapshot = facets_of({"q": "garden"}, second)
    assert (by_snapshot.total, by_snapshot.ids) == (by_sql.total, by_sql.ids) == (4, by_sql.ids)


@pytest.mark.django_db(transaction=True)
def test_a_shared_keyword_set_is_not_used_across_a_truncate_when_too_old_or_without_redis(monkeypatch):
    from django.core.cache import cache
    from django.test.utils import CaptureQueriesContext
    from redis.exceptions import ConnectionError as RedisConnectionError

    ListingFactory(title="Garden house")
    ListingSnapshot().keyword_ids("garden")  # shared
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE listings_listing CASCADE")
    fresh = ListingFactory(title="Garden flat")
    snap = ListingSnapshot()
    snap.refresh()
    with CaptureQueriesContext(connection) as queries:
        assert list(snap.keyword_ids("garden")) == [fresh.pk]
    assert len(_full_reads(queries)) == 1  # the change log cannot bridge a truncate: read again

    key = snapshot_module._shared_key("garden")
    at, written, *rest = cache.get(key)
    cache.set(key, (at, written - snapshot_module.FULL_RELOAD_AFTER_SECONDS - 1, *rest))
    assert snapshot_module.shared_keyword_set("garden") is None  # the change log may have lost rows since

    def down(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    other = ListingSnapshot()
    other.refresh()
    assert list(other.keyword_ids("garden")) == [fresh.pk]  # read by itself


@pytest.mark.django_db(transaction=True)
def test_ranks_learnt_by_one_process_serve_the_others_except_for_homes_changed_since():
    from django.test.utils import CaptureQueriesContext

    titled = ListingFactory(title="Garden house", description="Near the park.")
    described = ListingFactory(title="Flat", description="A flat with a small garden.")
    first = ListingSnapshot()
    assert facets_of({"q": "garden"}, first)[1].ids == [titled.pk, described.pk]  # ranks learnt, left

    second = ListingSnapshot()
    with CaptureQueriesContext(connection) as queries:
        by_snapshot = facets_of({"q": "garden"}, second)[1]
    assert by_snapshot.ids == [titled.pk, described.pk]
    assert not [q for q in queries if "ts_rank_cd" in q["sql"] and "= ANY" in q["sql"]]  # none read again

    with other_connection() as other:
        other.execute("UPDATE listings_listing SET title = 'Garden flat' WHERE id = %s", [described.pk])
    third = ListingSnapshot()
    with CaptureQueriesContext(connection) as queries:
        by_sql, by_snapshot = facets_of({"q": "garden"}, third)
    assert by_snapshot.ids == by_sql.ids == [described.pk, titled.pk]  # the changed home ranked again
    (ranked,) = [q["sql"] for q in queries if "ts_rank_cd" in q["sql"] and "= ANY" in q["sql"]]
    assert {int(pk) for pk in re.search(r"ANY\('\{([\d,]*)\}'", ranked).group(1).split(",")} == {described.pk}


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc"])
def test_the_first_rows_of_an_order_are_those_of_the_whole_order_with_ties(sort):
    rng = random.Random(9)
    snap = ListingSnapshot()
    snap._add([(pk, rng.choice([100, 200, 300]) * 100, 1, 1, None, None, "house", "sale", [], 0.0, 0.0,
                rng.choice([10, 20, 30])) for pk in rng.sample(range(1, 500), 60)])
    matching = np.array([rng.random() < 0.8 for _ in range(snap.size)])
    whole = snap.ordered(matching, sort).tolist()
    assert len(whole) == int(matching.sum())
    for count in range(len(whole) + 2):
        assert snap.ordered(matching, sort, count=count).tolist() == whole[:count]
