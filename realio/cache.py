"""Versioned cache namespaces: a write bumps its namespace's version after commit, so every
cached value built from the old data is simply never read again (and expires)."""

from django.core.cache import cache
from django.db import transaction


def version(namespace):
    """The current version of `namespace` (created at 1)."""
    return cache.get_or_set(f"version:{namespace}", 1, timeout=None)


def bump(namespace):
    try:
        cache.incr(f"version:{namespace}")
    except ValueError:  # never set, or evicted: any new number invalidates the old keys
        cache.set(f"version:{namespace}", version(namespace) + 1, timeout=None)


def bump_on_commit(namespace):
    """Bump after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: bump(namespace))
