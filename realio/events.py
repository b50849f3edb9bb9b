"""Events through a transactional outbox (DESIGN.md section 2).

A service publishes inside its transaction: `events.publish("booking.requested",
booking_id=…)` writes an `OutboxEvent` row. After commit a Celery task relays the row: it
records one `HandlerRun` per handler registered with `@events.handler(type)` and queues each
run as its own task. A run executes the handler and marks itself done in one transaction
while holding the run's row lock, so a task that runs twice acts once. Failures retry with
exponential backoff up to `EVENTS_MAX_ATTEMPTS`, then stay `failed` for the admin to retry.
A periodic sweep relays what a broker outage left behind. Handlers get the event (type,
payload, id) and must reload current state: relay order is not guaranteed.
"""

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import weakref
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from realio import metrics

logger = logging.getLogger(__name__)

_collected_relays: contextvars.ContextVar[list | None] = contextvars.ContextVar("events_collected_relays",
                                                                                 default=None)


class EventError(RuntimeError):
    pass


@dataclass(frozen=True)
class Handler:
    name: str
    func: object
    queue: str


_handlers: dict[str, list[Handler]] = {}
_by_name: dict[str, Handler] = {}


def handler(event_type, *, queue="default"):
    """Register the decorated function `(event) -> None` for `event_type`.

    `queue` is the Celery queue its runs go to (e.g. "notifications").
    """

    def register(func):
        name = f"{func.__module__}.{func.__qualname__}"
        entry = _by_name.get(name)
        if entry is None:
            entry = _by_name[name] = Handler(name=name, func=func, queue=queue)
        elif entry.queue != queue:
            raise EventError(f"handler {name} is registered with two queues ({entry.queue}, {queue})")
        # One function may listen to several types (stacked decorators); registering it twice
        # for one type (a module imported again) is a no-op.
        registered = _handlers.setdefault(event_type, [])
        if all(h.name != name for h in registered):
            registered.append(entry)
        return func

    return register


def handlers_for(event_type):
    return list(_handlers.get(event_type, ()))


def get_handler(name):
    return _by_name.get(name)


def autodiscover_handlers():
    autodiscover_modules("handlers")


def publish(event_type, **payload):
    """Write an event to the outbox in the caller's transaction; relay it after commit.

    Raises EventError outside a transaction: an event must commit or roll back with the
    change it describes.
    """
    from realio.models import OutboxEvent

    if not connection.in_atomic_block:
        raise EventError(f"events.publish({event_type!r}) must be called inside transaction.atomic().")
    try:
        json.dumps(payload)
    except TypeError as exc:
        raise EventError(f"payload of {event_type!r} is not JSON: {exc}") from exc
    event = OutboxEvent.objects.create(type=event_type, payload=payload)
    metrics.EVENTS_PUBLISHED.labels(event_type).inc()
    transaction.on_commit(lambda: _relay_or_collect([event.pk]))
    return event


def relay_on_commit(event_ids):
    """Relay, after the caller's transaction commits, events the caller wrote to the outbox table
    in a statement of its own (chat.services.SEND_SQL writes a message and its events at once);
    at once when that statement was its own transaction (autocommit: it has committed)."""
    ids = list(event_ids)
    if ids:
        transaction.on_commit(lambda: _relay_or_collect(ids))


@contextlib.contextmanager
def relays_collected():
    """Collect, instead of queueing, the relays that transactions committed inside the block
    start: the caller queues them with kick_relays() when it suits it (a chat socket does that
    after it has delivered the message, so the broker is not on the delivery's path)."""
    ids = []
    token = _collected_relays.set(ids)
    try:
        yield ids
    finally:
        _collected_relays.reset(token)


def _relay_or_collect(event_ids):
    pending = _collected_relays.get()
    if pending is not None:
        pending.extend(event_ids)
    else:
        kick_relays(event_ids)


def kick_relay(event_id):
    kick_relays([event_id])


def kick_relays(event_ids):
    """Queue the relay of these events, one task message for all of them; a broker outage is
    logged and left to the sweep."""
    from realio.tasks import relay_event, relay_events

    if not event_ids:
        return
    try:
        with relay_event.app.producer_or_acquire() as producer:
            # One connection attempt: left to itself kombu retries for seconds (broker connection
            # timeout) before giving up, stalling the request that just committed.
            producer.connection.ensure_connection(max_retries=0)
            if len(event_ids) == 1:
                relay_event.apply_async((event_ids[0],), producer=producer, retry=False)
            else:
                relay_events.apply_async((list(event_ids),), producer=producer, retry=False)
    except Exception:  # the broker is down: the rows stay unrelayed and the sweep relays them
        logger.warning("could not queue relay of event %s; the sweep will relay it",
                       ", ".join(map(str, event_ids)), exc_info=True)


_loop_relays = weakref.WeakKeyDictionary()  # event loop -> relays waiting for the next kick


# How long a socket process gathers relays before it queues them in one task message. Queueing
# one costs a millisecond or two of Python on a thread, which holds the interpreter while the
# event loop is delivering messages: done after every chat message, it doubled their delivery
# time (bench/chat.py). Gathered, it costs that a few times a second at most, and events reach
# their handlers this much later.
RELAY_GATHER_SECONDS = 0.5


def kick_relays_soon(event_ids):
    """From async code (a socket consumer): queue these relays off the caller's path, on a thread,
    within RELAY_GATHER_SECONDS. Relays asked for meanwhile, or while a kick is in flight, go
    together in one task message, so the process spends little on the broker per event."""
    from asgiref.sync import sync_to_async

    loop = asyncio.get_running_loop()
    state = _loop_relays.get(loop)
    if state is None:
        state = _loop_relays[loop] = {"ids": [], "task": None}
    state["ids"].extend(event_ids)
    if state["task"] is not None:
        return

    async def flush():
        try:
            await asyncio.sleep(RELAY_GATHER_SECONDS)
            while state["ids"]:
                ids, state["ids"] = state["ids"], []
                await sync_to_async(kick_relays, thread_sensitive=False)(ids)
        finally:  # cancelled with its loop: what is left waits for the sweep
            state["task"] = None

    state["task"] = loop.create_task(flush())


def relay(event_id):
    """Create the handler runs of an event and queue them. Safe to call again."""
    from realio.models import HandlerRun, OutboxEvent

    with transaction.atomic():
        event = OutboxEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            return
        names = [h.name for h in handlers_for(event.type)]
        existing = set(event.runs.values_list("handler", flat=True))
        HandlerRun.objects.bulk_create(
            [HandlerRun(event=event, handler=name) for name in names if name not in existing]
        )
        now = timezone.now()
        event.relayed_at = event.relayed_at or now
        if not names and event.delivered_at is None:
            event.delivered_at = now
        event.save(update_fields=["relayed_at", "delivered_at"])
        pending = list(event.runs.filter(status=HandlerRun.Status.PENDING).values_list("handler", flat=True))
    for name in pending:
        queue_run(event_id, name)


def queue_run(event_id, handler_name, countdown=None):
    from realio.tasks import run_handler

    entry = get_handler(handler_name)
    queue = entry.queue if entry else "default"
    run_handler.apply_async((event_id, handler_name), queue=queue, countdown=countdown)


def backoff_seconds(attempts):
    """Exponential backoff with jitter, capped well below the broker's visibility timeout.

    EVENTS_BACKOFF_BASE_SECONDS (default 1) scales it: 2, 4, 8… seconds after attempt 1, 2, 3….
    """
    unit = settings.EVENTS_BACKOFF_BASE_SECONDS
    base = min(unit * 2 ** attempts, 600)
    return base + random.uniform(0, base / 4)


def run(event_id, handler_name):
    """Run one handler for one event exactly once in effect.

    Returns the countdown before a retry, or None when the run is finished (done, failed
    for good, or nothing to do). The handler runs inside the transaction that marks the run
    done, holding the run's row lock: a second task for the same run waits, then sees it done.
    """
    from realio.models import HandlerRun, OutboxEvent

    with transaction.atomic():
        # Lock the run's row only (FOR UPDATE OF): locking the joined event too would make the
        # other handlers of the event, and its relay, wait for this handler to finish.
        run_row = (HandlerRun.objects.select_for_update(of=("self",)).select_related("event")
                   .filter(event_id=event_id, handler=handler_name).first())
        if run_row is None or run_row.status != HandlerRun.Status.PENDING:
            return None
        entry = get_handler(handler_name)
        run_row.attempts += 1
        try:
            if entry is None:
                raise EventError(f"no handler named {handler_name} is registered")
            with transaction.atomic():
                entry.func(run_row.event)
        except Exception as exc:
            logger.warning("handler %s failed for event %s (attempt %s)", handler_name, event_id,
                           run_row.attempts, exc_info=True)
            run_row.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            if run_row.attempts >= settings.EVENTS_MAX_ATTEMPTS:
                run_row.status = HandlerRun.Status.FAILED
                run_row.next_attempt_at = None
                run_row.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
                return None
            delay = backoff_seconds(run_row.attempts)
            run_row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            run_row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
            return delay
        run_row.status = HandlerRun.Status.DONE
        run_row.finished_at = timezone.now()
        run_row.next_attempt_at = None
        run_row.save(update_fields=["attempts", "status", "finished_at", "next_attempt_at"])
        # Lock the event after the run: the last handler to finish sees the others committed.
        event = OutboxEvent.objects.select_for_update().get(pk=event_id)
        if event.delivered_at is None and not event.runs.exclude(status=HandlerRun.Status.DONE).exists():
            event.delivered_at = timezone.now()
            event.save(update_fields=["delivered_at"])
    return None


def sweep(*, grace_seconds=30):
    """Relay events a broker outage left behind and requeue runs whose retry was lost.

    Returns (events relayed, runs requeued). Anything requeued twice is harmless: runs are
    idempotent.
    """
    from realio.models import HandlerRun, OutboxEvent

    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    event_ids = list(OutboxEvent.objects.filter(relayed_at__isnull=True, created_at__lte=cutoff)
                     .order_by("pk").values_list("pk", flat=True)[:1000])
    for event_id in event_ids:
        relay(event_id)
    stale = list(HandlerRun.objects.filter(status=HandlerRun.Status.PENDING)
                 .filter(models_q_stale(cutoff)).values_list("event_id", "handler")[:1000])
    for event_id, name in stale:
        queue_run(event_id, name)
    return len(event_ids), len(stale)


def models_q_stale(cutoff):
    from django.db.models import Q

    # A run never attempted whose relay is older than the grace, or a retry overdue by it.
    return (Q(next_attempt_at__isnull=True, event__relayed_at__lte=cutoff)
            | Q(next_attempt_at__lte=cutoff))


def retry_failed(event_ids):
    """Give failed runs of these events a fresh start (the admin's "retry")."""
    from realio.models import HandlerRun

    with transaction.atomic():
        HandlerRun.objects.filter(event_id__in=event_ids, status=HandlerRun.Status.FAILED).update(
            status=HandlerRun.Status.PENDING, attempts=0, next_attempt_at=None)
        ids = list(event_ids)
        transaction.on_commit(lambda: kick_relays(ids))


def publish_many(event_type, payloads):
    """Publish one event per payload in one insert (batch jobs); same rules as publish()."""
    from realio.models import OutboxEvent

    if not connection.in_atomic_block:
        raise EventError(f"events.publish_many({event_type!r}) must be called inside transaction.atomic().")
    rows = OutboxEvent.objects.bulk_create([OutboxEvent(type=event_type, payload=p) for p in payloads])
    ids = [row.pk for row in rows]
    metrics.EVENTS_PUBLISHED.labels(event_type).inc(len(rows))
    transaction.on_commit(lambda: _relay_or_collect(ids))
    return rows


def purge(*, older_than_days=None, batch_size=5000):
    """Delete delivered events older than EVENTS_RETENTION_DAYS, in batches; returns how many.

    Undelivered and failed ones stay for the sweep and the admin.
    """
    from realio.models import OutboxEvent

    days = settings.EVENTS_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(OutboxEvent.objects.filter(delivered_at__isnull=False, delivered_at__lt=cutoff)
                   .order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        OutboxEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
