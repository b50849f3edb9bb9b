"""Each kind from its event, through the real broker and a worker: created once (even when the
handler runs again), delivered on its channels, retried with backoff, failed for good, dead
push tokens deactivated."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from firebase_admin import messaging

from accounts import services as account_services
from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory
from listings import services as listing_services
from listings.models import Favorite
from listings.tests.factories import ListingFactory
from notifications import services
from notifications.models import Delivery, Device, Notification
from notifications.tests.conftest import wait_for
from realio import events
from realio.models import HandlerRun, OutboxEvent
from search import services as search_services
from search.alert_tasks import send_alert_digests
from search.models import SavedSearch
from search.query import SearchQuery

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def settled(notification, channels=("in_app", "email")):
    """The notification's deliveries on `channels` once none is pending any more."""
    def check():
        rows = {d.channel: d for d in Delivery.objects.filter(notification=notification)}
        return rows if all(rows[c].status != "pending" for c in channels) else None

    return wait_for(check, f"deliveries {channels} of notification {notification.pk}")


def replay(event_type, handler_suffix):
    """Run a handler again for an event it already handled, as if its completion had been lost."""
    event = OutboxEvent.objects.filter(type=event_type).latest("pk")
    run = HandlerRun.objects.get(event=event, handler__endswith=handler_suffix)
    wait_for(lambda: HandlerRun.objects.get(pk=run.pk).status == "done", "the first run")
    HandlerRun.objects.filter(pk=run.pk).update(status="pending", finished_at=None)
    events.relay(event.pk)
    wait_for(lambda: HandlerRun.objects.get(pk=run.pk).status == "done", "the replayed run")
    return HandlerRun.objects.get(pk=run.pk)


def test_welcome_comes_once_from_account_created_even_when_replayed(celery_worker):
    # when someone signs up
    user = account_services.user_create(email="ada@example.com", password=PASSWORD, first_name="Ada")

    # then the worker creates the welcome and sends its email
    notification = wait_for(lambda: Notification.objects.filter(user=user, kind="account.welcome").first(),
                            "the welcome")
    rows = settled(notification)
    assert rows["in_app"].status == "delivered" and rows["email"].status == "sent"
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]

    # and handling the event again changes nothing
    run = replay("account.created", "handlers.welcome")
    assert run.attempts == 2
    assert Notification.objects.filter(user=user).count() == 1
    assert Delivery.objects.filter(notification__user=user).count() == 4
    assert len(mail.outbox) == 1


def test_price_drop_reaches_those_who_favorited_the_home_once(celery_worker, fcm):
    # given a home two people favorited (one with a phone app) and a third who did not
    agent = AgentFactory()
    home = ListingFactory(agent=agent, price=Decimal("400000"), title="Canal house")
    fans = [UserFactory(), UserFactory()]
    bystander = UserFactory()
    for fan in fans:
        Favorite.objects.create(user=fan, listing=home)
    Device.objects.create(user=fans[0], token="fan-phone", platform="ios", last_seen_at=timezone.now())

    # when the agent lowers the price, then raises it (no alert for a rise)
    listing_services.listing_update(listing=home, by=agent, price=Decimal("380000"))

    made = wait_for(lambda: list(Notification.objects.filter(kind="favorite.price_drop"))
                    if Notification.objects.filter(kind="favorite.price_drop").count() == 2 else None,
                    "two price-drop notifications")
    assert {n.user_id for n in made} == {f.pk for f in fans}
    first = next(n for n in made if n.user_id == fans[0].pk)
    assert first.title == "Price drop: Canal house" and "380,000 EUR" in first.body and "400,000 EUR" in first.body
    rows = settled(first, channels=("in_app", "email", "push"))
    settled(next(n for n in made if n.user_id == fans[1].pk))
    assert rows["push"].status == "sent"
    [push] = fcm.messages
    assert push.tokens == ["fan-phone"] and push.notification.title == "Price drop: Canal house"
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f.email for f in fans)
    assert not Notification.objects.filter(user__in=[bystander, agent]).exists()

    # and replaying the event creates nothing more
    replay("listing.price_changed", "handlers.favorite_price_drop")
    assert Notification.objects.filter(kind="favorite.price_drop").count() == 2
    assert len(fcm.messages) == 1


def test_status_change_of_a_favorite(celery_worker):
    agent = AgentFactory()
    home = ListingFactory(agent=agent, title="Loft")
    fan = UserFactory()
    Favorite.objects.create(user=fan, listing=home)

    listing_services.listing_set_status(listing=home, by=agent, status="pending")

    notification = wait_for(lambda: Notification.objects.filter(user=fan, kind="favorite.status_changed").first(),
                            "the status notification")
    assert notification.title == "Under offer: Loft"
    assert notification.data["new_status"] == "pending"
    replay("listing.status_changed", "handlers.favorite_status_changed")
    assert Notification.objects.filter(user=fan).count() == 1


def test_saved_search_match_instantly_and_digest(celery_worker, settings):
    settings.NOTIFICATIONS_DIGEST_DELAY_SECONDS = 0
    # given an instant search and a daily one
    user = UserFactory(email="hunter@example.com")
    instant = search_services.saved_search_create(user=user, name="Paris flats", alert_frequency="instant",
                                                  query=SearchQuery.from_params({"max_price": "400000"}))
    daily = search_services.saved_search_create(user=user, name="Cheap flats", alert_frequency="daily",
                                                query=SearchQuery.from_params({"max_price": "390000"}))

    # when a matching home is published
    home = listing_services.listing_create(
        agent=AgentFactory(), latitude=48.8566, longitude=2.3522, status="active", title="Bright flat",
        description="Quiet.", listing_type="sale", property_type="apartment", price=Decimal("350000"), bedrooms=2,
        bathrooms=1, area_sqm=Decimal("65"), year_built=1985, city="Paris", country="FR", features=[])

    # then the instant search alerts at once (the daily one waits for its digest)
    match = wait_for(lambda: Notification.objects.filter(user=user, kind="saved_search.match").first(), "the match")
    assert match.title == "New home for “Paris flats”" and match.url == f"/listings/{home.pk}/"
    assert match.data["saved_search_id"] == instant.pk
    settled(match)
    [instant_email] = mail.outbox
    assert instant_email.subject == "New home for “Paris flats”"
    wait_for(lambda: OutboxEvent.objects.filter(type="saved_search.matched").count() == 2, "both matches")
    assert Notification.objects.filter(user=user).count() == 1

    # when the daily digest is due
    SavedSearch.objects.filter(pk=daily.pk).update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    send_alert_digests.delay()

    digest = wait_for(lambda: Notification.objects.filter(user=user, kind="saved_search.digest").first(),
                      "the digest")
    assert digest.title == "1 new home for “Cheap flats”"
    rows = settled(digest)
    assert rows["email"].status == "sent"
    assert len(mail.outbox) == 2 and "Bright flat" in mail.outbox[1].alternatives[0][0]
    replay("saved_search.digest_due", "handlers.saved_search_digest")
    assert Notification.objects.filter(user=user, kind="saved_search.digest").count() == 1


def sms_user():
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    return user


def notify_in_transaction(user, source):
    from django.db import transaction

    with transaction.atomic():
        return services.notify(user=user, kind="account.welcome", source=source, context={}, url="/")


def test_transient_sms_failures_are_retried_with_backoff_until_sent(celery_worker, twilio, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 0.2
    twilio.replies = [(503, {"code": 20503, "message": "Unavailable"}), (500, {"message": "Oops"})]
    notification = notify_in_transaction(sms_user(), "test:retry")

    rows = settled(notification, channels=("sms",))

    assert rows["sms"].status == "sent" and rows["sms"].attempts == 3 and rows["sms"].last_error == ""
    assert len(twilio.requests) == 3


def test_sms_failing_every_time_ends_failed_with_the_error(celery_worker, twilio, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 0.1
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    twilio.replies = [(503, {"code": 20503, "message": "Unavailable"})] * 5
    notification = notify_in_transaction(sms_user(), "test:fail")

    rows = settled(notification, channels=("sms",))

    assert rows["sms"].status == "failed" and rows["sms"].attempts == 3
    assert "Twilio 503" in rows["sms"].last_error
    assert len(twilio.requests) == 3


def test_a_permanent_sms_failure_is_not_retried(celery_worker, twilio, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 0.1
    twilio.replies = [(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})]
    notification = notify_in_transaction(sms_user(), "test:permanent")

    rows = settled(notification, channels=("sms",))

    assert rows["sms"].status == "failed" and rows["sms"].attempts == 1 and "21211" in rows["sms"].last_error
    services.dispatch_due(now=timezone.now() + timedelta(hours=1))
    assert len(twilio.requests) == 1


def test_a_dead_push_token_is_deactivated(celery_worker, fcm):
    user = UserFactory()
    Device.objects.create(user=user, token="old-phone", platform="android", last_seen_at=timezone.now())
    Device.objects.create(user=user, token="new-phone", platform="android", last_seen_at=timezone.now())
    fcm.outcomes["old-phone"] = messaging.UnregisteredError("Requested entity was not found.")
    services.preferences_update(user=user, choices={"account.welcome": {"push": True}})

    notification = notify_in_transaction(user, "test:push")

    rows = settled(notification, channels=("push",))
    assert rows["push"].status == "sent"
    assert not Device.objects.get(token="old-phone").active and Device.objects.get(token="new-phone").active
