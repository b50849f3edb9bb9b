"""Database calls from async code (consumers, the websocket handshake) that give their pooled
connection back.

With asgiref 3.13, a connection opened inside a `database_sync_to_async` call is invisible to
the close_old_connections() that Channels runs around it, so it would stay checked out of the
psycopg pool for good and the pool would run dry (found by the chat benchmark). `db(func)` closes
it from inside the call.
"""

import asyncio
import functools
import weakref

from channels.db import DatabaseSyncToAsync
from django.db import close_old_connections


def closing(func):
    """`func`, giving its database connection back to the pool when it returns."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def db(func):
    """Like channels' `database_sync_to_async`, without leaking the pooled connection."""
    return DatabaseSyncToAsync(closing(func))


# --- PostgreSQL and Redis straight from the event loop -----------------------------------------
# The hottest async path (a chat message from a socket) is one Redis round trip and one SQL
# statement. Through a thread (database_sync_to_async) it paid two thread hops, a checkout from
# Django's pool, and a thread holding the interpreter while the event loop delivered messages.
# Here both run on clients of the event loop's own: an AsyncConnectionPool (psycopg's pool;
# its connections belong to one loop) and a redis.asyncio client, created on first use and
# closed when the loop's last holder lets go: a server process keeps them while it has
# sockets; a test's loop closes them before it ends.

_loops = weakref.WeakKeyDictionary()  # event loop -> _LoopClients


class _LoopClients:
    def __init__(self):
        self.pool = None
        self.redis = None
        self.holders = 0
        self.lock = asyncio.Lock()


def _clients():
    loop = asyncio.get_running_loop()
    clients = _loops.get(loop)
    if clients is None:
        clients = _loops[loop] = _LoopClients()
    return clients


def hold():
    """Count a holder (a socket) of this event loop's clients; pair with `await let_go()`."""
    _clients().holders += 1


async def let_go():
    """A holder of this loop's clients is gone; the last one closes them."""
    clients = _clients()
    clients.holders -= 1
    if clients.holders > 0:
        return
    async with clients.lock:
        if clients.holders > 0:  # a socket opened meanwhile
            return
        pool, redis_client, clients.pool, clients.redis = clients.pool, clients.redis, None, None
        if pool is not None:
            await pool.close()
        if redis_client is not None:
            await redis_client.aclose()


def _connect_kwargs():
    from django.db import connections

    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):  # Django's sync choices
        params.pop(key, None)
    return {**params, "autocommit": True}


async def _pool():
    from django.conf import settings
    from psycopg_pool import AsyncConnectionPool

    clients = _clients()
    if clients.pool is None:
        async with clients.lock:
            if clients.pool is None:
                options = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {})
                pool = AsyncConnectionPool(kwargs=_connect_kwargs(), min_size=1, max_size=options.get("max_size", 10),
                                           timeout=options.get("timeout", 10), open=False, name="realio-async")
                await pool.open()
                clients.pool = pool
    return clients.pool


async def fetch_one(sql, params):
    """Run one statement (its own transaction: autocommit) on this loop's pool; its first row.
    Statements run often are prepared by psycopg (after five runs on a connection)."""
    pool = await _pool()
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchone()


def redis_client():
    """This loop's redis.asyncio client on the cache database (realio.redis.get_redis's).

    A call retries once at once (a connection Redis closed while idle), then fails: a socket
    whose Redis is gone closes, and its client reconnects and resends, rather than hanging on in
    seconds of backoff while its messages wait."""
    import redis.asyncio
    from django.conf import settings
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    clients = _clients()
    if clients.redis is None:
        clients.redis = redis.asyncio.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=5,
                                                     retry=Retry(NoBackoff(), 1))
    return clients.redis
