"""Transport for search's batch jobs (the `search` queue): rebuild and reconcile the
Elasticsearch index, refresh the keyword vocabulary. Thin: the work is in search/indexing.py and
search/services.py; every job can be re-run safely."""

from celery import shared_task

from search import indexing, services, snapshot

# A job works this long, then queues its own continuation from the last id it did: no task
# nears the time limit or the broker's visibility timeout, however large the catalogue.
TIME_BUDGET_SECONDS = 120


@shared_task(name="search.reindex_all", acks_late=True)
def reindex_all(after_pk=0):
    """Index every active listing into Elasticsearch (a no-op where PostgreSQL serves search)."""
    if not indexing.elasticsearch_in_use():
        return "skipped: SEARCH_BACKEND is not elasticsearch"
    sent, last_pk = indexing.reindex_all(after_pk=after_pk, time_budget=TIME_BUDGET_SECONDS)
    if last_pk is not None:
        reindex_all.delay(after_pk=last_pk)
    return {"sent": sent, "continues_after": last_pk}


@shared_task(name="search.reconcile", acks_late=True)
def reconcile(after_pk=0):
    """Repair drift between the database and the Elasticsearch index (periodic; a no-op where
    PostgreSQL serves search)."""
    if not indexing.elasticsearch_in_use():
        return "skipped: SEARCH_BACKEND is not elasticsearch"
    counts, last_pk = indexing.reconcile(after_pk=after_pk, time_budget=TIME_BUDGET_SECONDS)
    if last_pk is not None:
        reconcile.delay(after_pk=last_pk)
    return {**counts, "continues_after": last_pk}


@shared_task(name="search.refresh_vocabulary", acks_late=True)
def refresh_vocabulary():
    """Add the words of every active listing to the keyword vocabulary (catches bulk imports,
    which publish no events)."""
    return services.vocabulary_refresh()


@shared_task(name="search.prune_listing_changes", acks_late=True)
def prune_listing_changes():
    """Delete the listing change log's rows older than a day (search/snapshot.py)."""
    return snapshot.prune_changes()
