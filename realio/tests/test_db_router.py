"""The read-replica router: safe requests read from the replica; writes, reads after a write
(in the request, and by the same client for a while), and work outside requests use the primary.

The `replica` alias of the test settings is a test mirror of the default database: a second
connection to the same database, so each query shows which connection it went through."""

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from listings.models import Listing
from listings.tests.factories import ListingFactory
from realio import db_router

ROUTER = "realio.db_router.PrimaryReplicaRouter"


@pytest.fixture
def routed(settings):
    settings.DATABASE_ROUTERS = [ROUTER]
    yield db_router.PrimaryReplicaRouter()
    # The mirror's pooled connections would keep the test database from being dropped.
    connections["replica"].close_pool()


class Queries:
    """The queries each connection ran inside the block."""

    def __enter__(self):
        self.primary = CaptureQueriesContext(connections["default"])
        self.replica = CaptureQueriesContext(connections["replica"])
        self.primary.__enter__()
        self.replica.__enter__()
        return self

    def __exit__(self, *exc):
        self.replica.__exit__(*exc)
        self.primary.__exit__(*exc)


def test_outside_a_request_everything_goes_to_the_primary(routed):
    # Celery tasks, consumers and commands read what they (or the request before them) wrote.
    assert routed.db_for_read(Listing) == "default"
    assert routed.db_for_write(Listing) == "default"


def test_read_only_jobs_may_opt_in_and_writes_still_go_to_the_primary(routed):
    with db_router.replica_reads():
        assert routed.db_for_read(Listing) == "replica"
        assert routed.db_for_write(Listing) == "default"
        assert routed.db_for_read(Listing) == "default"  # it wrote: it reads its own write


@pytest.mark.django_db(transaction=True)  # not inside the test case's own transaction
def test_reads_inside_a_transaction_on_the_primary_stay_there(routed):
    with db_router.replica_reads():
        with transaction.atomic():
            assert routed.db_for_read(Listing) == "default"
        assert routed.db_for_read(Listing) == "replica"


def test_cache_computations_read_from_the_primary(routed):
    with db_router.replica_reads(), db_router.primary_reads():
        assert routed.db_for_read(Listing) == "default"


def test_migrations_run_on_the_primary_only(routed):
    assert routed.allow_migrate("default", "listings")
    assert not routed.allow_migrate("replica", "listings")


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_safe_request_reads_from_the_replica(routed, api_client):
    listing = ListingFactory()

    with Queries() as queries:
        body = api_client.get("/api/v1/listings/").json()

    assert [row["id"] for row in body["results"]] == [listing.pk]
    assert queries.replica.captured_queries
    assert not queries.primary.captured_queries
    assert db_router.PIN_COOKIE not in api_client.cookies


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_write_request_uses_the_primary_and_pins_the_clients_next_reads(routed, client):
    listing = ListingFactory()
    client.force_login(UserFactory())

    with Queries() as queries:
        response = client.post(f"/listings/{listing.pk}/favorite/", {"action": "add"})
    assert response.status_code == 302
    assert queries.primary.captured_queries
    assert not queries.replica.captured_queries
    assert client.cookies[db_router.PIN_COOKIE]["max-age"] > 0

    with Queries() as queries:  # the page it is sent to shows the saved favorite
        assert client.get("/favorites/").status_code == 200
    assert queries.primary.captured_queries
    assert not queries.replica.captured_queries

    del client.cookies[db_router.PIN_COOKIE]  # the pin expired
    with Queries() as queries:
        assert client.get("/favorites/").status_code == 200
    assert queries.replica.captured_queries


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_safe_request_that_writes_reads_from_the_primary_after_its_write(routed, client):
    listing = ListingFactory()

    with Queries() as queries:
        # A first visit: the page saves the new session (a write) before reading the listing.
        assert client.get(f"/listings/{listing.pk}/").status_code == 200

    writes = [q["sql"] for q in queries.primary.captured_queries if q["sql"].startswith(("INSERT", "UPDATE"))]
    assert any("django_session" in sql for sql in writes)
    assert db_router.PIN_COOKIE in client.cookies


def test_without_the_router_nothing_is_pinned(client, settings):
    assert settings.DATABASE_ROUTERS == []
    assert not db_router.replica_configured()
