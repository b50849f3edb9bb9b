"""Liveness and readiness probes."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready: the database and Redis answer; otherwise 503 naming what is down."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
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
