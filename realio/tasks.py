"""Transport for the events outbox: thin tasks over realio.events."""

from celery import shared_task

from realio import events


@shared_task(name="realio.relay_event", acks_late=True)
def relay_event(event_id):
    events.relay(event_id)


@shared_task(name="realio.relay_events", acks_late=True)
def relay_events(event_ids):
    """The relays of several events in one task message (events.kick_relays)."""
    failed = []
    for event_id in event_ids:
        try:
            events.relay(event_id)
        except Exception:  # the others still go; this one is left to the sweep
            events.logger.exception("relay of event %s failed; the sweep will relay it", event_id)
            failed.append(event_id)
    return failed


@shared_task(name="realio.run_handler", acks_late=True)
def run_handler(event_id, handler_name):
    delay = events.run(event_id, handler_name)
    if delay is not None:
        # The run row counts attempts and holds the backoff; the retry goes to the handler's queue.
        events.queue_run(event_id, handler_name, countdown=delay)


@shared_task(name="realio.sweep_events", acks_late=True)
def sweep_events():
    return events.sweep()


@shared_task(name="realio.purge_events", acks_late=True)
def purge_events():
    return events.purge()
