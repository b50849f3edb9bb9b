"""A Redis client on the cache database, for the few structures the cache API cannot express
(lists drained in batches, sets with expiry). One connection pool per process."""

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis():
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=5)


def key(*parts):
    """A key in the project's namespace, apart from the cache's own keys."""
    return ":".join(["realio", *map(str, parts)])
