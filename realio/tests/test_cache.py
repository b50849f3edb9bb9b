"""Stampede-safe reads of hot keys (realio/cache.py `get_or_compute`) on the real Redis cache."""

import threading
import time

import pytest
from django.core.cache import cache

from realio import cache as versioned_cache


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value="fresh", pause=0.0):
        self.value = value
        self.pause = pause
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        time.sleep(self.pause)  # a slow query: the others arrive while it runs
        return self.value


def test_a_missing_key_is_computed_once_then_read():
    compute = Counter()

    assert versioned_cache.get_or_compute("hot", compute, 60) == "fresh"
    assert versioned_cache.get_or_compute("hot", compute, 60) == "fresh"

    assert compute.calls == 1


def test_concurrent_readers_of_a_missing_key_compute_it_once(monkeypatch):
    monkeypatch.setattr(versioned_cache, "WAIT_SECONDS", 60)  # a slow machine never gives up waiting
    compute = Counter(pause=0.3)
    results = []
    start = threading.Barrier(12)

    def read():
        start.wait()
        results.append(versioned_cache.get_or_compute("hot", compute, 60))

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["fresh"] * 12
    assert compute.calls == 1
    assert cache.get("lock:hot") is None  # released


def test_a_value_past_its_soft_expiry_is_refreshed_by_the_reader_that_gets_the_lock():
    cache.set("hot", ("old", 0.01, time.time() - 1), 60)  # still in Redis, past its expiry
    compute = Counter()

    assert versioned_cache.get_or_compute("hot", compute, 60) == "fresh"
    assert compute.calls == 1
    assert cache.get("hot")[0] == "fresh"


def test_while_one_process_refreshes_the_others_serve_the_current_value():
    cache.set("hot", ("old", 0.01, time.time() - 1), 60)
    assert cache.add("lock:hot", 1, 10)  # another process is recomputing
    compute = Counter()

    assert versioned_cache.get_or_compute("hot", compute, 60) == "old"
    assert compute.calls == 0


def test_with_nothing_to_serve_a_reader_waits_for_the_lock_holder(monkeypatch):
    monkeypatch.setattr(versioned_cache, "WAIT_SECONDS", 60)
    assert cache.add("lock:hot", 1, 10)
    holder = threading.Timer(0.2, lambda: cache.set("hot", ("theirs", 0.2, time.time() + 60), 60))
    holder.start()
    compute = Counter()

    assert versioned_cache.get_or_compute("hot", compute, 60) == "theirs"
    holder.join()
    assert compute.calls == 0


def test_a_reader_computes_itself_when_the_lock_holder_never_answers(monkeypatch):
    monkeypatch.setattr(versioned_cache, "WAIT_SECONDS", 0.1)
    assert cache.add("lock:hot", 1, 10)  # a process that died holding it
    compute = Counter()

    assert versioned_cache.get_or_compute("hot", compute, 60) == "fresh"
    assert compute.calls == 1


def test_none_is_not_cached_and_a_failed_compute_releases_the_lock():
    nothing = Counter(value=None)
    assert versioned_cache.get_or_compute("hot", nothing, 60) is None
    assert versioned_cache.get_or_compute("hot", nothing, 60) is None
    assert nothing.calls == 2

    def broken():
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        versioned_cache.get_or_compute("hot", broken, 60)
    assert cache.get("lock:hot") is None
    assert versioned_cache.get_or_compute("hot", Counter(), 60) == "fresh"


def test_bump_changes_the_version_of_its_namespace_only():
    before = versioned_cache.version("listing:1"), versioned_cache.version("listing:2")

    versioned_cache.bump("listing:1")

    assert versioned_cache.version("listing:1") == before[0] + 1
    assert versioned_cache.version("listing:2") == before[1]


def test_the_redis_cache_keeps_one_client_per_pool():
    from django.core.cache import cache

    from realio.cache_backend import ReusingRedisCacheClient

    assert isinstance(cache._cache, ReusingRedisCacheClient)
    cache.set("reuse-test", {"a": 1}, 30)
    assert cache.get("reuse-test") == {"a": 1}
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=False)
    assert cache.add("reuse-counter", 1) and cache.incr("reuse-counter") == 2


def test_versions_of_creates_the_missing_ones_at_one_in_one_round_trip(monkeypatch):
    import redis

    versioned_cache.bump("listing:7")
    versioned_cache.bump("listing:7")
    cache.set("version:listing:9", 5, None)  # created by another process since `found` was read
    found = cache.get_many(["version:listing:7", "version:listing:8"])
    pipelines = []
    execute = redis.client.Pipeline.execute

    def counting(self, *args, **options):
        pipelines.append(len(self.command_stack))
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    current = versioned_cache.versions_of(["listing:7", "listing:8", "listing:9"], found)

    assert current == {"listing:7": 3, "listing:8": 1, "listing:9": 5}
    assert pipelines == [2]  # one SET NX each for 8 and 9, sent together
    assert cache.get("version:listing:8") == 1
