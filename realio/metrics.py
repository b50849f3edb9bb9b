"""Realio's Prometheus metrics: every business metric is defined here, the apps call one line.

Two kinds:
- counted where they happen (conflicts, messages, deliveries, searches, tasks, sockets): the
  prometheus_client objects below. Under gunicorn and the Celery prefork pool they live in
  files under PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), so one scrape
  adds up every process;
- read from the database, Redis and the broker when Prometheus scrapes (bookings, outbox lag,
  queue lengths, model versions): `StateCollector`, used only by the `/metrics` view. Every web
  process answers them alike: query them with max(), not sum().

The worker's counters are served by the worker itself (`serve_worker_metrics`, on
WORKER_METRICS_PORT), or by the web's `/metrics` when both share one PROMETHEUS_MULTIPROC_DIR
(`make run`).
"""

import contextlib
import functools
import logging
import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

logger = logging.getLogger(__name__)

BOOKING_CONFLICTS = Counter(
    "realio_booking_conflicts", "Viewing requests and reschedules refused with 409 (the time is taken, or the "
    "viewing can no longer move).", ["operation"])
CHAT_MESSAGES = Counter("realio_chat_messages", "Chat messages stored (committed), from the socket and the API.")
WEBSOCKETS_OPEN = Gauge("realio_websockets_open", "Websockets accepted and still open, by route.", ["route"],
                        multiprocess_mode="livesum")
NOTIFICATION_DELIVERIES = Counter(
    "realio_notification_deliveries", "Outcomes of delivery attempts: sent, delivered, skipped, retry "
    "(failed, will retry), failed (for good).", ["channel", "status"])
SEARCH_SECONDS = Histogram("realio_search_seconds", "Time of a search on its backend (cache misses).",
                           ["backend"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
EVENTS_PUBLISHED = Counter("realio_events_published", "Events written to the outbox, by type "
                           "(booking.* counts the viewings' transitions).", ["type"])
CELERY_TASKS = Counter("realio_celery_tasks", "Celery tasks finished in the workers, by outcome: succeeded, "
                       "failed, retried.", ["task", "outcome"])
CELERY_TASK_SECONDS = Histogram("realio_celery_task_seconds", "Run time of Celery tasks.", ["task"],
                                buckets=(.01, .05, .1, .5, 1, 5, 10, 30, 60, 300))


def booking_conflicts(operation):
    """Decorator: count the Conflict (409) a booking service raises, then let it through."""
    from realio.errors import Conflict

    def decorate(func):
        @functools.wraps(func)
        def counted(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Conflict:
                BOOKING_CONFLICTS.labels(operation).inc()
                raise

        return counted

    return decorate


def chat_message_stored(*, committed=False):
    """A message was stored: counted when its transaction commits (at once when it has)."""
    from django.db import transaction

    if committed:
        CHAT_MESSAGES.inc()
    else:
        transaction.on_commit(CHAT_MESSAGES.inc)


def deliveries(rows, status):
    for row in rows:
        NOTIFICATION_DELIVERIES.labels(row.channel, status).inc()


def search_timed(backend, query):
    """`backend.search(query)`, timed under the backend's name."""
    with SEARCH_SECONDS.labels(backend.name).time():
        return backend.search(query)


# --- Websockets: counted by an ASGI wrapper, so consumers need no line of their own ------------

def websocket_route(path):
    """The metric label of a websocket path: its first segment under /ws/ (chat, notifications)."""
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "ws" else "other"


class CountWebsockets:
    """ASGI middleware: a socket counts from its accept until it is closed or its consumer ends."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        gauge = WEBSOCKETS_OPEN.labels(websocket_route(scope.get("path", "")))
        state = {"open": False}

        def closed():
            if state["open"]:
                state["open"] = False
                gauge.dec()

        async def counting_send(message):
            if message["type"] == "websocket.accept" and not state["open"]:
                state["open"] = True
                gauge.inc()
            elif message["type"] == "websocket.close":
                closed()
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            closed()


# --- Celery: task outcomes in the worker processes -------------------------------------------

_task_started = {}


def connect_celery_signals():
    """Count task outcomes and run times (called once by realio/celery.py)."""
    from celery import signals

    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="realio-metrics-prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="realio-metrics-postrun")
    signals.task_success.connect(_task_success, weak=False, dispatch_uid="realio-metrics-success")
    signals.task_failure.connect(_task_failure, weak=False, dispatch_uid="realio-metrics-failure")
    signals.task_retry.connect(_task_retry, weak=False, dispatch_uid="realio-metrics-retry")
    signals.worker_process_shutdown.connect(_process_gone, weak=False, dispatch_uid="realio-metrics-child-exit")


def _task_name(sender):
    return getattr(sender, "name", None) or str(sender)


def _task_prerun(sender=None, task_id=None, **kwargs):
    _task_started[task_id] = time.monotonic()


def _task_postrun(sender=None, task_id=None, **kwargs):
    started = _task_started.pop(task_id, None)
    if started is not None:
        CELERY_TASK_SECONDS.labels(_task_name(sender)).observe(time.monotonic() - started)


def _task_success(sender=None, **kwargs):
    CELERY_TASKS.labels(_task_name(sender), "succeeded").inc()


def _task_failure(sender=None, **kwargs):
    CELERY_TASKS.labels(_task_name(sender), "failed").inc()


def _task_retry(sender=None, request=None, **kwargs):
    CELERY_TASKS.labels(_task_name(sender) if sender is not None else getattr(request, "task", "?"),
                        "retried").inc()


def _process_gone(**kwargs):
    mark_process_dead(os.getpid())


def multiprocess_dir():
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def mark_process_dead(pid):
    """Drop a dead process's live gauges (gunicorn's child_exit, a Celery child's shutdown)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def process_registry():
    """The registry of this process's counters: every process's under multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def serve_worker_metrics(port):
    """Serve the worker's counters on `port` (from the worker's main process, before the pool forks)."""
    from prometheus_client import start_http_server

    if port:
        start_http_server(port, registry=process_registry())
        logger.info("worker metrics on :%s/metrics", port)


# --- State read at scrape time (web processes' /metrics) ---------------------------------------

class StateCollector:
    """Gauges read from the database, Redis and the broker on every scrape; a part that fails is
    left out and `realio_metrics_collector_up{collector}` says so (the scrape itself succeeds)."""

    PARTS = ("bookings", "outbox", "queues", "models")

    def describe(self):
        return []

    def collect(self):
        up = GaugeMetricFamily("realio_metrics_collector_up", "1 when the state metrics of this part could be read.",
                               labels=["collector"])
        for part in self.PARTS:
            try:
                families = list(getattr(self, f"_{part}")())
            except Exception:  # a database or broker outage must not fail the whole scrape
                logger.warning("metrics: could not read %s", part, exc_info=True)
                up.add_metric([part], 0)
                continue
            up.add_metric([part], 1)
            yield from families
        yield up

    def _bookings(self):
        from django.db.models import Count
        from django.utils import timezone

        from bookings.models import Viewing

        counts = dict(Viewing.objects.filter(start__gte=timezone.now()).order_by().values_list("status")
                      .annotate(n=Count("id")).values_list("status", "n"))
        family = GaugeMetricFamily("realio_bookings_upcoming", "Viewings still to come, by status.",
                                   labels=["status"])
        for status in Viewing.Status.values:
            family.add_metric([status], counts.get(status, 0))
        yield family

    def _outbox(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from realio.models import HandlerRun, OutboxEvent

        unrelayed = OutboxEvent.objects.filter(relayed_at__isnull=True).aggregate(n=Count("id"),
                                                                                  oldest=Min("created_at"))
        running = HandlerRun.objects.filter(status=HandlerRun.Status.PENDING).aggregate(
            n=Count("event_id", distinct=True), oldest=Min("event__created_at"))
        failed = HandlerRun.objects.filter(status=HandlerRun.Status.FAILED).aggregate(
            n=Count("event_id", distinct=True))["n"]
        oldest = min(filter(None, (unrelayed["oldest"], running["oldest"])), default=None)
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("realio_outbox_pending_events", "Events not yet relayed, or with a handler "
                                "still to run (failed ones excluded).", value=unrelayed["n"] + running["n"])
        yield GaugeMetricFamily("realio_outbox_oldest_pending_age_seconds", "Age of the oldest pending event "
                                "(0 when none): how far the relay lags.", value=max(age, 0.0))
        yield GaugeMetricFamily("realio_outbox_failed_events", "Events with a handler that exhausted its "
                                "attempts (admin: Events, failed).", value=failed)

    def _queues(self):
        from amqp.exceptions import NotFound as AmqpNotFound
        from kombu.exceptions import ChannelError

        from realio.celery import app, queue_names

        family = GaugeMetricFamily("realio_celery_queue_length", "Tasks waiting in each broker queue.",
                                   labels=["queue"])
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=0)
            for queue in queue_names():
                channel = conn.channel()
                try:
                    length = channel.queue_declare(queue=queue, passive=True).message_count
                except (ChannelError, AmqpNotFound):  # never used yet: no key on Redis
                    length = 0
                finally:
                    with contextlib.suppress(Exception):  # AMQP closes a channel after a passive miss
                        channel.close()
                family.add_metric([queue], length)
        yield family

    def _models(self):
        from recommendations.models import ModelVersion

        info = InfoMetricFamily("realio_model_version", "The promoted (serving) version of each model kind.",
                                labels=["kind"])
        promoted = GaugeMetricFamily("realio_model_promoted_timestamp_seconds", "When the serving version of "
                                     "each model kind was promoted (Unix time).", labels=["kind"])
        for row in ModelVersion.objects.filter(promoted=True).order_by("kind"):
            info.add_metric([row.kind], {"version": row.version})
            if row.promoted_at:
                promoted.add_metric([row.kind], row.promoted_at.timestamp())
        yield info
        yield promoted


class _Together:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def metrics_view(request):
    """`/metrics`: django-prometheus's and the business counters of every process, plus the state."""
    from django.http import HttpResponse

    body = generate_latest(_Together(process_registry(), StateCollector()))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
