"""Database calls from async code (consumers, the websocket handshake) that give their pooled
connection back.

With asgiref 3.13, a connection opened inside a `database_sync_to_async` call is invisible to
the close_old_connections() that Channels runs around it, so it would stay checked out of the
psycopg pool for good and the pool would run dry (found by the chat benchmark). `db(func)` closes
it from inside the call.
"""

import functools

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
