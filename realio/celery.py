"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered.

Each worker process counts its tasks (realio/metrics.py) and, when OTEL_EXPORTER_OTLP_ENDPOINT
is set, traces them (realio/tracing.py, set up in every pool process after the fork).
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realio.settings.base")

app = Celery("realio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def queue_names():
    """Every queue tasks are routed to (the default one first)."""
    conf = app.conf
    routed = [route["queue"] for route in (conf.task_routes or {}).values() if "queue" in route]
    return list(dict.fromkeys([conf.task_default_queue, *routed]))


@signals.worker_init.connect(weak=False)
def _worker_init(**kwargs):
    """The worker's main process, before its pool starts: serve the pool's metrics. A pool
    without child processes (solo, threads) is traced from here."""
    from django.conf import settings

    from realio import metrics, tracing

    metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT)
    sender = kwargs.get("sender")
    pool = getattr(sender, "pool_cls", None)
    if "prefork" not in str(getattr(pool, "__module__", pool)):
        tracing.setup("worker")


@signals.worker_process_init.connect(weak=False)
def _worker_process_init(**kwargs):
    """A pool process after the fork: its own tracer (the exporter's thread does not survive a fork)."""
    from realio import tracing

    tracing.setup("worker")


@signals.worker_process_shutdown.connect(weak=False)
def _worker_process_shutdown(**kwargs):
    from realio import tracing

    tracing.shutdown()


def _connect_metrics():
    from realio import metrics

    metrics.connect_celery_signals()


_connect_metrics()
