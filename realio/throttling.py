"""The API's default rate limits: DRF's throttles, counted by `limits` in Redis.

DRF's own throttles keep each caller's request times as one pickled list in the cache, read and
written whole on every request (two round trips, and a list as long as the rate: 1,000
timestamps at 1,000/min); and its per-user throttle also counts anonymous callers, by address,
beside the anonymous one. Here each request costs one round trip (a Lua script of `limits`'
sliding-window counter: the previous window's count weighted by how much of it still
overlaps, plus the current one), and an anonymous caller is counted once.

A throttle that cannot reach Redis raises, as DRF's did through the cache: the API answers 503
with Retry-After (realio.api), like every request that needs Redis while it is down.
"""

import time
from functools import cache

import redis
from limits import RateLimitItemPerSecond, strategies
from limits.storage import RedisStorage
from rest_framework import throttling

from realio.redis import get_redis


@cache
def _limiter():
    # The cache database and connection pool of realio.redis (a redis:// URL is still required).
    client = get_redis()
    storage = RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix="realio:throttle")
    return strategies.SlidingWindowCounterRateLimiter(storage)


class WindowCounterMixin:
    """`allow_request` and `wait` of a DRF SimpleRateThrottle on a sliding-window counter."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.item = RateLimitItemPerSecond(self.num_requests, self.duration)
        return _limiter().hit(self.item, self.key)

    def wait(self):
        try:
            stats = _limiter().get_window_stats(self.item, self.key)
        except redis.RedisError:
            return None
        return max(0.0, stats.reset_time - time.time())


class AnonRateThrottle(WindowCounterMixin, throttling.AnonRateThrottle):
    """Anonymous callers, by client address (API_THROTTLE_ANON)."""


class UserRateThrottle(WindowCounterMixin, throttling.UserRateThrottle):
    """Signed-in callers, by account (API_THROTTLE_USER); anonymous ones are AnonRateThrottle's."""

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)
