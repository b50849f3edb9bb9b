"""A Celery worker killed (SIGKILL) in the middle of an event handler: the run happens again
and its effect (the agent's notification of a new booking) happens once.

The handler is held mid-transaction, so the kill lands while it runs: the test holds the
notification's unique key (an uncommitted row of its own), and the handler's insert of that
notification waits on it. Two kills: first the pool process
(the main process sees it lost and requeues the task: acks_late with reject_on_worker_lost),
then the whole worker, main process and pool at once (its unacknowledged message stays with
the dead worker until the broker's visibility timeout; the outbox sweep requeues the run).
"""

import os
import signal

import psycopg
import pytest
import requests

from tests.faults.conftest import free_slots, wait_until

pytestmark = pytest.mark.faults


def test_a_worker_killed_mid_task_runs_it_again_and_its_effect_happens_once(stack):
    # given: the site, beat (the sweep every 2 s) and a customer's booking request, committed
    # while no worker runs
    stack.web(workers=1)
    stack.beat()
    token = stack.token("customer1@demo.realio")
    listing, start = free_slots(stack, token, count=1)[0]
    agent_id = stack.postgres.sql("SELECT agent_id FROM listings_listing WHERE id = %s", [listing])[0][0]
    response = requests.post(stack.url("/api/v1/bookings/"), json={"listing": listing, "start": start},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 201, response.text
    booking_id = response.json()["id"]
    event_id = stack.postgres.sql("SELECT id FROM realio_outboxevent WHERE type = 'booking.requested' "
                                  "AND (payload->>'booking_id')::int = %s", [booking_id])[0][0]
    handler = "notifications.handlers.booking_requested"
    lock = psycopg.connect(stack.postgres.dsn)
    lock.execute("INSERT INTO notifications_notification (user_id, kind, source, title, body, url, data, "
                 "collapse_key, created_at) VALUES (%s, 'booking.requested', %s, 'held', '', '', '{}', '', now())",
                 [agent_id, f"event:{event_id}"])

    def waiting(*words):
        """How many backends wait on a lock running a statement with all these words."""
        queries = stack.postgres.sql("SELECT query FROM pg_stat_activity WHERE datname = 'realio' "
                                     "AND wait_event_type = 'Lock'")
        return sum(all(word in query for word in words) for (query,) in queries)

    def waiting_on_locks():
        return waiting()

    def run_row():
        rows = stack.postgres.sql("SELECT status, attempts FROM realio_handlerrun WHERE event_id = %s "
                                  "AND handler = %s", [event_id, handler])
        return rows[0] if rows else None

    def notifications():
        return stack.postgres.sql("SELECT id FROM notifications_notification WHERE source = %s AND user_id = %s",
                                  [f"event:{event_id}", agent_id])

    try:
        worker = stack.worker(concurrency=1)
        wait_until(lambda: waiting('INSERT INTO "notifications_notification"'), timeout=60,
                   what="the handler to wait on the held key")

        # when: the pool process running the handler is killed
        (child,) = worker.children()
        os.kill(child, signal.SIGKILL)

        # then: the worker runs the task again: the second attempt waits for the run's row, which
        # the killed attempt's transaction (still waiting on the held key) has locked
        wait_until(lambda: waiting('"realio_handlerrun"', "FOR UPDATE"), timeout=60, what="the task to run again")

        # when: the whole worker is killed, main process and pool, mid-task again
        worker.kill_hard()
    finally:
        lock.rollback()
        lock.close()

    # then: the killed attempts' transactions died with their connections: nothing was kept
    wait_until(lambda: waiting_on_locks() == 0, timeout=60, what="the killed attempts' transactions to end")
    assert notifications() == [], stack.logs()
    assert run_row() == ("pending", 0)

    # when: a worker is back
    stack.worker(concurrency=1)

    # then: the run is done, once: one notification for the agent, one delivery per channel
    wait_until(lambda: run_row() == ("done", 1), timeout=120, interval=0.5,
               what=f"the handler run to be done (now {run_row()})\n{stack.logs()}")
    assert len(notifications()) == 1
    deliveries = stack.postgres.sql(
        "SELECT channel, count(*) FROM notifications_delivery d JOIN notifications_notification n "
        "ON n.id = d.notification_id WHERE n.source = %s GROUP BY channel", [f"event:{event_id}"])
    assert deliveries and all(count == 1 for _channel, count in deliveries)
    assert stack.postgres.sql("SELECT count(*) FROM bookings_viewing WHERE id = %s", [booking_id]) == [(1,)]
