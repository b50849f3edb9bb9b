"""Saved-search alerts: which searches a listing matches (the reverse query), the
`saved_search.matched` events for a new home, a price drop and a re-listing (once each), and
the daily and weekly digests (`saved_search.digest_due`).

Listings change through listings.services, which write their events to the outbox; the alert
handlers are then run on those events in the test's transaction (`alerts.run()`), except in
the last tests, where the real broker and worker deliver them.
"""

import time
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from accounts.tests.factories import AgentFactory, UserFactory
from listings import services as listing_services
from listings.models import Listing
from realio import events
from realio.models import OutboxEvent
from search import selectors, services
from search.alert_tasks import send_alert_digests
from search.models import SavedSearch, SavedSearchMatch
from search.query import SearchQuery

pytestmark = pytest.mark.django_db

PARIS = (48.8566, 2.3522)  # lat, lng
_names = count()


# --- helpers -------------------------------------------------------------------------------------

def save(user=None, frequency="instant", **params):
    return services.saved_search_create(user=user or UserFactory(), name=f"search {next(_names)}",
                                        query=SearchQuery.from_params(params), alert_frequency=frequency)


def listing(agent=None, status="active", at=PARIS, **fields):
    """A listing made through the listing services (so its events are in the outbox)."""
    values = {"title": "Bright flat", "description": "Quiet street, close to the metro.", "listing_type": "sale",
              "property_type": "apartment", "price": Decimal("350000"), "bedrooms": 2, "bathrooms": 1,
              "area_sqm": Decimal("65"), "year_built": 1985, "city": "Paris", "country": "FR",
              "features": ["balcony", "elevator"]} | fields
    return listing_services.listing_create(agent=agent or AgentFactory(), latitude=at[0], longitude=at[1],
                                           status=status, **values)


def change(home, **fields):
    return listing_services.listing_update(listing=home, by=home.agent, **fields)


def set_status(home, status):
    return listing_services.listing_set_status(listing=home, by=home.agent, status=status)


def point_at(origin, metres, azimuth_degrees=0):
    """The (lat, lng) `metres` from `origin` towards `azimuth_degrees` (on the spheroid, as ST_DWithin)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Y(p::geometry), ST_X(p::geometry) FROM ST_Project("
                       "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s, radians(%s)) p",
                       [origin[1], origin[0], metres, azimuth_degrees])
        return cursor.fetchone()


class Alerts:
    """Runs the alert handlers on the listing events written since it last ran (in order), as
    the outbox relay would, and reads the events they published."""

    def __init__(self):
        self.seen = OutboxEvent.objects.aggregate(last=Max("pk"))["last"] or 0

    def run(self, *, again=False):
        new = OutboxEvent.objects.filter(pk__gt=0 if again else self.seen, type__startswith="listing.")
        for event in new.order_by("pk"):
            for handler in events.handlers_for(event.type):
                if handler.name.startswith("search.alerts."):
                    handler.func(event)
            self.seen = max(self.seen, event.pk)
        return self

    @staticmethod
    def matched():
        return [e.payload for e in OutboxEvent.objects.filter(type="saved_search.matched").order_by("pk")]

    def matched_ids(self, reason=None):
        return sorted(p["saved_search_id"] for p in self.matched() if reason is None or p["reason"] == reason)


@pytest.fixture
def alerts():
    return Alerts()


def matching(home):
    return sorted(selectors.saved_searches_matching(home).values_list("pk", flat=True))


# --- a new listing ---------------------------------------------------------------------------------

def test_a_published_listing_alerts_the_searches_it_matches(alerts):
    # given three saved searches, two of which a Paris flat for 350,000 with a balcony matches
    cheap = save(max_price="300000")
    flats = save(property_type="apartment,condo", max_price="400000", frequency="daily")
    balcony = save(features="balcony", listing_type="sale", min_beds="2")

    # when the flat is published
    home = listing(price=Decimal("350000"))
    alerts.run()

    # then each matching search gets one `saved_search.matched`, the other none
    assert sorted(alerts.matched(), key=lambda p: p["saved_search_id"]) == [
        {"saved_search_id": s.pk, "user_id": s.user_id, "listing_id": home.pk, "reason": "new",
         "frequency": s.alert_frequency} for s in (flats, balcony)]
    assert cheap.pk not in alerts.matched_ids()
    # and the matches are recorded, an instant one as alerted at once, a daily one waiting
    rows = {m.saved_search_id: m for m in SavedSearchMatch.objects.filter(listing=home)}
    assert set(rows) == {flats.pk, balcony.pk}
    assert rows[balcony.pk].alerted_at is not None and rows[flats.pk].alerted_at is None


def test_the_handlers_read_the_listing_as_it_is_now(alerts):
    # relay order is not guaranteed: a home withdrawn before its publication's alert runs alerts nobody
    save(q="flat")
    home = listing()
    set_status(home, "withdrawn")

    alerts.run()

    assert alerts.matched() == []


def test_a_draft_alerts_nobody_until_it_is_published(alerts):
    search = save(q="flat")
    home = listing(status="draft")
    alerts.run()
    assert alerts.matched() == []

    set_status(home, "active")
    alerts.run()

    assert [(p["saved_search_id"], p["reason"]) for p in alerts.matched()] == [(search.pk, "new")]


def test_searches_with_alerts_off_of_closed_accounts_or_of_the_agent_are_left_out(alerts):
    agent = AgentFactory()
    own = save(user=agent, q="flat")
    off = save(q="flat", frequency="never")
    closed = save(q="flat")
    closed.user.is_active = False
    closed.user.save()
    kept = save(q="flat")

    home = listing(agent=agent)
    alerts.run()

    assert alerts.matched_ids() == [kept.pk]
    assert own.pk not in matching(home) and off.pk in matching(home)  # the selector leaves frequency to alerts


# --- what matches ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "matches"), [
    ({"listing_type": "sale"}, True), ({"listing_type": "rent"}, False),
    ({"property_type": "house,apartment"}, True), ({"property_type": "house"}, False),
    ({"min_price": "350000"}, True), ({"min_price": "350000.01"}, False),
    ({"max_price": "350000"}, True), ({"max_price": "349999.99"}, False),
    ({"min_beds": "2"}, True), ({"min_beds": "3"}, False),
    ({"min_baths": "1"}, True), ({"min_baths": "2"}, False),
    ({"min_area": "60", "max_area": "65"}, True), ({"max_area": "64.99"}, False), ({"min_area": "70"}, False),
    ({"min_year": "1980", "max_year": "1985"}, True), ({"min_year": "1990"}, False), ({"max_year": "1980"}, False),
    ({"features": "balcony"}, True), ({"features": "balcony,elevator"}, True),
    ({"features": "balcony,pool"}, False),
    ({"q": "bright metro"}, True), ({"q": "quiet"}, True), ({"q": "swimming pool"}, False),
    ({"q": "flat -quiet"}, True),  # the search runs the corrected words; "-" is not one of them
    ({"q": "flat", "max_price": "400000", "features": "elevator", "property_type": "apartment"}, True),
])
def test_each_criterion_matches_as_the_search_would(params, matches):
    # given a saved search and a listing (350,000, 2 beds, 1 bath, 65 m², 1985, balcony + elevator)
    search = save(**params)
    home = listing()

    # then the reverse query finds the search exactly when running the search finds the listing
    assert (search.pk in matching(home)) is matches
    assert (home.pk in services.search(SearchQuery.from_params(search.query)).result.ids) is matches


def test_a_listing_without_area_or_year_matches_only_searches_without_those_bounds():
    unbounded = save(q="flat")
    by_area = save(min_area="10")
    by_year = save(max_year="2100")

    home = listing(area_sqm=None, year_built=None)

    assert matching(home) == [unbounded.pk]
    assert {by_area.pk, by_year.pk}.isdisjoint(matching(home))


def test_a_radius_matches_exactly_the_listings_within_it():
    search = save(lat=str(PARIS[0]), lng=str(PARIS[1]), radius_km="2")

    inside = listing(at=point_at(PARIS, 1990, 45))
    # outside the radius but inside the stored polygon (drawn a little wider than the circle)
    just_outside = listing(at=point_at(PARIS, 2015, 45))
    far = listing(at=point_at(PARIS, 5000, 200))

    assert matching(inside) == [search.pk]
    assert matching(just_outside) == [] and matching(far) == []


def test_a_box_matches_exactly_its_longitude_latitude_rectangle():
    search = save(bbox="2.30,48.84,2.40,48.88")

    assert matching(listing(at=(48.8799, 2.35))) == [search.pk]
    assert matching(listing(at=(48.84, 2.30))) == [search.pk]  # a corner belongs to the box
    assert matching(listing(at=(48.8801, 2.35))) == []
    assert matching(listing(at=(48.86, 2.29995))) == []  # within the polygon's hair of margin, not the box


def test_a_polygon_matches_the_listings_inside_it():
    search = save(polygon="2.30,48.84;2.40,48.84;2.35,48.90")

    assert matching(listing(at=(48.85, 2.35))) == [search.pk]
    assert matching(listing(at=(48.89, 2.31))) == []


def test_several_places_must_all_hold():
    # a box around Paris and a 1 km circle at its edge: the area kept is the circle
    search = save(bbox="2.30,48.84,2.40,48.88", lat="48.88", lng="2.35", radius_km="1",
                  polygon="2.30,48.84;2.40,48.84;2.40,48.90;2.30,48.90")

    assert matching(listing(at=(48.875, 2.35))) == [search.pk]  # in the circle, the box and the polygon
    assert matching(listing(at=(48.885, 2.35))) == []  # in the circle and the polygon, not the box


def test_keywords_as_the_search_ran_them_and_as_typed():
    # given a vocabulary holding "garden" and "jacuzzo" (from active listings)
    listing(title="House with a garden")
    listing(title="Villa with jacuzzo")
    services.vocabulary_refresh()

    # when searches are saved with a typo, and with a word the vocabulary does not know yet
    typo = save(q="gardn")
    unknown = save(q="jacuzzi")
    assert (typo.keywords, unknown.keywords) == ("garden", "jacuzzo")

    # then the typo matches what its search showed, and the word as typed matches once a home has it
    assert typo.pk in matching(listing(title="Loft on a garden"))
    assert unknown.pk in matching(listing(title="Loft with a jacuzzi"))
    assert not {typo.pk, unknown.pk} & set(matching(listing(title="Plain flat")))


def test_keywords_without_a_searchable_word_are_ignored_like_the_search_does():
    search = save(q="the and of", max_price="400000")

    assert search.keywords == ""
    assert matching(listing()) == [search.pk]


# --- price drops and re-listings ---------------------------------------------------------------------

def test_a_price_drop_into_range_alerts_and_a_rise_does_not(alerts):
    # given a search up to 300,000 and a flat published at 350,000 (not matching)
    search = save(max_price="300000")
    home = listing(price=Decimal("350000"))
    alerts.run()
    assert alerts.matched() == []

    # when the price rises, nothing; when it drops but stays above the range, nothing
    change(home, price=Decimal("360000"))
    change(home, price=Decimal("320000"))
    alerts.run()
    assert alerts.matched() == []

    # when it drops into the range, the search is alerted for a price drop
    change(home, price=Decimal("299000"))
    alerts.run()
    assert [(p["saved_search_id"], p["reason"]) for p in alerts.matched()] == [(search.pk, "price_drop")]


def test_a_price_drop_alerts_searches_that_already_matched(alerts):
    search = save(max_price="400000")
    home = listing(price=Decimal("350000"))
    change(home, price=Decimal("330000"))
    alerts.run()

    assert [p["reason"] for p in alerts.matched()] == ["new", "price_drop"]
    assert {p["saved_search_id"] for p in alerts.matched()} == {search.pk}


def test_a_drop_undone_before_its_alert_runs_alerts_nobody(alerts):
    save(max_price="400000")
    home = listing(price=Decimal("350000"))
    alerts.run()
    change(home, price=Decimal("330000"))
    change(home, price=Decimal("380000"))  # back up before the handlers run

    alerts.run()

    assert [p["reason"] for p in alerts.matched()] == ["new"]


def test_a_price_drop_of_a_listing_off_the_market_alerts_nobody(alerts):
    save(max_price="400000")
    home = listing(price=Decimal("450000"))
    set_status(home, "pending")
    change(home, price=Decimal("390000"))

    alerts.run()

    assert alerts.matched() == []


def test_a_relisted_home_alerts_and_a_sold_one_does_not(alerts):
    # given a search and a matching flat, published (alerted as new), then under offer
    search = save(q="flat")
    home = listing()
    alerts.run()
    set_status(home, "pending")
    alerts.run()
    assert [p["reason"] for p in alerts.matched()] == ["new"]

    # when the offer falls through and the flat is back on the market
    set_status(home, "active")
    alerts.run()

    # then the search is alerted that it is back
    assert [(p["saved_search_id"], p["reason"]) for p in alerts.matched()] == [(search.pk, "new"),
                                                                              (search.pk, "relisted")]

    # when it is sold, nobody is alerted
    set_status(home, "sold")
    alerts.run()
    assert len(alerts.matched()) == 2


def test_a_draft_withdrawn_then_published_is_new_not_relisted(alerts):
    search = save(q="flat")
    home = listing(status="draft")
    set_status(home, "withdrawn")
    set_status(home, "active")

    alerts.run()

    assert [(p["saved_search_id"], p["reason"]) for p in alerts.matched()] == [(search.pk, "new")]


def test_a_home_relisted_long_after_its_publication_is_relisted(alerts):
    search = save(q="flat")
    home = listing()
    alerts.run()
    set_status(home, "withdrawn")
    alerts.run()
    # its first publication long ago (and its events purged since)
    Listing.objects.filter(pk=home.pk).update(published_at=timezone.now() - timedelta(days=90))
    OutboxEvent.objects.filter(type__startswith="listing.").delete()

    set_status(home, "active")
    alerts.run()

    assert [(p["saved_search_id"], p["reason"]) for p in alerts.matched()] == [(search.pk, "new"),
                                                                              (search.pk, "relisted")]


# --- once --------------------------------------------------------------------------------------------

def test_handlers_run_twice_alert_once(alerts):
    search = save(max_price="400000")
    home = listing()
    change(home, price=Decimal("340000"))
    set_status(home, "withdrawn")
    set_status(home, "active")

    alerts.run()
    alerts.run(again=True)  # every handler once more on every event

    assert sorted(p["reason"] for p in alerts.matched()) == ["new", "price_drop", "relisted"]
    assert SavedSearchMatch.objects.filter(saved_search=search, listing=home).count() == 3


def test_withdrawn_and_relisted_twice_within_minutes_alerts_once(alerts):
    search = save(q="flat")
    home = listing()
    for _ in range(2):
        set_status(home, "withdrawn")
        set_status(home, "active")
    alerts.run()

    assert [p["reason"] for p in alerts.matched()] == ["new", "relisted"]
    assert SavedSearchMatch.objects.filter(saved_search=search, listing=home, reason="relisted").count() == 1


def test_the_same_reason_alerts_again_after_a_while():
    search = save(max_price="400000", frequency="daily")
    home = listing()
    later = timezone.now() + services.ALERT_AGAIN_AFTER + timedelta(minutes=1)

    assert services.saved_search_alerts_for_listing(listing_id=home.pk, reason="price_drop") == [search.pk]
    assert services.saved_search_alerts_for_listing(listing_id=home.pk, reason="price_drop") == []
    assert services.saved_search_alerts_for_listing(listing_id=home.pk, reason="price_drop", now=later) == [search.pk]

    match = SavedSearchMatch.objects.get(saved_search=search, listing=home, reason="price_drop")
    assert match.matched_at == later and match.alerted_at is None


# --- digests -----------------------------------------------------------------------------------------

def digests():
    return [e.payload for e in OutboxEvent.objects.filter(type="saved_search.digest_due").order_by("pk")]


def test_the_daily_digest_groups_a_days_matches_once_a_day(alerts):
    # given a daily search (saved now) and two homes published that match it, one since sold
    search = save(frequency="daily", q="flat")
    first, second, sold = listing(), listing(), listing()
    alerts.run()
    set_status(sold, "sold")
    now = timezone.now()

    # before a day has passed since it was saved, no digest
    assert services.alerts_digest(now=now + timedelta(hours=23)) == 0

    # a day later: one digest of the homes still on the market, newest first
    assert services.alerts_digest(now=now + timedelta(hours=25)) == 1
    assert digests() == [{"saved_search_id": search.pk, "user_id": search.user_id,
                          "listing_ids": [second.pk, first.pk], "total": 2, "frequency": "daily"}]
    search.refresh_from_db()
    assert search.last_alerted_at == now + timedelta(hours=25)
    assert not SavedSearchMatch.objects.filter(saved_search=search, alerted_at__isnull=True).exists()

    # run again (or often): nothing twice
    assert services.alerts_digest(now=now + timedelta(hours=25)) == 0
    assert services.alerts_digest(now=now + timedelta(hours=30)) == 0

    # a new match: it waits for a day after the last digest
    third = listing()
    alerts.run()
    assert services.alerts_digest(now=now + timedelta(hours=48)) == 0
    assert services.alerts_digest(now=now + timedelta(hours=49)) == 1
    assert digests()[-1]["listing_ids"] == [third.pk]


def test_the_weekly_digest_waits_a_week_and_instant_searches_have_none(alerts):
    weekly = save(frequency="weekly", q="flat")
    instant = save(frequency="instant", q="flat")
    listing()
    alerts.run()
    now = timezone.now()

    assert services.alerts_digest(now=now + timedelta(days=6)) == 0
    assert services.alerts_digest(now=now + timedelta(days=7, minutes=1)) == 1
    assert [d["saved_search_id"] for d in digests()] == [weekly.pk]
    assert instant.pk not in [d["saved_search_id"] for d in digests()]


def test_a_digest_of_homes_all_gone_is_not_sent(alerts):
    search = save(frequency="daily", q="flat")
    home = listing()
    alerts.run()
    set_status(home, "sold")

    assert services.alerts_digest(now=timezone.now() + timedelta(days=2)) == 0
    assert digests() == []
    search.refresh_from_db()
    assert search.last_alerted_at is None
    assert not SavedSearchMatch.objects.filter(saved_search=search, alerted_at__isnull=True).exists()


def test_pending_matches_are_dropped_when_alerts_stop_or_the_query_changes(alerts):
    unsubscribed = save(frequency="daily", q="flat")
    changed = save(frequency="weekly", q="flat")
    listing()
    alerts.run()

    services.saved_search_unsubscribe(token=services.saved_search_unsubscribe_token(unsubscribed))
    services.saved_search_update(saved_search_id=changed.pk, user=changed.user, query={"q": "garden"})
    services.saved_search_update(saved_search_id=changed.pk, user=changed.user, alert_frequency="daily")

    assert not SavedSearchMatch.objects.filter(alerted_at__isnull=True).exists()
    assert services.alerts_digest(now=timezone.now() + timedelta(days=8)) == 0


def test_the_digest_task_is_thin_and_safe_to_run_often(alerts):
    save(frequency="daily", q="flat")
    listing()
    alerts.run()
    SavedSearch.objects.update(created_at=timezone.now() - timedelta(days=2))

    assert send_alert_digests.apply().get() == 1
    assert send_alert_digests.apply().get() == 0
    assert send_alert_digests.name.startswith("search.")


# --- through the broker and a worker --------------------------------------------------------------------

def wait_for(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_publishing_a_listing_alerts_through_the_worker(celery_worker):
    # given an instant search and a daily one for flats under 400,000
    instant = save(frequency="instant", max_price="400000", property_type="apartment")
    daily = save(frequency="daily", max_price="400000")
    save(frequency="instant", max_price="100000")

    # when an agent publishes a matching flat (committed: the outbox relays it to the worker)
    home = listing(price=Decimal("350000"))

    # then the worker's alert handler publishes one `saved_search.matched` per matching search
    def matched():
        payloads = [e.payload for e in OutboxEvent.objects.filter(type="saved_search.matched")]
        return payloads if len(payloads) >= 2 else None

    payloads = wait_for(matched, "the saved_search.matched events")
    assert sorted((p["saved_search_id"], p["listing_id"], p["reason"], p["frequency"]) for p in payloads) == [
        (instant.pk, home.pk, "new", "instant"), (daily.pk, home.pk, "new", "daily")]

    # and the digest task, sent through the broker, batches the daily one once it is due
    SavedSearch.objects.filter(pk=daily.pk).update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    send_alert_digests.delay()
    digest = wait_for(lambda: OutboxEvent.objects.filter(type="saved_search.digest_due").first(), "the digest")
    assert digest.payload["saved_search_id"] == daily.pk and digest.payload["listing_ids"] == [home.pk]
