"""Search backends: each turns a SearchQuery into a SearchResult (search/query.py)."""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def get_backend(name=None):
    """The backend named (default: SEARCH_BACKEND), one instance per name per process."""
    return _backend(name or settings.SEARCH_BACKEND)


@cache
def _backend(name):
    if name == "postgres":
        from search.backends.postgres import PostgresBackend

        return PostgresBackend()
    if name == "elasticsearch":
        from search.backends.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend()
    raise ImproperlyConfigured(f"SEARCH_BACKEND must be postgres or elasticsearch, not {name!r}")
