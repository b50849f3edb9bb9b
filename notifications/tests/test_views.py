"""Notification pages without JavaScript, one-click unsubscribe, the SMS status callback and the
admin's retry."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from listings.tests.factories import ListingFactory
from notifications import services
from notifications.backends.sms import twilio_signature
from notifications.models import Delivery, Notification, Preference, QuietHours
from notifications.tests.conftest import CALLBACK_URL, TWILIO_TOKEN
from search import services as search_services
from search.models import SavedSearch
from search.query import SearchQuery

pytestmark = pytest.mark.django_db


def welcome(user, source="event:1"):
    return services.notify(user=user, kind="account.welcome", source=source, url="/", context={})


def signed_in(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf(client, url):
    page = client.get(url)
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def test_list_page_marks_read_and_all_read_without_javascript():
    user, other = UserFactory(), UserFactory()
    first, second = welcome(user, "event:1"), welcome(user, "event:2")
    theirs = welcome(other)
    client = signed_in(user)

    page = client.get("/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="notification notification--unread"') == 2
    assert html.count("data-unread-count>2<") == 2  # the header badge (menu toggle and menu link)
    token = csrf(client, "/notifications/")

    response = client.post(f"/notifications/{first.pk}/read/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    assert Notification.objects.get(pk=first.pk).read_at is not None

    response = client.post(f"/notifications/{theirs.pk}/read/", {"csrfmiddlewaretoken": token}, follow=True)
    assert "Notification not found." in response.content.decode()
    assert Notification.objects.get(pk=theirs.pk).read_at is None

    response = client.post("/notifications/read-all/", {"csrfmiddlewaretoken": token}, follow=True)
    assert "All notifications are marked read." in response.content.decode()
    assert Notification.objects.get(pk=second.pk).read_at is not None
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_htmx_mark_read_returns_the_item():
    user = UserFactory()
    notification = welcome(user)
    client = signed_in(user)
    token = csrf(client, "/notifications/")

    response = client.post(f"/notifications/{notification.pk}/read/", HTTP_HX_REQUEST="true",
                           HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200
    assert f'id="notification-{notification.pk}"' in response.content.decode()
    assert "notification--unread" not in response.content.decode()


def test_pages_need_sign_in(client):
    assert client.get("/notifications/").status_code == 302
    assert client.get("/notifications/preferences/").status_code == 302


def test_preferences_page_saves_channels_and_quiet_hours():
    user = UserFactory()
    client = signed_in(user)
    token = csrf(client, "/notifications/preferences/")

    response = client.post("/notifications/preferences/", {
        "csrfmiddlewaretoken": token, "favorite.price_drop:email": "on", "favorite.price_drop:sms": "on",
        "quiet_enabled": "on", "quiet_start": "21:30", "quiet_end": "06:45"})

    assert response.status_code == 302
    assert Preference.objects.get(user=user, kind="favorite.price_drop", channel="sms").enabled is True
    assert Preference.objects.get(user=user, kind="favorite.price_drop", channel="push").enabled is False
    quiet = QuietHours.objects.get(user=user)
    assert (quiet.start.isoformat(), quiet.end.isoformat()) == ("21:30:00", "06:45:00")

    bad = client.post("/notifications/preferences/", {"csrfmiddlewaretoken": token, "quiet_enabled": "on",
                                                       "quiet_start": "late", "quiet_end": "06:45"})
    assert bad.status_code == 400 and "HH:MM" in bad.content.decode()


def unsubscribe_link(message):
    return re.search(r"<https?://[^/]+(/notifications/unsubscribe/[^>]+)>", message.extra_headers["List-Unsubscribe"]
                     ).group(1)


def test_one_click_unsubscribe_turns_the_kinds_email_off_without_sign_in():
    user = UserFactory()
    notification = welcome(user)
    services.deliver(notification.deliveries.get(channel="email").pk)
    path = unsubscribe_link(mail.outbox[0])
    mail_client = Client(enforce_csrf_checks=True)  # a mail provider: no session, no CSRF token

    assert "Stop these emails?" in mail_client.get(path).content.decode()
    assert not Preference.objects.exists()  # a scanner's GET changes nothing

    response = mail_client.post(path, "List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert Preference.objects.get(user=user, kind="account.welcome", channel="email").enabled is False
    assert mail_client.post(path).status_code == 200  # twice: harmless
    later = welcome(user, "event:2")
    assert later.deliveries.get(channel="email").status == "skipped"


def test_one_click_unsubscribe_from_a_saved_search_alert_stops_that_search():
    user = UserFactory()
    saved = search_services.saved_search_create(user=user, name="Paris", alert_frequency="instant",
                                                query=SearchQuery.from_params({"max_price": "400000"}))
    notification = services.notify(user=user, kind="saved_search.match", source="event:5", url="/",
                                   context={"saved_search": saved, "reason": "new", "listing": ListingFactory()},
                                   data={"saved_search_id": saved.pk})
    services.deliver(notification.deliveries.get(channel="email").pk)

    response = Client(enforce_csrf_checks=True).post(unsubscribe_link(mail.outbox[0]))

    assert response.status_code == 200
    assert SavedSearch.objects.get(pk=saved.pk).alert_frequency == "never"


def test_a_forged_unsubscribe_token_is_400():
    response = Client(enforce_csrf_checks=True).post("/notifications/unsubscribe/not-a-token/")

    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert not Preference.objects.exists()


def sms_delivery(twilio):
    user = UserFactory(phone="+33612345678")
    services.preferences_update(user=user, choices={"account.welcome": {"sms": True}})
    row = welcome(user).deliveries.get(channel="sms")
    services.deliver(row.pk)
    row.refresh_from_db()
    return row


def test_sms_status_callback_with_a_valid_signature_updates_the_delivery(twilio):
    row = sms_delivery(twilio)
    params = {"MessageSid": row.provider_message_id, "MessageStatus": "delivered", "AccountSid": "AC1",
              "To": "+33612345678"}
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    query.update(params)
    signature = twilio_signature(CALLBACK_URL, query, TWILIO_TOKEN)

    response = Client().post("/notifications/sms/status/", params, HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 204
    row.refresh_from_db()
    assert row.status == "delivered" and row.delivered_at is not None


def test_sms_failure_callback_records_the_error(twilio):
    row = sms_delivery(twilio)
    params = {"MessageSid": row.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    query.update(params)

    Client().post("/notifications/sms/status/", params,
                  HTTP_X_TWILIO_SIGNATURE=twilio_signature(CALLBACK_URL, query, TWILIO_TOKEN))

    row.refresh_from_db()
    assert row.status == "failed" and row.last_error == "undelivered (error 30003)"


def test_sms_status_callback_with_a_bad_signature_is_403(twilio):
    row = sms_delivery(twilio)
    params = {"MessageSid": row.provider_message_id, "MessageStatus": "delivered"}

    assert Client().post("/notifications/sms/status/", params, HTTP_X_TWILIO_SIGNATURE="AAAA").status_code == 403
    assert Client().post("/notifications/sms/status/", params).status_code == 403

    row.refresh_from_db()
    assert row.status == "sent"


def test_staff_retry_failed_deliveries_from_the_admin(django_capture_on_commit_callbacks):
    user = UserFactory()
    notification = welcome(user)
    row = notification.deliveries.get(channel="email")
    Delivery.objects.filter(pk=row.pk).update(status="failed", attempts=6, last_error="SMTP 451",
                                              failed_at=timezone.now())
    client = Client()
    client.force_login(StaffFactory())

    listing = client.get("/admin/notifications/delivery/?status__exact=failed&channel__exact=email")
    assert listing.status_code == 200 and "SMTP 451" in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/admin/notifications/delivery/", {
            "action": "retry_failed_deliveries", "_selected_action": [row.pk]}, follow=True)

    assert "1 delivery queued again." in response.content.decode()
    row.refresh_from_db()
    assert row.status == "pending" and row.attempts == 0


def test_agents_do_not_see_peoples_notifications_in_the_admin():
    client = Client()
    client.force_login(AgentFactory())

    assert client.get("/admin/notifications/notification/").status_code == 403
    assert client.get("/admin/notifications/delivery/").status_code == 403
