"""Liveness and readiness probes."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

# Seconds the database check waits for a pooled connection. The pool's own timeout (10 s) is
# for requests; a probe must answer within its own timeout (3 s in deploy/k8s) with a 503.
DATABASE_CHECK_TIMEOUT = 2.0


def healthz(request):
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready: the database and Redis answer; otherwise 503 naming what is down."""
    checks = {}
    try:
        _check_database()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the probe must not raise
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        cache.set("readyz", "1", 5)
        checks["redis"] = "ok" if cache.get("readyz") == "1" else "down: no answer"
    except Exception as exc:
        checks["redis"] = f"down: {exc.__class__.__name__}"
    down = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not down else "unavailable", "checks": checks}
    if down:
        body["detail"] = "down: " + ", ".join(down)
    return JsonResponse(body, status=503 if down else 200)


def _check_database():
    pool = getattr(connection, "pool", None)
    if pool is None:  # no pool configured: the request's own connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    # Straight from the pool with a short wait; a broken connection is discarded on return.
    # Django opens its pool on the first query: a probe may come first (open() is idempotent).
    pool.open()
    with pool.connection(timeout=DATABASE_CHECK_TIMEOUT) as conn:
        conn.execute("SELECT 1")
        conn.rollback()  # back to the pool idle (a new connection is not yet in autocommit)
