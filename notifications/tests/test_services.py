"""Creating notifications and delivering them on each channel, called directly (the worker
tests in test_worker.py run the same through the broker)."""

import datetime
import zoneinfo
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from firebase_admin import exceptions, messaging

from accounts.tests.factories import UserFactory
from listings.tests.factories import ListingFactory
from notifications import kinds, selectors, services
from notifications.models import Delivery, Device, Notification, Preference, QuietHours
from notifications.tests.conftest import TWILIO_SID

pytestmark = pytest.mark.django_db
Status = Delivery.Status
UTC = datetime.UTC


def welcome(user, source="event:1", **kwargs):
    return services.notify(user=user, kind="account.welcome", source=source, url="/", context={"role": "customer"},
                           **kwargs)


def price_drop(user, source="event:2", listing=None, **kwargs):
    listing = listing or ListingFactory(price=Decimal("300000"))
    return services.notify(user=user, kind="favorite.price_drop", source=source, url=f"/listings/{listing.pk}/",
                           context={"listing": listing, "listing_title": listing.title,
                                    "old_price": Decimal("350000"), "new_price": listing.price, "currency": "EUR"},
                           data={"listing_id": listing.pk}, **kwargs)


def deliveries(notification):
    return {d.channel: d for d in notification.deliveries.all()}


def test_a_notification_gets_one_delivery_per_channel_once_per_source():
    # given a customer with a phone number and a push device
    user = UserFactory(first_name="Ada", phone="+33612345678")
    Device.objects.create(user=user, token="tok-1", platform="android", last_seen_at=timezone.now())

    # when the same event is handled twice
    first = price_drop(user)
    again = services.notify(user=user, kind="favorite.price_drop", source="event:2", context={})

    # then there is one notification, with a delivery per channel, planned by the defaults
    assert again.pk == first.pk
    assert Notification.objects.filter(user=user).count() == 1
    rows = deliveries(first)
    assert sorted(rows) == ["email", "in_app", "push", "sms"]
    assert {c: rows[c].status for c in rows} == {"in_app": "pending", "email": "pending", "push": "pending",
                                                 "sms": "skipped"}
    assert rows["sms"].last_error == "turned off in preferences"
    assert first.title.startswith("Price drop: ") and "300,000 EUR" in first.body and "350,000 EUR" in first.body


def test_preferences_decide_the_channels_and_missing_contacts_skip():
    # given someone who turned price-drop emails off and SMS on, without a phone or a device
    user = UserFactory()
    services.preferences_update(user=user, choices={"favorite.price_drop": {"email": False, "sms": True}})

    rows = deliveries(price_drop(user))

    assert rows["email"].status == "skipped" and rows["email"].last_error == "turned off in preferences"
    assert rows["sms"].status == "skipped" and rows["sms"].last_error == "no phone number"
    assert rows["push"].status == "skipped" and rows["push"].last_error == "no device registered for push"
    assert rows["in_app"].status == "pending"


def test_preferences_refuse_unknown_kinds_channels_and_in_app_off():
    user = UserFactory()
    for choices in ({"nope": {"email": True}}, {"account.welcome": {"fax": True}},
                    {"account.welcome": {"in_app": False}}, {"account.welcome": {"email": "yes"}}):
        with pytest.raises(services.ApplicationError):
            services.preferences_update(user=user, choices=choices)
    assert not Preference.objects.exists()


@pytest.mark.parametrize(("start", "end", "local_now", "expected_local"), [
    ("22:00", "07:00", "2026-01-10 23:30", "2026-01-11 07:00"),  # across midnight, before it
    ("22:00", "07:00", "2026-01-11 06:59", "2026-01-11 07:00"),  # across midnight, after it
    ("22:00", "07:00", "2026-01-11 07:00", None),                # just over
    ("13:00", "14:00", "2026-01-11 13:15", "2026-01-11 14:00"),  # within one day
    ("13:00", "14:00", "2026-01-11 12:00", None),
])
def test_quiet_hours_end_in_the_persons_time_zone(start, end, local_now, expected_local):
    zone = zoneinfo.ZoneInfo("America/New_York")
    quiet = QuietHours(start=datetime.time.fromisoformat(start), end=datetime.time.fromisoformat(end))
    when = datetime.datetime.fromisoformat(local_now).replace(tzinfo=zone).astimezone(UTC)

    result = services.quiet_hours_end(quiet, "America/New_York", when)

    expected = when if expected_local is None else \
        datetime.datetime.fromisoformat(expected_local).replace(tzinfo=zone).astimezone(UTC)
    assert result == expected


def test_quiet_hours_hold_push_and_sms_until_they_end_then_the_dispatcher_sends(fcm, twilio):
    # given someone in Paris with quiet hours 22:00–07:00, a phone, SMS on and a device
    user = UserFactory(time_zone="Europe/Paris", phone="+33612345678")
    Device.objects.create(user=user, token="tok-1", platform="ios", last_seen_at=timezone.now())
    QuietHours.objects.create(user=user, start=datetime.time(22), end=datetime.time(7))
    services.preferences_update(user=user, choices={"favorite.price_drop": {"sms": True}})
    night = datetime.datetime(2026, 1, 10, 23, 30, tzinfo=UTC) - timedelta(hours=1)  # 23:30 in Paris

    # when a price drops at night
    rows = deliveries(price_drop(user, now=night))

    # then in-app and email go now, SMS and push wait for 07:00 Paris time
    morning = datetime.datetime(2026, 1, 11, 6, 0, tzinfo=UTC)
    assert rows["in_app"].due_at == night and rows["email"].due_at == night
    assert rows["sms"].due_at == morning and rows["push"].due_at == morning
    assert rows["push"].queued_at is None
    assert services.deliver(rows["push"].pk, now=night + timedelta(hours=2)) is None
    assert not fcm.messages
    assert services.dispatch_due(now=night + timedelta(hours=2)) == 2  # in-app and email only
    for channel in ("in_app", "email"):
        services.deliver(rows[channel].pk, now=night + timedelta(hours=2))

    # and once they end the dispatcher picks them up and they are sent
    assert services.dispatch_due(now=morning + timedelta(seconds=1)) == 2
    services.deliver(rows["push"].pk, now=morning + timedelta(seconds=1))
    services.deliver(rows["sms"].pk, now=morning + timedelta(seconds=1))
    assert len(fcm.messages) == 1 and len(twilio.requests) == 1
    assert Delivery.objects.get(pk=rows["push"].pk).status == "sent"


def test_email_has_html_text_and_one_click_unsubscribe_headers():
    user = UserFactory(first_name="Ada", email="ada@example.com")
    notification = welcome(user)

    services.deliver(deliveries(notification)["email"].pk)

    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Welcome to Realio"
    assert "Hello Ada," in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "Find a home" in html
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://") and "/notifications/unsubscribe/" in unsubscribe
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row = Delivery.objects.get(notification=notification, channel="email")
    assert row.status == "sent" and row.attempts == 1 and row.provider_message_id == message.extra_headers["Message-ID"]


def test_a_delivery_run_twice_sends_once():
    notification = welcome(UserFactory())
    row = deliveries(notification)["email"]

    services.deliver(row.pk)
    services.deliver(row.pk)

    assert len(mail.outbox) == 1
    assert Delivery.objects.get(pk=row.pk).attempts == 1


def test_digest_emails_of_one_person_go_out_as_one(settings):
    # given two saved-search digests for one person, gathered for ten minutes
    user = UserFactory()
    now = timezone.now()
    made = [services.notify(user=user, kind="saved_search.digest", source=f"event:{n}", now=now,
                            context={"saved_search": {"name": name}, "total": 2, "listings": []},
                            data={"saved_search_id": n, "listings": [{"listing_title": f"Flat {n}", "url": "/x/",
                                                                      "city": "Paris", "price": "1000",
                                                                      "currency": "EUR"}]})
            for n, name in ((1, "Paris flats"), (2, "Lyon houses"))]
    rows = [deliveries(n)["email"] for n in made]
    assert all(r.due_at == now + timedelta(seconds=settings.NOTIFICATIONS_DIGEST_DELAY_SECONDS) for r in rows)

    # when the first is due and delivered
    services.deliver(rows[0].pk, now=rows[0].due_at)
    services.deliver(rows[1].pk, now=rows[0].due_at)

    # then one email lists both, and both deliveries share its id
    [message] = mail.outbox
    assert "2 updates" in message.subject
    assert "Paris flats" in message.body and "Lyon houses" in message.body
    assert "Flat 1" in message.alternatives[0][0] and "Flat 2" in message.alternatives[0][0]
    states = list(Delivery.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", "provider_message_id"))
    assert {s for s, _ in states} == {"sent"} and len({m for _, m in states}) == 1


def test_the_digest_email_ends_with_homes_recommended_to_the_person(settings):
    # given a person with two digests, and homes on the market (no model yet: popular ones)
    from listings.tests.factories import ListingFactory

    user = UserFactory()
    popular = ListingFactory(title="Most viewed loft", view_count=500)
    now = timezone.now()
    made = [services.notify(user=user, kind="saved_search.digest", source=f"event:{n}", now=now,
                            context={"saved_search": {"name": f"Search {n}"}, "total": 0, "listings": []},
                            data={"saved_search_id": n, "listings": []}) for n in (1, 2)]
    rows = [deliveries(n)["email"] for n in made]

    services.deliver(rows[0].pk, now=rows[0].due_at)

    [message] = mail.outbox
    assert "Recommended for you" in message.body
    assert f"/listings/{popular.pk}/" in message.body
    assert "Most viewed loft" in message.alternatives[0][0]


def test_sms_is_posted_to_twilio_with_the_status_callback(twilio):
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = deliveries(welcome(user))["sms"]

    services.deliver(row.pk)

    [request] = twilio.requests
    assert request.method == "POST"
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.headers["Authorization"].startswith("Basic ")
    [form] = twilio.forms()
    assert form["To"] == "+33612345678" and form["From"] == "+15005550006"
    assert form["Body"].startswith("Realio: Welcome to Realio")
    assert form["StatusCallback"] == "https://realio.example/notifications/sms/status/"
    row.refresh_from_db()
    assert row.status == "sent" and row.provider_message_id.startswith("SM")


def test_transient_failures_back_off_then_fail_with_the_last_error(twilio, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 10
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = deliveries(welcome(user))["sms"]
    twilio.replies = [(503, {"code": 20500, "message": "Service unavailable"})] * 3
    now = timezone.now()

    delays = []
    for _attempt in range(3):
        delays.append(services.deliver(row.pk, now=now))
        row.refresh_from_db()
        now = row.due_at

    assert 10 <= delays[0] <= 12.5 and 20 <= delays[1] <= 25 and delays[2] is None
    assert row.status == "failed" and row.attempts == 3 and row.failed_at is not None
    assert "Twilio 503" in row.last_error and "Service unavailable" in row.last_error
    assert len(twilio.requests) == 3


def test_a_permanent_failure_is_not_retried(twilio):
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = deliveries(welcome(user))["sms"]
    twilio.replies = [(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."})]

    assert services.deliver(row.pk) is None
    assert services.deliver(row.pk) is None

    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 1 and "21211" in row.last_error
    assert len(twilio.requests) == 1


def test_push_goes_to_every_live_device_and_dead_tokens_are_deactivated(fcm):
    user = UserFactory()
    now = timezone.now()
    alive = Device.objects.create(user=user, token="tok-alive", platform="android", last_seen_at=now)
    gone = Device.objects.create(user=user, token="tok-gone", platform="ios", last_seen_at=now)
    Device.objects.create(user=user, token="tok-old", platform="web", last_seen_at=now, deactivated_at=now)
    fcm.outcomes["tok-gone"] = messaging.UnregisteredError("Requested entity was not found.")
    notification = price_drop(user)

    services.deliver(deliveries(notification)["push"].pk)

    [message] = fcm.messages
    assert sorted(message.tokens) == ["tok-alive", "tok-gone"]
    assert message.notification.title == notification.title and message.notification.body == notification.body
    assert message.data == {"notification_id": str(notification.pk), "kind": "favorite.price_drop",
                            "url": f"http://127.0.0.1:8000{notification.url}"}
    assert fcm.apps[0] is not None and fcm.apps[0].project_id == "realio-test"
    gone.refresh_from_db()
    alive.refresh_from_db()
    assert gone.deactivated_at is not None and "UnregisteredError" in gone.deactivation_reason
    assert alive.active
    assert Delivery.objects.get(notification=notification, channel="push").status == "sent"


def test_push_to_only_dead_tokens_fails_and_fcm_outage_is_retried(fcm):
    user = UserFactory()
    Device.objects.create(user=user, token="tok-bad", platform="android", last_seen_at=timezone.now())
    fcm.outcomes["tok-bad"] = exceptions.InvalidArgumentError("The registration token is not a valid FCM token")
    row = deliveries(price_drop(user))["push"]

    services.deliver(row.pk)

    row.refresh_from_db()
    assert row.status == "failed" and "InvalidArgumentError" in row.last_error
    assert not Device.objects.get(token="tok-bad").active

    # a device registered again, FCM unavailable: retried
    services.device_register(user=user, token="tok-bad", platform="android")
    fcm.outcomes["tok-bad"] = exceptions.UnavailableError("FCM is down")
    row2 = deliveries(price_drop(user, source="event:99"))["push"]
    assert services.deliver(row2.pk) is not None
    row2.refresh_from_db()
    assert row2.status == "pending" and row2.attempts == 1 and "UnavailableError" in row2.last_error


def test_inactive_accounts_get_nothing():
    user = UserFactory(is_active=False)
    assert welcome(user) is None


def test_collapsing_kinds_fold_a_burst_into_one_notification(monkeypatch):
    burst = kinds.Kind("account.welcome", "burst", kinds.Category.CHAT, collapse_window=timedelta(minutes=5),
                       delay=timedelta(seconds=60))
    monkeypatch.setitem(kinds.KINDS, "account.welcome", burst)
    user = UserFactory()

    first = welcome(user, source="event:1", collapse_key="conversation:7")
    second = welcome(user, source="event:2", collapse_key="conversation:7")
    again = welcome(user, source="event:2", collapse_key="conversation:7")

    assert first.pk == second.pk == again.pk
    assert Notification.objects.get().data["count"] == 2
    rows = deliveries(first)
    assert rows["email"].due_at > rows["in_app"].due_at  # waits for the burst to end


def test_marking_read_is_per_person():
    user, other = UserFactory(), UserFactory()
    mine, theirs = welcome(user), welcome(other)
    price_drop(user)

    services.notification_mark_read(user=user, notification_id=mine.pk)
    with pytest.raises(services.NotFound):
        services.notification_mark_read(user=user, notification_id=theirs.pk)

    assert selectors.unread_count(user.pk) == 1
    assert services.notifications_mark_all_read(user=user) == 1
    assert selectors.unread_count(user.pk) == 0 and selectors.unread_count(other.pk) == 1


def test_sms_status_moves_forward_only(twilio):
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = deliveries(welcome(user))["sms"]
    services.deliver(row.pk)
    row.refresh_from_db()

    services.sms_status_update(message_id=row.provider_message_id, provider_status="delivered")
    services.sms_status_update(message_id=row.provider_message_id, provider_status="sent")  # late

    row.refresh_from_db()
    assert row.status == "delivered" and row.delivered_at is not None


def test_account_export_and_erasure():
    from accounts import services as account_services

    user = UserFactory()
    welcome(user)
    services.device_register(user=user, token="tok-1", platform="web")
    services.preferences_update(user=user, choices={"favorite.price_drop": {"email": False}},
                                quiet_hours={"start": datetime.time(22), "end": datetime.time(7)})

    exported = account_services.EXPORTERS["notifications"](user)
    assert exported["notifications"][0]["kind"] == "account.welcome"
    assert len(exported["notifications"][0]["deliveries"]) == 4
    assert exported["devices"][0]["platform"] == "web"
    assert exported["preferences"]["quiet_hours"] == {"start": "22:00", "end": "07:00"}

    account_services.user_delete(user=user)

    assert not Notification.objects.filter(user=user).exists()
    assert not Delivery.objects.filter(notification__user=user).exists()
    assert not Device.objects.filter(user=user).exists()
    assert not Preference.objects.filter(user=user).exists()
    assert not QuietHours.objects.filter(user=user).exists()


def test_text_is_stored_plain_and_escaped_in_html_email():
    user = UserFactory()
    listing = ListingFactory(title="Tom & Jerry's <loft>", price=Decimal("300000"))
    notification = price_drop(user, listing=listing)

    assert notification.title == "Price drop: Tom & Jerry's <loft>"
    services.deliver(deliveries(notification)["email"].pk)
    [message] = mail.outbox
    assert message.subject == "Price drop: Tom & Jerry's <loft>" and "Tom & Jerry's <loft>" in message.body
    html = message.alternatives[0][0]
    assert "Tom &amp; Jerry&#x27;s &lt;loft&gt;" in html and "<loft>" not in html


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_the_same_sms_at_once_send_it_once(twilio):
    import threading

    from django.db import connection

    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = deliveries(welcome(user))["sms"]
    twilio.delay = 0.5  # the first holds the row while the provider answers
    start = threading.Barrier(2)

    def work():
        try:
            start.wait()
            services.deliver(row.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(twilio.requests) == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 1


# --- what the registry offers the kinds still to come (bookings, chat) ------------------------------

def test_urgent_kinds_come_through_quiet_hours(monkeypatch):
    reminder = kinds.Kind("account.welcome", "reminder", kinds.Category.BOOKING, urgent=True)
    monkeypatch.setitem(kinds.KINDS, "account.welcome", reminder)
    user = UserFactory(time_zone="UTC")
    Device.objects.create(user=user, token="tok-1", platform="ios", last_seen_at=timezone.now())
    QuietHours.objects.create(user=user, start=datetime.time(0), end=datetime.time(23, 59))
    now = datetime.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)

    rows = deliveries(welcome(user, now=now))

    assert rows["push"].status == "pending" and rows["push"].due_at == now


def test_offline_only_channels_are_skipped_while_the_person_is_online(monkeypatch, fcm):
    from notifications import live

    chat = kinds.Kind("account.welcome", "chat", kinds.Category.CHAT, offline_only=frozenset({"email", "push"}))
    monkeypatch.setitem(kinds.KINDS, "account.welcome", chat)
    user = UserFactory()
    Device.objects.create(user=user, token="tok-1", platform="ios", last_seen_at=timezone.now())
    live.presence_connect(user.pk, "specific.channel!1")
    rows = deliveries(welcome(user))

    services.deliver(rows["push"].pk)
    services.deliver(rows["email"].pk)
    services.deliver(rows["in_app"].pk)

    made = rows["push"].notification
    states = {d.channel: (d.status, d.last_error) for d in Delivery.objects.filter(notification=made)}
    assert states["push"] == ("skipped", "the recipient was online")
    assert states["email"] == ("skipped", "the recipient was online")
    assert states["in_app"][0] == "delivered"
    assert not fcm.messages and not mail.outbox

    live.presence_disconnect(user.pk, "specific.channel!1")
    offline = deliveries(welcome(user, source="event:2"))
    services.deliver(offline["push"].pk)
    assert len(fcm.messages) == 1


def test_a_kind_can_attach_files_to_its_email(monkeypatch):
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    booking = kinds.Kind("account.welcome", "booking", kinds.Category.BOOKING,
                         attachments=lambda notification: [("viewing.ics", ics, "text/calendar")])
    monkeypatch.setitem(kinds.KINDS, "account.welcome", booking)
    notification = welcome(UserFactory())

    services.deliver(deliveries(notification)["email"].pk)

    [message] = mail.outbox
    assert message.attachments == [("viewing.ics", ics, "text/calendar")]
