"""Interactions from each event of DESIGN.md section 2, from the pages' signals, and the merge
of an anonymous visitor's history at sign-in."""

import time

import pytest
from django.contrib.gis.geos import Polygon
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import PASSWORD, UserFactory
from bookings.tests.factories import ViewingFactory
from chat import services as chat_services
from listings import services as listing_services
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent
from recommendations import handlers, services
from recommendations.models import Interaction
from search.models import SavedSearch

pytestmark = pytest.mark.django_db


def event(event_type, **payload):
    return OutboxEvent(type=event_type, payload=payload, created_at=timezone.now())


def kinds_of(user):
    return sorted(Interaction.objects.filter(user=user).values_list("kind", flat=True))


def test_a_view_by_a_person_and_by_a_session_are_recorded():
    home, person = ListingFactory(), UserFactory()

    handlers.record_view(event("listing.viewed", listing_id=home.pk, user_id=person.pk, session=None))
    handlers.record_view(event("listing.viewed", listing_id=home.pk, user_id=None, session="abc123"))

    assert kinds_of(person) == ["view"]
    anonymous = Interaction.objects.get(user=None)
    assert (anonymous.session, anonymous.kind, anonymous.weight) == ("abc123", "view", 1.0)


def test_favorite_unfavorite_booking_and_contact_are_recorded_with_their_weights(settings):
    home, person = ListingFactory(), UserFactory()
    viewing = ViewingFactory(listing=home, customer=person)

    handlers.record_favorite(event("listing.favorited", listing_id=home.pk, user_id=person.pk))
    handlers.record_unfavorite(event("listing.unfavorited", listing_id=home.pk, user_id=person.pk))
    handlers.record_booking(event("booking.requested", booking_id=viewing.pk, instant=False))
    # the customer writes to the agent: chat publishes chat.conversation_started
    chat_services.conversation_start(user=person, listing_id=home.pk)
    handlers.record_contact(OutboxEvent.objects.get(type="chat.conversation_started"))

    assert kinds_of(person) == ["booking", "contact", "favorite", "unfavorite"]
    weights = dict(Interaction.objects.filter(user=person).values_list("kind", "weight"))
    assert weights == {"favorite": settings.RECO_WEIGHTS["favorite"], "unfavorite": settings.RECO_WEIGHTS["unfavorite"],
                       "booking": settings.RECO_WEIGHTS["booking"], "contact": settings.RECO_WEIGHTS["contact"]}


def test_a_saved_search_marks_its_most_viewed_matches():
    person = UserFactory()
    cheap = [ListingFactory(listing_type="rent", price=900 + i, view_count=i) for i in range(7)]
    ListingFactory(listing_type="sale", price=900)  # another deal: not a match
    area = Polygon.from_bbox((2.0, 48.5, 2.6, 49.0))
    saved = SavedSearch.objects.create(user=person, name="Flats", query={}, listing_types=["rent"],
                                       max_price=2000, area=area)

    handlers.record_saved_search(event("saved_search.created", saved_search_id=saved.pk))

    marked = set(Interaction.objects.filter(user=person, kind="saved_search").values_list("listing_id", flat=True))
    assert marked == {home.pk for home in cheap[-handlers.SAVED_SEARCH_LISTINGS:]}


def test_an_event_about_a_deleted_listing_is_ignored():
    person = UserFactory()
    handlers.record_favorite(event("listing.favorited", listing_id=999_999, user_id=person.pk))
    assert not Interaction.objects.exists()


def test_a_favorite_through_the_service_reaches_the_handler(django_capture_on_commit_callbacks):
    home, person = ListingFactory(), UserFactory()
    listing_services.favorite_add(user=person, listing_id=home.pk)
    published = OutboxEvent.objects.get(type="listing.favorited")

    handlers.record_favorite(published)

    assert kinds_of(person) == ["favorite"]


# --- the client signals -------------------------------------------------------------------------

def test_client_signals_are_accepted_for_people_and_sessions(auth_client, django_capture_on_commit_callbacks):
    home, person = ListingFactory(), UserFactory()

    for kind in ("gallery_opened", "search_click", "share"):
        response = auth_client(person).post("/api/v1/interactions/", {"listing": home.pk, "kind": kind})
        assert response.status_code == 202, response.content
    anonymous = Client()
    response = anonymous.post("/api/v1/interactions/", {"listing": home.pk, "kind": "share"},
                              content_type="application/json")

    assert response.status_code == 202
    assert kinds_of(person) == ["gallery_opened", "search_click", "share"]
    assert Interaction.objects.filter(user=None, kind="share").exclude(session="").count() == 1
    assert OutboxEvent.objects.filter(type="interaction.recorded").count() == 4


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"listing": "x", "kind": "share"}, 400),
    ({"listing": 1, "kind": "teleport"}, 400),
    ({"listing": 1, "kind": "view"}, 400),  # recorded from the page itself, not sent by clients
    ({"listing": 1, "kind": ["share"]}, 400),
    ({"listing": -4, "kind": "share"}, 400),
    ({"listing": 10**30, "kind": "share"}, 400),
    ({"listing": 999_999, "kind": "share"}, 404),
])
def test_bad_signals_are_refused_and_change_nothing(api_client, body, status):
    ListingFactory(pk=1)

    response = api_client.post("/api/v1/interactions/", body, format="json")

    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert not Interaction.objects.exists()


def test_a_signal_about_a_draft_is_a_404(api_client):
    draft = ListingFactory(status="draft")
    response = api_client.post("/api/v1/interactions/", {"listing": draft.pk, "kind": "share"}, format="json")
    assert response.status_code == 404


def test_malformed_json_is_a_400(api_client):
    response = api_client.post("/api/v1/interactions/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_signals_are_throttled_like_the_api(api_client, settings):
    from rest_framework.throttling import AnonRateThrottle

    home = ListingFactory()
    original = AnonRateThrottle.THROTTLE_RATES
    AnonRateThrottle.THROTTLE_RATES = {**original, "anon": "2/min"}
    try:
        codes = [api_client.post("/api/v1/interactions/", {"listing": home.pk, "kind": "share"},
                                 format="json").status_code for _ in range(3)]
    finally:
        AnonRateThrottle.THROTTLE_RATES = original
    assert codes == [202, 202, 429]


# --- merging at sign-in -------------------------------------------------------------------------

def test_a_visitors_interactions_become_theirs_when_they_sign_in(django_capture_on_commit_callbacks):
    home, other = ListingFactory(), ListingFactory()
    person = UserFactory()
    browser = Client()
    browser.post("/api/v1/interactions/", {"listing": home.pk, "kind": "gallery_opened"},
                 content_type="application/json")
    session = Interaction.objects.get().session

    assert browser.login(email=person.email, password=PASSWORD)

    assert kinds_of(person) == ["gallery_opened"]
    # and a view of the anonymous session flushed after the sign-in is theirs too
    handlers.record_view(event("listing.viewed", listing_id=other.pk, user_id=None, session=session))
    assert kinds_of(person) == ["gallery_opened", "view"]


def test_the_listing_page_remembers_the_visitor_for_the_merge(django_capture_on_commit_callbacks):
    home = ListingFactory()
    browser = Client()
    browser.get(f"/listings/{home.pk}/")
    browser.get(f"/listings/{home.pk}/similar-block/")  # loaded by the page after it renders
    token = browser.session.get(services.SESSION_KEY)
    assert token
    # the view is flushed later under the digest of the same session key
    from listings.services import session_digest

    assert token == session_digest(browser.session.session_key)


# --- through the broker -------------------------------------------------------------------------

@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_favorite_is_recorded_by_the_worker(celery_worker):
    home, person = ListingFactory(), UserFactory()

    listing_services.favorite_add(user=person, listing_id=home.pk)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not Interaction.objects.filter(user=person).exists():
        time.sleep(0.1)
    assert kinds_of(person) == ["favorite"]


def test_a_signed_in_browser_sends_signals_with_its_csrf_token(django_capture_on_commit_callbacks):
    home, person = ListingFactory(), UserFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(person)
    page = browser.get("/").content.decode()
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]

    refused = browser.post("/api/v1/interactions/", {"listing": home.pk, "kind": "share"},
                           content_type="application/json")
    accepted = browser.post("/api/v1/interactions/", {"listing": home.pk, "kind": "share"},
                            content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403 and accepted.status_code == 202
    assert kinds_of(person) == ["share"]
