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


def versions_of(namespaces, found):
    """The current versions of `namespaces`, given what a get_many of their version keys
    `found`: those missing are created at 1 in one round trip (as `version` does one by one)."""
    missing = [namespace for namespace in namespaces if found.get(f"version:{namespace}") is None]
    added = cache.add_many({f"version:{namespace}": 1 for namespace in missing}, timeout=None) if missing else set()
    current = {namespace: found.get(f"version:{namespace}") for namespace in namespaces}
    for namespace in missing:  # created here, or by another process in between
        current[namespace] = 1 if f"version:{namespace}" in added else version(namespace)
    return current


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


def get_or_compute(key, compute, timeout, *, namespace=None, beta=1.0):
    """The value cached under `key`, computing and caching it for `timeout` seconds if needed.

    Two guards against a stampede on a hot key:
    - probabilistic early expiration ("XFetch", Vattani, Chierichetti and Lowenstein, VLDB
      2015): each read recomputes early with a probability that grows as the expiry nears and
      with the time the value took to compute (`beta` > 1 favours earlier), so one reader
      usually refreshes the value before it expires, while the others keep reading it;
    - a short lock (`cache.add`, Redis SET NX with a TTL): only its holder recomputes; the
      others serve the value they have, or, having none, wait briefly for the holder's.

    With `namespace`, the value is kept with the namespace's version read before computing it;
    the version and the value are read in one round trip, and a value of an older version counts
    as missing (it is never served, not even while another process recomputes it).

    `compute` returns a picklable value; None is not cached. It reads from the primary: a
    lagging replica's older rows would otherwise be kept under the newer cache version.
    """
    return get_or_compute_with(key, compute, timeout, namespace=namespace, beta=beta)[0]


def get_or_compute_with(key, compute, timeout, *, namespace=None, also=(), then=None, beta=1.0):
    """`get_or_compute`, also reading the keys `also` in the same round trip: (value, {key: what
    the cache holds for it} for those of `also` it holds). `then(pipeline)` may add redis-py
    commands to that round trip (writes whose replies are not needed)."""
    if namespace is None and not also and then is None:
        current, extra = None, {}
        entry = cache.get(key)
    else:
        version_key = f"version:{namespace}" if namespace is not None else None
        keys = [k for k in (version_key, key, *also) if k is not None]
        found = cache.get_many(keys) if then is None else cache.get_many_then(keys, then)
        extra = {k: found[k] for k in also if k in found}
        current = None
        if namespace is not None:
            current = found.get(version_key)
            if current is None:
                current = version(namespace)
        entry = current_entry(found.get(key), current)
    now = time.time()
    if entry is not None:
        value, delta, expiry = entry[:3]
        # -log(u) for u in (0, 1] is an exponential draw: usually small, sometimes large.
        if now - delta * beta * math.log(1.0 - random.random()) < expiry:
            return value, extra
    lock = f"lock:{key}"
    if not cache.add(lock, 1, LOCK_SECONDS):
        if entry is not None:  # someone is refreshing it: the current value is still valid
            return entry[0], extra
        deadline = now + WAIT_SECONDS
        while time.time() < deadline:
            time.sleep(POLL_SECONDS)
            entry = current_entry(cache.get(key), current)
            if entry is not None:
                return entry[0], extra
        with primary_reads():  # the holder is slow or gone: serve this caller, leave the cache to it
            return compute(), extra
    try:
        started = time.time()
        with primary_reads():
            value = compute()
        delta = time.time() - started
        if value is not None:
            cache.set(key, entry_of(value, delta, time.time() + timeout, current), timeout)
        return value, extra
    finally:
        cache.delete(lock)


def entry_of(value, delta, expiry, version=None):
    """What get_or_compute keeps: the value, the seconds it took, its expiry and its version."""
    return (value, delta, expiry) if version is None else (value, delta, expiry, version)


def current_entry(entry, current):
    """`entry` if it belongs to version `current` (any entry when `current` is None)."""
    if entry is None or current is None:
        return entry
    return entry if len(entry) == 4 and entry[3] == current else None
