"""The events outbox (DESIGN.md section 2) against the real Redis broker and a real Celery worker.

Nothing is mocked: events are written to PostgreSQL, tasks go through Redis and an in-thread
worker of `realio.celery.app` runs them on the test database. Handlers below are registered
for event types used by one test each; they count their calls in this process's memory (the
worker is a thread of it; a count sees every attempt, even one whose transaction rolled back)
and make their effect a database write (a follow-up event published inside the run's
transaction, which keeps only what committed).
"""

import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from realio import events
from realio.celery import app
from realio.models import HandlerRun, OutboxEvent

DEADLINE = 15.0
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


# --- helpers -------------------------------------------------------------------------------------


def poll(predicate, timeout=DEADLINE):
    """Check `predicate` every 0.1 s until it returns something truthy (returned) or `timeout` passes
    (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def wait_for(predicate, what, timeout=DEADLINE):
    value = poll(predicate, timeout)
    assert value, f"timed out after {timeout} s waiting for {what}"
    return value


_counts = Counter()
_counts_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _reset_counts():
    with _counts_lock:
        _counts.clear()


def bump(key):
    """Count a call (shared by the test, its threads and the worker thread); returns the new count."""
    with _counts_lock:
        _counts[key] += 1
        return _counts[key]


def calls(key):
    with _counts_lock:
        return _counts[key]


def effects(event_type, event):
    return OutboxEvent.objects.filter(type=event_type, payload__source=event.pk).count()


def publish_committed(event_type, **payload):
    with transaction.atomic():
        return events.publish(event_type, **payload)


def delivered(event):
    event.refresh_from_db()
    return event.delivered_at is not None


def run_of(event, func):
    return HandlerRun.objects.get(event=event, handler=handler_name(func))


def handler_name(func):
    return f"{func.__module__}.{func.__qualname__}"


def drain():
    """Wait until the worker has worked through what is already queued on the default queue.

    The worker takes tasks in order: once a barrier event published now has been delivered, the
    tasks queued before its relay (and the tasks those queued) have run. No fixed sleep.
    """
    barrier = publish_committed("test.barrier")
    wait_for(lambda: delivered(barrier), "the barrier event to be delivered")


def use_broker(url):
    """Point the Celery app at another broker. `app.pool` (broker connections) and
    `app.amqp.producer_pool` are built from `broker_url` on first use and then kept: reset both so
    the next publish connects to the new URL."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_down():
    real_url = app.conf.broker_url
    use_broker(UNREACHABLE_BROKER)
    try:
        yield
    finally:
        use_broker(real_url)


# --- handlers (the registry is process-global: the in-thread worker sees them) -------------------


@events.handler("test.barrier")
def barrier_reached(event):
    pass


@events.handler("test.rolled_back")
def on_rolled_back(event):
    bump("rolled_back")


@events.handler("test.delivered")
def delivered_first(event):
    bump(f"delivered_first:{event.pk}")
    events.publish("test.delivered.effect", source=event.pk, handler="first")


@events.handler("test.delivered")
def delivered_second(event):
    bump(f"delivered_second:{event.pk}")
    events.publish("test.delivered.effect", source=event.pk, handler="second")


@events.handler("test.outage")
def on_outage(event):
    bump(f"outage:{event.pk}")
    events.publish("test.outage.effect", source=event.pk)


@events.handler("test.flaky")
def flaky(event):
    # The effect is written first: a failed attempt must roll it back with the run.
    events.publish("test.flaky.effect", source=event.pk)
    if bump(f"flaky:{event.pk}") < 3:
        raise RuntimeError("transient failure")


@events.handler("test.broken")
def broken(event):
    bump(f"broken:{event.pk}")
    if not calls("broken:fixed"):
        raise ValueError("handler is broken")
    events.publish("test.broken.effect", source=event.pk)


def other_backend_waiting_on_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else frozen for the transaction
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@events.handler("test.race")
def racer(event):
    # The first call holds the run until the other thread's run is blocked on this run's row lock,
    # so the two really overlap (were the lock missing, this times out and the effect doubles).
    if bump(f"race:{event.pk}") == 1 and poll(other_backend_waiting_on_a_lock, timeout=5):
        bump(f"race_overlapped:{event.pk}")
    events.publish("test.race.effect", source=event.pk)


@events.handler("test.pair")
def pair_slow(event):
    # Finishes only once the other handler of the same event has finished: one handler's run
    # must not block the other handlers of its event.
    bump(f"pair_slow_entered:{event.pk}")
    other = HandlerRun.objects.filter(event=event, handler=handler_name(pair_fast))
    if not poll(lambda: other.filter(status=HandlerRun.Status.DONE).exists(), timeout=5):
        bump(f"pair_blocked:{event.pk}")


@events.handler("test.pair")
def pair_fast(event):
    pass


@events.handler("test.multi.created")
@events.handler("test.multi.updated")
def on_multi(event):
    bump(f"multi:{event.type}")


# --- publishing ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused_and_writes_nothing():
    # given autocommit mode (no transaction.atomic)
    assert not connection.in_atomic_block

    # when / then
    with pytest.raises(events.EventError):
        events.publish("test.outside", source=1)
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_payload_must_be_json():
    with pytest.raises(events.EventError), transaction.atomic():
        events.publish("test.not_json", when=object())
    assert not OutboxEvent.objects.exists()


def test_a_handler_can_listen_to_several_types():
    # given on_multi decorated for two event types
    name = handler_name(on_multi)

    # then both types deliver to it
    assert name in [h.name for h in events.handlers_for("test.multi.created")]
    assert name in [h.name for h in events.handlers_for("test.multi.updated")]


# --- delivery through the real broker and worker ------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_an_event_rolled_back_is_never_delivered(celery_worker):
    # given an event published in a transaction that rolls back
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        events.publish("test.rolled_back", source=1)
        1 / 0  # noqa: B018

    # when the sweep looks for left-behind events and the worker has worked through its queue
    assert events.sweep(grace_seconds=0) == (0, 0)
    drain()

    # then there never was a row, and the handler never ran
    assert not OutboxEvent.objects.filter(type="test.rolled_back").exists()
    assert calls("rolled_back") == 0


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_committed_event_reaches_every_handler_once(celery_worker):
    # given two handlers for one type
    assert {h.name for h in events.handlers_for("test.delivered")} == {
        handler_name(delivered_first), handler_name(delivered_second)}

    # when an event is published and committed
    event = publish_committed("test.delivered", source=7)

    # then it is delivered: each handler ran once, acted once, and its run is done
    wait_for(lambda: delivered(event), "the event to be delivered")
    assert event.relayed_at is not None and event.delivered_at >= event.relayed_at
    runs = list(event.runs.order_by("handler"))
    assert [(r.handler, r.status, r.attempts) for r in runs] == [
        (handler_name(delivered_first), HandlerRun.Status.DONE, 1),
        (handler_name(delivered_second), HandlerRun.Status.DONE, 1),
    ]
    assert all(r.finished_at is not None and r.next_attempt_at is None for r in runs)
    drain()
    assert calls(f"delivered_first:{event.pk}") == 1
    assert calls(f"delivered_second:{event.pk}") == 1
    assert sorted(OutboxEvent.objects.filter(type="test.delivered.effect", payload__source=event.pk)
                  .values_list("payload__handler", flat=True)) == ["first", "second"]


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_relays_collected_and_kicked_soon_from_async_code_are_delivered_once(celery_worker):
    """What a socket consumer does: relays collected from its transactions, then queued from its
    event loop, several at once while a kick is in flight (one task message for many events)."""
    import asyncio

    # given events committed inside relays_collected(): nothing is queued yet
    with events.relays_collected() as ids:
        committed = [publish_committed("test.delivered", source=n) for n in range(3)]
        with transaction.atomic():
            committed += events.publish_many("test.delivered", [{"source": 10}, {"source": 11}])
    assert ids == [e.pk for e in committed]
    assert not HandlerRun.objects.exists()

    # when async code asks for them to be kicked, in three calls that overlap
    async def kick():
        events.kick_relays_soon(ids[:1])
        events.kick_relays_soon(ids[1:3])
        events.kick_relays_soon(ids[3:])
        while any(state["task"] for state in list(events._loop_relays.values())):
            await asyncio.sleep(0.05)

    asyncio.run(kick())

    # then every event reaches both handlers once
    for event in committed:
        wait_for(lambda event=event: delivered(event), f"event {event.pk} to be delivered")
    drain()
    for event in committed:
        assert calls(f"delivered_first:{event.pk}") == 1 and calls(f"delivered_second:{event.pk}") == 1


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_while_the_broker_is_down_is_delivered_by_the_sweep(request, caplog):
    caplog.set_level(logging.WARNING, logger="realio.events")

    # given the broker is unreachable when the event commits
    with broker_down():
        started = time.monotonic()
        event = publish_committed("test.outage", source=3)  # the commit hook must not raise
        commit_seconds = time.monotonic() - started

        # then the relay could not be queued: that is logged, and the row waits for the sweep
        assert f"could not queue relay of event {event.pk}" in caplog.text
        assert commit_seconds < 3, f"the commit stalled {commit_seconds:.1f} s on the dead broker"
        event.refresh_from_db()
        assert event.relayed_at is None and event.delivered_at is None
        assert not event.runs.exists()
        assert calls(f"outage:{event.pk}") == 0

    # when the broker is back, a worker is up and the sweep runs
    request.getfixturevalue("celery_worker")
    assert events.sweep(grace_seconds=0)[0] == 1

    # then the event is delivered, once
    wait_for(lambda: delivered(event), "the swept event to be delivered")
    drain()
    assert calls(f"outage:{event.pk}") == 1
    assert effects("test.outage.effect", event) == 1
    assert app.conf.broker_url != UNREACHABLE_BROKER


@pytest.mark.django_db(transaction=True)
def test_the_sweep_leaves_recent_events_to_the_relay():
    # given an event the relay has not handled yet (published with the broker down)
    with broker_down():
        event = publish_committed("test.recent", source=4)

    # when the sweep runs with its default grace
    swept = events.sweep()

    # then it leaves the event alone for now
    assert swept == (0, 0)
    event.refresh_from_db()
    assert event.relayed_at is None


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_is_retried_by_the_worker_and_acts_once(celery_worker, settings):
    settings.EVENTS_BACKOFF_BASE_SECONDS = 0.05
    name = handler_name(flaky)

    # given a handler that fails twice, then succeeds
    event = publish_committed("test.flaky", source=5)

    # then the worker retries it to success: three attempts, one effect
    wait_for(lambda: delivered(event), "the flaky handler to succeed")
    run = HandlerRun.objects.get(event=event, handler=name)
    assert (run.status, run.attempts) == (HandlerRun.Status.DONE, 3)
    assert run.last_error == "RuntimeError: transient failure"
    assert calls(f"flaky:{event.pk}") == 3
    assert effects("test.flaky.effect", event) == 1

    # when the same event is relayed again and the run queued again (a duplicate task)
    events.relay(event.pk)
    events.queue_run(event.pk, name)
    drain()

    # then nothing acts twice
    assert calls(f"flaky:{event.pk}") == 3
    assert effects("test.flaky.effect", event) == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == (HandlerRun.Status.DONE, 3)
    assert event.runs.count() == 1


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_handler_that_keeps_failing_ends_failed_and_can_be_retried(celery_worker, settings):
    settings.EVENTS_MAX_ATTEMPTS = 3
    settings.EVENTS_BACKOFF_BASE_SECONDS = 0.05

    # given a handler that always fails
    event = publish_committed("test.broken", source=6)

    # then it ends failed after EVENTS_MAX_ATTEMPTS, with the error recorded, and stops there
    wait_for(lambda: HandlerRun.objects.filter(event=event, status=HandlerRun.Status.FAILED).exists(),
             "the run to fail for good")
    drain()
    run = run_of(event, broken)
    assert run.attempts == 3
    assert run.last_error == "ValueError: handler is broken"
    assert run.next_attempt_at is None
    assert calls(f"broken:{event.pk}") == 3
    event.refresh_from_db()
    assert event.delivered_at is None
    assert effects("test.broken.effect", event) == 0

    # when the handler is fixed and the admin retries the event
    bump("broken:fixed")
    events.retry_failed([event.pk])

    # then it runs again and the event is delivered
    wait_for(lambda: delivered(event), "the retried event to be delivered")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (HandlerRun.Status.DONE, 1)
    assert calls(f"broken:{event.pk}") == 4
    assert effects("test.broken.effect", event) == 1


# --- concurrency (threads with their own database connections, no worker) -------------------------


def run_in_threads(targets):
    """Start the callables at the same moment, each in a thread with its own database connection;
    return their results (an exception raised in a thread is returned too)."""
    start = threading.Barrier(len(targets))
    results = [None] * len(targets)

    def work(index, target):
        try:
            start.wait(timeout=DEADLINE)
            results[index] = target()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 2)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


@pytest.mark.django_db(transaction=True)
def test_two_tasks_running_one_run_at_once_act_once():
    # given a relayed event whose run is pending
    event = publish_committed("test.race", source=8)
    events.relay(event.pk)
    name = handler_name(racer)
    assert run_of(event, racer).status == HandlerRun.Status.PENDING

    # when two threads run it at the same time
    results = run_in_threads([lambda: events.run(event.pk, name)] * 2)

    # then one ran the handler while the other waited on the row lock, then found it done
    assert results == [None, None]
    assert calls(f"race_overlapped:{event.pk}") == 1
    assert calls(f"race:{event.pk}") == 1
    assert effects("test.race.effect", event) == 1
    run = run_of(event, racer)
    assert (run.status, run.attempts) == (HandlerRun.Status.DONE, 1)
    assert delivered(event)


@pytest.mark.django_db(transaction=True)
def test_handlers_of_one_event_do_not_block_each_other():
    # given an event with two pending runs
    event = publish_committed("test.pair", source=9)
    events.relay(event.pk)

    def run_fast_once_slow_is_running():
        wait_for(lambda: calls(f"pair_slow_entered:{event.pk}"), "the slow handler to start")
        return events.run(event.pk, handler_name(pair_fast))

    # when both run at the same time, the slow one waiting for the fast one to finish
    results = run_in_threads([lambda: events.run(event.pk, handler_name(pair_slow)),
                              run_fast_once_slow_is_running])

    # then the fast one finished while the slow one was still running, and the event is delivered
    assert results == [None, None]
    assert calls(f"pair_blocked:{event.pk}") == 0
    assert set(event.runs.values_list("status", flat=True)) == {HandlerRun.Status.DONE}
    assert delivered(event)


# --- admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_outbox_admin_lists_failed_events_for_staff_only(client):
    # given one event with a failed run and one without
    failed = OutboxEvent.objects.create(type="test.admin.failed")
    HandlerRun.objects.create(event=failed, handler="x.y", status=HandlerRun.Status.FAILED, attempts=8,
                              last_error="ValueError: boom")
    OutboxEvent.objects.create(type="test.admin.fine")
    url = "/admin/realio/outboxevent/?state=failed"

    # then a superuser and a staff member see the failed one only
    for user in (UserFactory(is_superuser=True, is_staff=True), StaffFactory()):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        assert [e.type for e in response.context["cl"].result_list] == ["test.admin.failed"]
        assert b"test.admin.failed" in response.content

    # and an agent (is_staff, but not staff) is refused
    client.force_login(AgentFactory())
    assert client.get(url).status_code == 403
