"""Versioned cache namespaces and stampede-safe reads of hot keys.

A write bumps its namespace's version after commit, so every cached value built from the old
data is simply never read again (and expires). `get_or_compute` keeps a hot key from being
recomputed by every process at once when it expires."""

import math
import random
import time

from django.core.cache import cache
from django.db import transaction

from realio.db_router import primary_reads

# How long one process may hold a key's recompute lock: past it (the process died), another
# one takes over.
LOCK_SECONDS = 10
# How long a caller with nothing to serve waits for the lock holder's value before it computes
# the value itself, and how often it looks.
WAIT_SECONDS = 2.0
POLL_SECONDS = 0.02


def version(namespace):
    """The current version of `namespace` (created at 1)."""
    return cache.get_or_set(f"version:{namespace}", 1, timeout=None)


def bump(namespace):
    try:
        cache.incr(f"version:{namespace}")
    except ValueError:  # never set, or evicted: any new number invalidates the old keys
        cache.set(f"version:{namespace}", version(namespace) + 1, timeout=None)


def bump_on_commit(*namespaces):
    """Bump after the current transaction commits (at once outside one)."""
    for namespace in namespaces:
        transaction.on_commit(lambda namespace=namespace: bump(namespace))


def listing_namespace(listing_id):
    """The namespace of what is cached about one listing (its API body, its page's fragments)."""
    return f"listing:{listing_id}"


def get_or_compute(key, compute, timeout, *, beta=1.0):
    """The value cached under `key`, computing and caching it for `timeout` seconds if needed.

    Two guards against a stampede on a hot key:
    - probabilistic early expiration ("XFetch", Vattani, Chierichetti and Lowenstein, VLDB
      2015): each read recomputes early with a probability that grows as the expiry nears and
      with the time the value took to compute (`beta` > 1 favours earlier), so one reader
      usually refreshes the value before it expires, while the others keep reading it;
    - a short lock (`cache.add`, Redis SET NX with a TTL): only its holder recomputes; the
      others serve the value they have, or, having none, wait briefly for the holder's.

    `compute` returns a picklable value; None is not cached. It reads from the primary: a
    lagging replica's older rows would otherwise be kept under the newer cache version.
    """
    entry = cache.get(key)
    now = time.time()
    if entry is not None:
        value, delta, expiry = entry
        # -log(u) for u in (0, 1] is an exponential draw: usually small, sometimes large.
        if now - delta * beta * math.log(1.0 - random.random()) < expiry:
            return value
    lock = f"lock:{key}"
    if not cache.add(lock, 1, LOCK_SECONDS):
        if entry is not None:  # someone is refreshing it: the current value is still valid
            return entry[0]
        deadline = now + WAIT_SECONDS
        while time.time() < deadline:
            time.sleep(POLL_SECONDS)
            entry = cache.get(key)
            if entry is not None:
                return entry[0]
        with primary_reads():  # the holder is slow or gone: serve this caller, leave the cache to it
            return compute()
    try:
        started = time.time()
        with primary_reads():
            value = compute()
        delta = time.time() - started
        if value is not None:
            cache.set(key, (value, delta, time.time() + timeout), timeout)
        return value
    finally:
        cache.delete(lock)
