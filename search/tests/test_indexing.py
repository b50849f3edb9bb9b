"""Keeping search current: the listing events through the real outbox, broker and worker add
words to the vocabulary and keep the Elasticsearch index in step; the keyset batch jobs rebuild
and reconcile the index; `manage.py search_index --rebuild` works from the same document.

Elasticsearch is an external service that cannot run here: FakeElasticsearch (search/tests)
replaces it at the HTTP boundary, and the tests assert what the real client would have sent.
"""

import io
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from elasticsearch import Elasticsearch

from listings import services as listing_services
from listings.models import Listing
from listings.tests.factories import ListingFactory
from realio.celery import app
from realio.models import HandlerRun, OutboxEvent
from search import indexing, tasks
from search.backends import elasticsearch as elasticsearch_backend
from search.backends.elasticsearch import ElasticsearchBackend
from search.documents import INDEX_NAME, ListingDocument
from search.models import SearchTerm
from search.tests import FakeElasticsearch

DEADLINE = 20.0
INDEX_HANDLER = "search.indexing.index_listing"
VOCABULARY_HANDLER = "search.indexing.vocabulary_add"


def wait_for(predicate, what, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)


def runs_done(listing, handler):
    """Every run of `handler` for this listing's events is done (and there is one)."""
    runs = HandlerRun.objects.filter(event__payload__listing_id=listing.pk, handler=handler)
    return runs.exists() and not runs.exclude(status=HandlerRun.Status.DONE).exists()


def expected_source(listing):
    listing.refresh_from_db()
    return {
        "id": listing.pk, "title": listing.title, "description": listing.description, "street": listing.street,
        "city": listing.city, "region": listing.region, "listing_type": listing.listing_type,
        "property_type": listing.property_type, "status": "active", "country": listing.country,
        "features": listing.features, "price": float(listing.price), "area_sqm": float(listing.area_sqm),
        "bedrooms": listing.bedrooms, "bathrooms": listing.bathrooms, "year_built": listing.year_built,
        "published_at": listing.published_at.isoformat(), "updated_at": listing.updated_at.isoformat(),
        "location": {"lat": listing.location.y, "lon": listing.location.x},
    }


@pytest.fixture
def elasticsearch(settings, monkeypatch):
    """SEARCH_BACKEND=elasticsearch, the server a FakeElasticsearch (in every thread)."""
    settings.SEARCH_BACKEND = "elasticsearch"
    server = FakeElasticsearch()
    server.current = server.client
    monkeypatch.setattr(elasticsearch_backend, "default_client", lambda: server.current)
    return server


# --- the events, through the outbox and a worker --------------------------------------------------

@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_publishing_a_listing_adds_its_words_to_the_vocabulary(celery_worker):
    listing = ListingFactory(status="draft", title="Xylophone mansion", description="A quokka garden.")
    assert not SearchTerm.objects.filter(word__in=["xylophone", "quokka"]).exists()

    listing_services.listing_set_status(listing=listing, by=listing.agent, status="active")

    wait_for(lambda: runs_done(listing, VOCABULARY_HANDLER), "the vocabulary handler")
    assert set(SearchTerm.objects.filter(word__in=["xylophone", "mansion", "quokka"])
               .values_list("word", flat=True)) == {"xylophone", "mansion", "quokka"}


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_drafts_words_stay_out_of_the_vocabulary(celery_worker):
    listing = ListingFactory(status="draft", title="Zeppelin")

    listing_services.listing_update(listing=listing, by=listing.agent, title="Zeppelin hangar")

    wait_for(lambda: runs_done(listing, VOCABULARY_HANDLER), "the vocabulary handler")
    assert not SearchTerm.objects.filter(word__in=["zeppelin", "hangar"]).exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_listing_events_keep_the_elasticsearch_index_current(celery_worker, elasticsearch):
    listing = ListingFactory(status="draft", title="Loft by the canal")
    agent = listing.agent

    # Published: indexed as it is now.
    listing_services.listing_set_status(listing=listing, by=agent, status="active")
    wait_for(lambda: runs_done(listing, INDEX_HANDLER), "indexing after publication")
    assert elasticsearch.docs[INDEX_NAME] == {str(listing.pk): expected_source(listing)}
    assert {(op, index, pk) for op, index, pk, _ in elasticsearch.bulk_actions()} == {
        ("index", INDEX_NAME, listing.pk)}

    # A price change: the document is rewritten with the new price.
    listing_services.listing_update(listing=listing, by=agent, price=Decimal("310000"))
    wait_for(lambda: elasticsearch.docs[INDEX_NAME][str(listing.pk)]["price"] == 310000.0, "the new price")
    assert elasticsearch.docs[INDEX_NAME] == {str(listing.pk): expected_source(listing)}

    # Withdrawn: removed; deleted: removed again, harmlessly (404 ignored).
    listing_services.listing_set_status(listing=listing, by=agent, status="withdrawn")
    wait_for(lambda: not elasticsearch.docs[INDEX_NAME], "removal after withdrawal")
    listing_pk = listing.pk
    listing_services.listing_delete(listing=listing, by=agent)
    wait_for(lambda: [a for a in elasticsearch.bulk_actions() if a[0] == "delete"][1:], "removal after deletion")
    wait_for(lambda: not HandlerRun.objects.filter(event__payload__listing_id=listing_pk)
             .exclude(status=HandlerRun.Status.DONE).exists(), "every run done")
    assert elasticsearch.docs[INDEX_NAME] == {}
    assert all(pk == listing_pk for _, _, pk, _ in elasticsearch.bulk_actions())


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_server_is_retried_not_lost(celery_worker, elasticsearch, settings):
    settings.EVENTS_BACKOFF_BASE_SECONDS = 0.2
    elasticsearch.current = Elasticsearch("http://127.0.0.1:1", max_retries=0, request_timeout=1)  # nothing listens
    listing = ListingFactory(status="draft", title="Lighthouse keeper's cottage")

    listing_services.listing_set_status(listing=listing, by=listing.agent, status="active")

    run = wait_for(lambda: HandlerRun.objects.filter(event__type="listing.published", handler=INDEX_HANDLER,
                                                     event__payload__listing_id=listing.pk, attempts__gte=1).first(),
                   "a failed attempt")
    assert run.status == HandlerRun.Status.PENDING
    assert "ConnectionError" in run.last_error
    assert run.event.delivered_at is None
    wait_for(lambda: runs_done(listing, VOCABULARY_HANDLER), "the vocabulary, which does not need the server")

    elasticsearch.current = elasticsearch.client  # the server is back

    wait_for(lambda: runs_done(listing, INDEX_HANDLER), "the retries to succeed")
    assert elasticsearch.docs[INDEX_NAME] == {str(listing.pk): expected_source(listing)}


@pytest.mark.django_db
def test_with_postgresql_the_index_handler_sends_nothing(settings, monkeypatch):
    settings.SEARCH_BACKEND = "postgres"
    monkeypatch.setattr(elasticsearch_backend, "default_client", lambda: pytest.fail("Elasticsearch was called"))
    listing = ListingFactory()

    indexing.index_listing(OutboxEvent(type="listing.updated", payload={"listing_id": listing.pk}))


# --- the batch jobs -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_reindex_all_sends_active_listings_in_keyset_batches():
    server = FakeElasticsearch()
    backend = ElasticsearchBackend(client=server.client)
    active = [ListingFactory() for _ in range(5)]
    ListingFactory(status="draft")
    ListingFactory(status="sold", published_at=timezone.now())

    sent, continues_after = indexing.reindex_all(batch_size=2, backend=backend)

    assert (sent, continues_after) == (5, None)
    assert set(server.docs[INDEX_NAME]) == {str(listing.pk) for listing in active}
    bulks = [len(body) // 2 for method, path, body in server.requests if path.startswith("/_bulk")]
    assert bulks == [2, 2, 1]


@pytest.mark.django_db
def test_reindex_all_stops_when_its_time_is_up_and_resumes_after_the_last_id():
    server = FakeElasticsearch()
    backend = ElasticsearchBackend(client=server.client)
    first, second, third = (ListingFactory() for _ in range(3))

    sent, continues_after = indexing.reindex_all(batch_size=2, time_budget=0, backend=backend)
    assert (sent, continues_after) == (2, second.pk)

    sent, continues_after = indexing.reindex_all(after_pk=continues_after, batch_size=2, backend=backend)
    assert (sent, continues_after) == (1, None)
    assert set(server.docs[INDEX_NAME]) == {str(first.pk), str(second.pk), str(third.pk)}


@pytest.mark.django_db
def test_reconcile_repairs_missing_stale_and_extra_documents():
    server = FakeElasticsearch()
    backend = ElasticsearchBackend(client=server.client)
    stale, gone, missing, current = (ListingFactory(title=f"Home {n}") for n in range(4))
    draft = ListingFactory(status="draft")
    backend.index([stale.pk, gone.pk, current.pk])
    server.docs[INDEX_NAME][str(draft.pk)] = {"updated_at": draft.updated_at.isoformat()}  # indexed by mistake
    server.docs[INDEX_NAME]["999999999"] = {"updated_at": "2020-01-01T00:00:00+00:00"}
    # Bulk writes fire no events: the index drifts.
    Listing.objects.filter(pk=stale.pk).update(price=Decimal("123456"),
                                               updated_at=timezone.now() + timedelta(seconds=1))
    Listing.objects.filter(pk=gone.pk).delete()

    counts, continues_after = indexing.reconcile(batch_size=2, backend=backend)

    assert counts == {"checked": 3, "indexed": 2, "removed": 3}
    assert continues_after is None
    assert set(server.docs[INDEX_NAME]) == {str(stale.pk), str(missing.pk), str(current.pk)}
    assert server.docs[INDEX_NAME][str(stale.pk)] == expected_source(stale)
    assert server.docs[INDEX_NAME][str(missing.pk)] == expected_source(missing)
    # Keyset windows over the index: (0, 2nd active id], then everything above it.
    ranges = [body["query"]["range"]["id"] for body in server.searches()]
    assert ranges[0] == {"gt": 0, "lte": missing.pk} and ranges[-1] == {"gt": missing.pk}

    assert indexing.reconcile(batch_size=2, backend=backend) == ({"checked": 3, "indexed": 0, "removed": 0}, None)


@pytest.mark.django_db
def test_reconcile_pages_through_many_extra_documents():
    server = FakeElasticsearch()
    backend = ElasticsearchBackend(client=server.client)
    listing = ListingFactory()
    backend.index([listing.pk])
    for pk in range(listing.pk + 1, listing.pk + 8):
        server.docs[INDEX_NAME][str(pk)] = {"updated_at": None}

    counts, _ = indexing.reconcile(batch_size=3, backend=backend)

    assert counts == {"checked": 1, "indexed": 0, "removed": 7}
    assert set(server.docs[INDEX_NAME]) == {str(listing.pk)}
    assert [body.get("search_after") for body in server.searches()] == [None, [listing.pk + 2], [listing.pk + 5]]


def test_search_tasks_go_to_the_search_queue():
    for name in ("search.reindex_all", "search.reconcile", "search.refresh_vocabulary"):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "search"


@pytest.mark.django_db
def test_the_index_jobs_are_no_ops_with_postgresql(settings):
    settings.SEARCH_BACKEND = "postgres"

    assert tasks.reconcile().startswith("skipped")
    assert tasks.reindex_all().startswith("skipped")


@pytest.mark.django_db
def test_refresh_vocabulary_adds_the_words_of_every_active_listing():
    ListingFactory(title="Orangery")
    ListingFactory(title="Belvedere", status="draft")

    tasks.refresh_vocabulary()

    assert SearchTerm.objects.filter(word="orangery").exists()
    assert not SearchTerm.objects.filter(word="belvedere").exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_reindex_task_continues_itself_until_done(celery_worker, elasticsearch, monkeypatch):
    monkeypatch.setattr(tasks, "TIME_BUDGET_SECONDS", 0)
    monkeypatch.setattr(indexing, "BATCH_SIZE", 2)
    listings = [ListingFactory() for _ in range(5)]

    tasks.reindex_all.delay()

    wait_for(lambda: len(elasticsearch.docs.get(INDEX_NAME, {})) == 5, "every listing indexed")
    assert set(elasticsearch.docs[INDEX_NAME]) == {str(listing.pk) for listing in listings}
    assert [len(body) // 2 for _, path, body in elasticsearch.requests if path.startswith("/_bulk")] == [2, 2, 1]


# --- the document and `manage.py search_index` -----------------------------------------------------

@pytest.mark.django_db
def test_the_document_reads_active_listings_in_keyset_batches(monkeypatch, django_assert_num_queries):
    from search import documents

    monkeypatch.setattr(documents, "BATCH_SIZE", 2)
    active = [ListingFactory() for _ in range(3)]
    ListingFactory(status="draft")

    with django_assert_num_queries(3):  # two full batches and an empty one
        listed = list(ListingDocument().get_indexing_queryset())

    assert [listing.pk for listing in listed] == [listing.pk for listing in active]


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:Passing transport options:DeprecationWarning")  # inside the command
def test_search_index_rebuild_builds_the_index_from_the_document(monkeypatch):
    from django_elasticsearch_dsl.management.commands.search_index import Command
    from elasticsearch.dsl.connections import connections

    server = FakeElasticsearch()
    monkeypatch.setitem(connections._conns, "default", server.client)  # the command's connection
    active = [ListingFactory() for _ in range(3)]
    ListingFactory(status="draft")

    call_command(Command(), "--rebuild", "-f", stdout=io.StringIO())

    methods_and_paths = [(method, path.split("?")[0]) for method, path, _ in server.requests]
    assert methods_and_paths[:3] == [("GET", "/_alias"), ("DELETE", f"/{INDEX_NAME}"), ("PUT", f"/{INDEX_NAME}")]
    created = server.requests[2][2]
    assert created["mappings"]["properties"]["location"] == {"type": "geo_point"}
    assert created["mappings"]["properties"]["title"]["analyzer"] == "english"
    assert server.docs[INDEX_NAME] == {str(listing.pk): expected_source(listing) for listing in active}
