"""Where queries go when a read replica is configured (DATABASE_REPLICA_URL).

Reads of a safe HTTP request (GET, HEAD, OPTIONS) go to the `replica` alias; everything else
goes to `default`, the primary:
- writes, and reads in a transaction on the primary;
- every query of a request with an unsafe method, or after the request's first write (the
  request then reads what it wrote);
- the requests of a browser or client that wrote a moment ago: the response of a writing
  request sets a short-lived cookie that pins its next requests to the primary, so the page
  it is sent to after a form shows the change whatever the replica's lag ("pinning", as
  django-multidb-router does it);
- everything outside a request (Celery tasks, websocket consumers, commands): a read-only job
  may opt in with `with replica_reads():`;
- what is computed for the cache (`realio.cache.get_or_compute` runs under `primary_reads()`):
  a value read from a lagging replica would otherwise be kept under the newer cache version.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

REPLICA = "replica"
PRIMARY = "default"
PRIMARY_ROUTER = "realio.db_router.PrimaryReplicaRouter"
PIN_COOKIE = "realio_primary"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Routing:
    primary: bool  # every read goes to the primary
    wrote: bool = False


# Mutable state in the variable: asgiref copies the context into the thread of a sync view,
# and a write there must still be seen by the middleware that set the cookie.
_routing: ContextVar[_Routing | None] = ContextVar("realio_db_routing", default=None)


def replica_configured():
    return REPLICA in settings.DATABASES and PRIMARY_ROUTER in settings.DATABASE_ROUTERS


@contextmanager
def _routed(state):
    token = _routing.set(state)
    try:
        yield state
    finally:
        _routing.reset(token)


def primary_reads():
    """Reads in this block go to the primary."""
    return _routed(_Routing(primary=True))


def replica_reads():
    """Reads in this block go to the replica (for read-only jobs outside requests)."""
    return _routed(_Routing(primary=False))


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        state = _routing.get()
        if state is None or state.primary or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return REPLICA

    def db_for_write(self, model, **hints):
        state = _routing.get()
        if state is not None:
            state.primary = True  # the rest of the request reads its own writes
            state.wrote = True
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two connections

    def allow_migrate(self, db, app_label, **hints):
        return db == PRIMARY


class PrimaryReplicaMiddleware:
    """Chooses the request's reads (see the module), and pins a writer's next requests to the
    primary for DATABASE_REPLICA_PIN_SECONDS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        unsafe = request.method not in SAFE_METHODS
        with _routed(_Routing(primary=unsafe or PIN_COOKIE in request.COOKIES)) as state:
            response = self.get_response(request)
        if unsafe or state.wrote:
            response.set_cookie(PIN_COOKIE, "1", max_age=settings.DATABASE_REPLICA_PIN_SECONDS, httponly=True,
                                secure=request.is_secure(), samesite="Lax")
        return response
