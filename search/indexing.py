"""Keeping search current after listing changes: the keyword vocabulary and, where Elasticsearch
serves search, its index.

The listing events (DESIGN.md section 2) drive both, through the outbox on the `search` queue:
handlers reload the listing's current state (relay order is not guaranteed) and are
idempotent, so a retry or a late event never leaves a wrong document behind. Model signals are
not used: bulk writes fire none. What events cannot see (bulk imports, an index restored from
an old snapshot, a lost bulk request) the periodic reconcile repairs, comparing ids and
`updated_at` between the database and the index in keyset batches.
"""

import logging
import time

from django.conf import settings

from listings.models import Listing
from realio import events
from search.services import vocabulary_refresh

logger = logging.getLogger(__name__)

LISTING_EVENTS = ("listing.published", "listing.updated", "listing.price_changed", "listing.status_changed",
                  "listing.deleted")
BATCH_SIZE = 500  # documents per bulk request
RECONCILE_BATCH_SIZE = 1000  # ids compared per round trip


def elasticsearch_in_use():
    return settings.SEARCH_BACKEND == "elasticsearch"


def elasticsearch_backend():
    from search.backends import get_backend

    return get_backend("elasticsearch")


# --- event handlers ------------------------------------------------------------------------------

@events.handler("listing.published", queue="search")
@events.handler("listing.updated", queue="search")
@events.handler("listing.status_changed", queue="search")
def vocabulary_add(event):
    """The listing's words join the keyword vocabulary (typo correction), if it is active."""
    vocabulary_refresh(listing_ids=[event.payload["listing_id"]])


@events.handler("listing.published", queue="search")
@events.handler("listing.updated", queue="search")
@events.handler("listing.price_changed", queue="search")
@events.handler("listing.status_changed", queue="search")
@events.handler("listing.deleted", queue="search")
def index_listing(event):
    """Put the listing's document in its current state: indexed while active, removed otherwise
    (deleted, back to draft, sold…). An unreachable server raises: the run is retried."""
    if elasticsearch_in_use():
        elasticsearch_backend().index([event.payload["listing_id"]])


# --- batch jobs (run by search/tasks.py) ---------------------------------------------------------

def _active_ids_after(last_pk, batch_size):
    return list(Listing.objects.filter(status=Listing.Status.ACTIVE, pk__gt=last_pk)
                .order_by("pk").values_list("pk", flat=True)[:batch_size])


def reindex_all(*, after_pk=0, batch_size=None, time_budget=None, backend=None):
    """Index every active listing, in keyset batches of ids (`pk > last`).

    Returns (documents sent, the last pk done if `time_budget` seconds ran out first, else
    None). Safe to run again or concurrently: each batch writes current state.
    """
    backend, batch_size = backend or elasticsearch_backend(), batch_size or BATCH_SIZE
    started, sent, last_pk = time.monotonic(), 0, after_pk
    while True:
        ids = _active_ids_after(last_pk, batch_size)
        if not ids:
            return sent, None
        sent += backend.index(ids)
        last_pk = ids[-1]
        if time_budget is not None and time.monotonic() - started > time_budget:
            return sent, last_pk


def reconcile(*, after_pk=0, batch_size=None, time_budget=None, backend=None):
    """Repair drift between the database and the index, in keyset batches.

    Each batch takes the next `batch_size` active listings (id, updated_at) after `last_pk`
    and the indexed documents with ids in the same range (read in keyset pages): documents
    missing or older than their listing are indexed, documents without an active listing
    removed. Returns ({"indexed": …, "removed": …, "checked": …}, the last pk done if the time
    budget ran out, else None).
    """
    backend, batch_size = backend or elasticsearch_backend(), batch_size or RECONCILE_BATCH_SIZE
    started, last_pk = time.monotonic(), after_pk
    counts = {"checked": 0, "indexed": 0, "removed": 0}
    while True:
        rows = list(Listing.objects.filter(status=Listing.Status.ACTIVE, pk__gt=last_pk)
                    .order_by("pk").values_list("pk", "updated_at")[:batch_size])
        # The last batch is open-ended: documents above the highest active id are extra too.
        upto_pk = rows[-1][0] if len(rows) == batch_size else None
        in_database = {pk: updated_at.isoformat() for pk, updated_at in rows}
        in_index = dict(backend.indexed_versions(after_pk=last_pk, upto_pk=upto_pk, batch_size=batch_size))
        outdated = [pk for pk, version in in_database.items() if in_index.get(pk) != version]
        extra = [pk for pk in in_index if pk not in in_database]
        if outdated:
            backend.index(outdated)
        if extra:
            backend.remove(extra)
        counts["checked"] += len(rows)
        counts["indexed"] += len(outdated)
        counts["removed"] += len(extra)
        if upto_pk is None:
            if counts["indexed"] or counts["removed"]:
                logger.info("search index reconciled: %s", counts)
            return counts, None
        last_pk = upto_pk
        if time_budget is not None and time.monotonic() - started > time_budget:
            return counts, last_pk
