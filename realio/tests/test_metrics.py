"""`/metrics` after the real actions: bookings and their conflicts, chat messages, websockets,
notification deliveries, the outbox's lag, queue lengths, model versions, search latency and
task outcomes counted by a real worker."""

import datetime as dt
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from celery import shared_task
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import AgentFactory, UserFactory
from chat.tests.factories import ConversationFactory
from listings import demo as listing_demo
from listings.tests.factories import ListingFactory
from notifications import services as notification_services
from realio import events
from realio.asyncdb import closing
from realio.models import HandlerRun, OutboxEvent

PARIS = ZoneInfo("Europe/Paris")
ORIGIN = (b"origin", b"http://testserver")


def scrape(client=None):
    """{(sample name, frozenset of labels): value} of one GET /metrics."""
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def next_weekday(days_ahead=2):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def at(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS).isoformat()


def book(client, listing, start):
    return client.post("/api/v1/bookings/", {"listing": listing.pk, "start": start}, format="json")


@pytest.mark.django_db
def test_bookings_by_status_and_conflicts_of_requests_and_reschedules(auth_client):
    # given an agent's listing and two customers
    listing = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    first, second = auth_client(UserFactory()), auth_client(UserFactory())
    day = next_weekday()
    before = scrape()

    # when the first books 10:00, the second asks for 10:00 too (409), books 11:00 and then
    # tries to move it onto the first one's time (409)
    assert book(first, listing, at(day, 10)).status_code == 201
    assert book(second, listing, at(day, 10)).status_code == 409
    moving = book(second, listing, at(day, 11)).json()["id"]
    response = second.post(f"/api/v1/bookings/{moving}/reschedule/", {"start": at(day, 10)}, format="json")
    assert response.status_code == 409
    after = scrape()

    # then two viewings wait for the agent, and each refusal was counted once where it happened
    assert value(after, "realio_bookings_upcoming", status="requested") == 2
    assert value(after, "realio_bookings_upcoming", status="confirmed") == 0
    for operation in ("request", "reschedule"):
        assert (value(after, "realio_booking_conflicts_total", operation=operation)
                - value(before, "realio_booking_conflicts_total", operation=operation)) == 1
    assert (value(after, "realio_events_published_total", type="booking.requested")
            - value(before, "realio_events_published_total", type="booking.requested")) == 2
    assert value(after, "realio_metrics_collector_up", collector="bookings") == 1


@pytest.mark.django_db
def test_chat_messages_are_counted_once_stored(auth_client, django_capture_on_commit_callbacks):
    conversation = ConversationFactory()
    before = value(scrape(), "realio_chat_messages_total")

    with django_capture_on_commit_callbacks(execute=True):
        for body in ("Is it still available?", "Can I visit on Friday?"):
            response = auth_client(conversation.customer).post(
                f"/api/v1/conversations/{conversation.pk}/messages/", {"body": body}, format="json")
            assert response.status_code == 201
        # a repeated client_id returns the stored message: nothing new is counted
        for _ in range(2):
            auth_client(conversation.customer).post(f"/api/v1/conversations/{conversation.pk}/messages/",
                                                    {"body": "Once", "client_id": "c-1"}, format="json")

    assert value(scrape(), "realio_chat_messages_total") - before == 3


@pytest.fixture
def _fresh_channel_layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def bearer(user):
    return (b"authorization", f"Bearer {RefreshToken.for_user(user).access_token}".encode())


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_open_websockets_are_counted_by_route_until_they_close():
    # given a conversation's two parties
    # (each call gives its thread's connection back to the pool: the executor thread outlives the test)
    conversation = await sync_to_async(closing(ConversationFactory))()
    customer, agent = await sync_to_async(closing(lambda: (conversation.customer, conversation.listing.agent)))()
    get = sync_to_async(closing(scrape))

    # when the customer opens the notifications socket and both open the chat
    sockets = []
    for user, path in ((customer, "/ws/notifications/"), (customer, f"/ws/chat/{conversation.pk}/"),
                       (agent, f"/ws/chat/{conversation.pk}/")):
        communicator = WebsocketCommunicator(application(), path,
                                             headers=[ORIGIN, await sync_to_async(closing(bearer))(user)])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_json_from(timeout=5)  # unread count / presence
        sockets.append(communicator)
    # and an anonymous one is refused (accepted, then closed with 4401)
    refused = WebsocketCommunicator(application(), f"/ws/chat/{conversation.pk}/", headers=[ORIGIN])
    await refused.connect(timeout=5)
    await refused.wait(timeout=5)

    # then the open sockets are counted by route
    samples = await get()
    assert value(samples, "realio_websockets_open", route="notifications") == 1
    assert value(samples, "realio_websockets_open", route="chat") == 2

    # and no longer once they are closed
    for communicator in sockets:
        await communicator.disconnect()
    samples = await get()
    assert value(samples, "realio_websockets_open", route="notifications") == 0
    assert value(samples, "realio_websockets_open", route="chat") == 0


def application():
    from realio.asgi import application

    return application


@pytest.mark.django_db
def test_notification_deliveries_are_counted_by_channel_and_outcome():
    # given a welcome notification for someone without a phone or device
    user = UserFactory(phone="")
    notification = notification_services.notify(user=user, kind="account.welcome", source="event:metrics", url="/",
                                                context={"role": "customer"})
    rows = {d.channel: d for d in notification.deliveries.all()}
    before = scrape()

    # when its in-app and email deliveries are sent, and the account is closed before a retry
    notification_services.deliver(rows["email"].pk)
    user.is_active = False
    user.save(update_fields=["is_active"])
    notification_services.deliver(rows["in_app"].pk)
    after = scrape()

    # then the email counts as sent (the row says so too), the in-app one as skipped
    rows["email"].refresh_from_db()
    assert rows["email"].status in ("sent", "delivered")
    for channel, status in (("email", rows["email"].status), ("in_app", "skipped")):
        assert (value(after, "realio_notification_deliveries_total", channel=channel, status=status)
                - value(before, "realio_notification_deliveries_total", channel=channel, status=status)) == 1


@pytest.mark.django_db
def test_outbox_lag_pending_and_failed_events():
    # given an empty outbox
    samples = scrape()
    assert value(samples, "realio_outbox_pending_events") == 0
    assert value(samples, "realio_outbox_oldest_pending_age_seconds") == 0

    # when an event is published and never relayed (this test's transaction never commits), two
    # minutes ago, and another one's handler failed for good
    with transaction.atomic():
        stuck = events.publish("listing.updated", listing_id=1)
        failed = events.publish("listing.updated", listing_id=2)
    OutboxEvent.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    OutboxEvent.objects.filter(pk=failed.pk).update(relayed_at=timezone.now())
    HandlerRun.objects.create(event=failed, handler="search.handlers.nothing", status=HandlerRun.Status.FAILED,
                              attempts=8)
    samples = scrape()

    # then one event is pending for about two minutes, and one failed
    assert value(samples, "realio_outbox_pending_events") == 1
    assert 120 <= value(samples, "realio_outbox_oldest_pending_age_seconds") < 3600
    assert value(samples, "realio_outbox_failed_events") == 1
    assert value(samples, "realio_metrics_collector_up", collector="outbox") == 1


@shared_task(name="realio.tests.metrics_noop")
def metrics_noop():
    return None


@shared_task(name="realio.tests.metrics_boom")
def metrics_boom():
    raise RuntimeError("this task fails on purpose")


@shared_task(name="realio.tests.metrics_retry", bind=True, max_retries=1)
def metrics_retry(self):
    raise self.retry(exc=RuntimeError("again"), countdown=0)


@pytest.mark.django_db
def test_queue_lengths_come_from_the_broker():
    # given tasks queued with no worker running: three on default, one on notifications
    for _ in range(3):
        metrics_noop.delay()
    metrics_noop.apply_async(queue="notifications")

    samples = scrape()

    assert value(samples, "realio_celery_queue_length", queue="default") == 3
    assert value(samples, "realio_celery_queue_length", queue="notifications") == 1
    assert value(samples, "realio_celery_queue_length", queue="ml") == 0
    assert value(samples, "realio_metrics_collector_up", collector="queues") == 1


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_task_outcomes_are_counted_by_a_real_worker(celery_worker):
    def outcome(samples, task, name):
        return value(samples, "realio_celery_tasks_total", task=task, outcome=name)

    before = scrape()

    # when a task succeeds, one fails and one is retried once and then fails
    metrics_noop.delay()
    metrics_boom.delay()
    metrics_retry.delay()

    # then the worker counted each outcome by task name
    expected = {("realio.tests.metrics_noop", "succeeded"): 1, ("realio.tests.metrics_boom", "failed"): 1,
                ("realio.tests.metrics_retry", "retried"): 1, ("realio.tests.metrics_retry", "failed"): 1}
    deadline = time.monotonic() + 30
    while True:
        after = scrape()
        counted = {key: outcome(after, *key) - outcome(before, *key) for key in expected}
        if counted == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counted == expected
    assert (value(after, "realio_celery_task_seconds_count", task="realio.tests.metrics_boom")
            - value(before, "realio_celery_task_seconds_count", task="realio.tests.metrics_boom")) == 1


@pytest.mark.django_db
def test_search_latency_is_observed_per_backend(api_client):
    ListingFactory(title="Sunny house with a garden")
    before = scrape()

    assert api_client.get("/api/v1/search/?q=garden").status_code == 200
    assert api_client.get("/api/v1/search/?property_type=house").status_code == 200

    after = scrape()
    assert (value(after, "realio_search_seconds_count", backend="postgres")
            - value(before, "realio_search_seconds_count", backend="postgres")) == 2
    assert value(after, "realio_search_seconds_sum", backend="postgres") > value(
        before, "realio_search_seconds_sum", backend="postgres")


@pytest.mark.django_db
def test_the_promoted_model_versions_are_shown(settings, tmp_path):
    from recommendations import store, valuation

    settings.RECO_MODEL_DIR = tmp_path / "models"
    store.forget()
    assert not [key for key in scrape() if key[0] == "realio_model_version_info"]

    # when a valuation model is trained on demo homes and promoted
    listing_demo.seed_listings(agents=[AgentFactory().pk], count=300, seed=3)
    (row,) = valuation.train_valuation()
    assert row.promoted

    # then /metrics names the version in use, and when it was promoted
    samples = scrape()
    assert value(samples, "realio_model_version_info", kind="valuation", version=row.version) == 1
    assert value(samples, "realio_model_promoted_timestamp_seconds", kind="valuation") == pytest.approx(
        row.promoted_at.timestamp())
    assert store.current("valuation") is not None  # the version shown is the one that loads
    store.forget()


@pytest.mark.django_db
def test_django_prometheus_database_metrics_work_with_the_pool():
    samples = scrape()
    assert value(samples, "django_db_execute_total", alias="default", vendor="postgresql") > 0
