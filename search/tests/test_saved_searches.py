"""Saved searches: the `saved-searches/` API (DESIGN.md section 5), the services behind it (criteria
extracted for the reverse query, names, limits, ownership) and the unsubscribe link."""

import threading
from decimal import Decimal

import pytest
from django.contrib.gis.geos import Point
from django.db import connections

from accounts.tests.factories import UserFactory
from realio.errors import ApplicationError, Conflict, NotFound
from realio.models import OutboxEvent
from search import selectors, services
from search.models import SavedSearch
from search.query import SearchQuery

pytestmark = pytest.mark.django_db

URL = "/api/v1/saved-searches/"
PARIS = {"lat": "48.8566", "lng": "2.3522"}


def save(user, name="Paris flats", frequency="daily", **params):
    return services.saved_search_create(user=user, name=name, query=SearchQuery.from_params(params),
                                        alert_frequency=frequency)


# --- create -------------------------------------------------------------------------------------

def test_create_stores_the_canonical_query_and_its_criteria(auth_client):
    # given a signed-in customer
    user = UserFactory()

    # when they save a search with filters, a place and keywords (lists as JSON arrays)
    response = auth_client(user).post(URL, {
        "name": "  Family  homes ", "alert_frequency": "instant",
        "query": {"q": "Garden", "listing_type": "sale", "property_type": ["townhouse", "house"],
                  "min_price": 200000, "max_price": "450000.5", "min_beds": 3, "min_baths": 2,
                  "min_area": "80.001", "max_year": 2020, "features": ["pool", "garage"],
                  "lat": 48.8566, "lng": 2.3522, "radius_km": 5, "page": 3, "page_size": 50},
    }, format="json")

    # then it is saved with its canonical parameters (pagination dropped)…
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Family homes" and body["alert_frequency"] == "instant"
    assert body["query"] == {"q": "Garden", "listing_type": "sale", "property_type": "house,townhouse",
                             "min_price": "200000", "max_price": "450000.5", "min_beds": "3", "min_baths": "2",
                             "min_area": "80.001", "max_year": "2020", "features": "garage,pool",
                             "lat": "48.8566", "lng": "2.3522", "radius_km": "5.0"}
    assert body["search_url"].startswith("http://testserver/api/v1/search/?q=Garden&")
    # …and the criteria the alerts compare listings with
    saved = SavedSearch.objects.get(pk=body["id"])
    assert saved.user == user
    assert (saved.listing_types, saved.property_types, saved.features) == (
        ["sale"], ["house", "townhouse"], ["garage", "pool"])
    assert (saved.min_price, saved.max_price) == (Decimal("200000"), Decimal("450000.50"))
    assert (saved.min_beds, saved.min_baths, saved.min_area, saved.max_area) == (3, 2, Decimal("80.01"), None)
    assert (saved.min_year, saved.max_year, saved.keywords) == (None, 2020, "garden")
    assert saved.area.geom_type == "Polygon" and saved.area.covers(Point(2.3522, 48.8566, srid=4326))
    assert OutboxEvent.objects.filter(type="saved_search.created", payload={"saved_search_id": saved.pk}).exists()


def test_a_box_and_a_polygon_may_be_given_as_arrays(auth_client):
    response = auth_client(UserFactory()).post(URL, {"name": "drawn", "query": {
        "bbox": [2.3, 48.84, 2.4, 48.88], "polygon": [[2.3, 48.84], [2.4, 48.84], [2.35, 48.9]]}}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["query"] == {"bbox": "2.3,48.84,2.4,48.88",
                                        "polygon": "2.3,48.84;2.4,48.84;2.35,48.9;2.3,48.84"}


def test_a_minimum_rounds_up_and_a_maximum_down_to_cents():
    saved = save(UserFactory(), min_price="100.001", max_price="200.009", min_area="10.001", max_area="20.999")

    assert (saved.min_price, saved.max_price) == (Decimal("100.01"), Decimal("200.00"))
    assert (saved.min_area, saved.max_area) == (Decimal("10.01"), Decimal("20.99"))


@pytest.mark.parametrize(("query", "key"), [
    ({"bbox": "1,2,3"}, "query.bbox"),
    ({"max_price": "cheap"}, "query.max_price"),
    ({"property_type": ["castle"]}, "query.property_type"),
    ({"lat": 48.8, "lng": 2.3}, "query.radius_km"),
    ({"max_prize": 100}, "query.max_prize"),
    ({"min_price": 5, "max_price": 1}, "query.min_price"),
    ({"q": {"nested": "object"}}, "query.q"),
    ({}, "query"),
    ({"sort": "newest"}, "query"),
    ("q=garden", "query"),
    (["garden"], "query"),
])
def test_an_invalid_query_is_a_400_naming_the_parameter(auth_client, query, key):
    user = UserFactory()

    response = auth_client(user).post(URL, {"name": "x", "query": query}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert key in body["errors"] and body["detail"].startswith(f"{key}: ")
    assert not SavedSearch.objects.exists()


@pytest.mark.parametrize(("body", "key"), [
    ({"query": {"q": "garden"}}, "name"),
    ({"name": "   ", "query": {"q": "garden"}}, "name"),
    ({"name": "x" * 101, "query": {"q": "garden"}}, "name"),
    ({"name": "x"}, "query"),
    ({"name": "x", "query": {"q": "garden"}, "alert_frequency": "hourly"}, "alert_frequency"),
])
def test_invalid_fields_are_400(auth_client, body, key):
    response = auth_client(UserFactory()).post(URL, body, format="json")

    assert response.status_code == 400
    assert key in response.json()["errors"]
    assert not SavedSearch.objects.exists()


def test_a_name_is_unique_per_person_whatever_its_case(auth_client):
    # given a saved search named "Paris flats"
    user = UserFactory()
    save(user, name="Paris flats", q="flat")
    client = auth_client(user)

    # when the same person saves another one under the same name in other letters
    response = client.post(URL, {"name": "PARIS  FLATS", "query": {"q": "loft"}}, format="json")

    # then it is a conflict, while someone else may use the name
    assert response.status_code == 409
    assert "Paris flats" in response.json()["detail"] or "PARIS FLATS" in response.json()["detail"]
    assert auth_client(UserFactory()).post(URL, {"name": "Paris flats", "query": {"q": "loft"}},
                                           format="json").status_code == 201
    assert SavedSearch.objects.filter(user=user).count() == 1


def test_a_person_keeps_a_limited_number_of_searches(auth_client, monkeypatch):
    monkeypatch.setattr(services, "MAX_SAVED_SEARCHES", 3)
    user = UserFactory()
    for number in range(3):
        save(user, name=f"search {number}", q="garden")

    response = auth_client(user).post(URL, {"name": "one more", "query": {"q": "garden"}}, format="json")

    assert response.status_code == 400
    assert "at most 3" in response.json()["detail"]
    assert SavedSearch.objects.filter(user=user).count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_under_concurrent_requests(monkeypatch):
    # given a person one search below the limit
    monkeypatch.setattr(services, "MAX_SAVED_SEARCHES", 2)
    user = UserFactory()
    save(user, name="first", q="garden")
    barrier = threading.Barrier(4)
    outcomes = []

    def attempt(number):
        try:
            barrier.wait()
            save(user, name=f"parallel {number}", q="garden")
            outcomes.append("saved")
        except ApplicationError as exc:
            outcomes.append(exc.status_code)
        finally:
            connections.close_all()

    # when four requests save at once, each on its own connection
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one is saved
    assert sorted(outcomes, key=str) == [400, 400, 400, "saved"]
    assert SavedSearch.objects.filter(user=user).count() == 2


def test_anonymous_callers_get_401(api_client):
    assert api_client.get(URL).status_code == 401
    assert api_client.post(URL, {"name": "x", "query": {"q": "garden"}}, format="json").status_code == 401
    with pytest.raises(ApplicationError) as caught:
        services.saved_search_create(user=None, name="x", query=SearchQuery.from_params({"q": "garden"}))
    assert caught.value.status_code == 401


# --- read, change, delete -----------------------------------------------------------------------

def test_a_person_lists_only_their_own_searches_paginated(auth_client):
    user, other = UserFactory(), UserFactory()
    first = save(user, name="first", q="garden")
    second = save(user, name="second", q="pool")
    save(other, name="theirs", q="garden")

    response = auth_client(user).get(URL, {"page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["next"] and body["previous"] is None
    assert [r["id"] for r in body["results"]] == [second.pk]
    assert set(body["results"][0]) >= {"id", "name", "query", "alert_frequency"}
    assert auth_client(user).get(f"{URL}{first.pk}/").json()["name"] == "first"


def test_another_persons_search_is_404_for_every_verb(auth_client):
    # given someone else's saved search
    theirs = save(UserFactory(), name="theirs", q="garden", frequency="weekly")
    client = auth_client(UserFactory())
    url = f"{URL}{theirs.pk}/"

    # when another person reads, changes or deletes it, then it does not exist for them
    assert client.get(url).status_code == 404
    assert client.patch(url, {"alert_frequency": "never"}, format="json").status_code == 404
    assert client.put(url, {"name": "mine", "query": {"q": "x"}}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.alert_frequency) == ("theirs", "weekly")
    with pytest.raises(NotFound):
        services.saved_search_delete(saved_search_id=theirs.pk, user=UserFactory())
    assert client.get(f"{URL}999999/").status_code == 404


def test_patch_changes_what_is_sent_and_recomputes_the_criteria(auth_client):
    user = UserFactory()
    saved = save(user, name="old", q="garden", max_price="300000", **PARIS, radius_km="2")
    client = auth_client(user)

    response = client.patch(f"{URL}{saved.pk}/", {"alert_frequency": "weekly"}, format="json")
    assert response.status_code == 200 and response.json()["alert_frequency"] == "weekly"
    assert response.json()["query"]["max_price"] == "300000"

    response = client.patch(f"{URL}{saved.pk}/", {"name": "New name", "query": {"min_beds": 2}}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["query"] == {"min_beds": "2"}
    saved.refresh_from_db()
    assert (saved.name, saved.alert_frequency, saved.min_beds) == ("New name", "weekly", 2)
    assert (saved.max_price, saved.keywords, saved.area) == (None, "", None)


def test_put_needs_the_whole_search(auth_client):
    user = UserFactory()
    saved = save(user, name="old", q="garden")
    client = auth_client(user)

    assert client.put(f"{URL}{saved.pk}/", {"name": "only a name"}, format="json").status_code == 400
    response = client.put(f"{URL}{saved.pk}/", {"name": "whole", "query": {"q": "pool"},
                                                "alert_frequency": "instant"}, format="json")
    assert response.status_code == 200
    assert response.json()["query"] == {"q": "pool"} and response.json()["alert_frequency"] == "instant"


def test_renaming_keeps_names_unique_but_may_change_letter_case():
    user = UserFactory()
    save(user, name="Taken", q="garden")
    saved = save(user, name="mine", q="pool")

    with pytest.raises(Conflict):
        services.saved_search_update(saved_search_id=saved.pk, user=user, name="taken")
    assert services.saved_search_update(saved_search_id=saved.pk, user=user, name="MINE").name == "MINE"


def test_a_bad_query_in_an_update_changes_nothing():
    user = UserFactory()
    saved = save(user, name="mine", q="pool")

    with pytest.raises(ApplicationError) as caught:
        services.saved_search_update(saved_search_id=saved.pk, user=user, name="renamed", query={"bbox": "x"})

    assert "query.bbox" in caught.value.errors
    saved.refresh_from_db()
    assert (saved.name, saved.query) == ("mine", {"q": "pool"})


def test_delete_removes_the_search(auth_client):
    user = UserFactory()
    saved = save(user, q="garden")

    assert auth_client(user).delete(f"{URL}{saved.pk}/").status_code == 204
    assert not SavedSearch.objects.filter(pk=saved.pk).exists()


# --- the area -----------------------------------------------------------------------------------

def test_the_area_is_the_circle_box_or_polygon_searched():
    user = UserFactory()
    circle = save(user, name="circle", **PARIS, radius_km="2").area
    box = save(user, name="box", bbox="2.30,48.84,2.40,48.88").area
    polygon = save(user, name="polygon", polygon="2.30,48.84;2.40,48.84;2.35,48.90").area

    # a circle: a geography polygon around the radius (the exact distance is tested again)
    assert circle.geom_type == "Polygon" and circle.srid == 4326
    assert 2.3522 - 0.03 < circle.extent[0] < 2.3522 - 0.027 and 48.8566 + 0.018 < circle.extent[3] < 48.8566 + 0.019
    # a box: its corners (pushed out by a hair) and its edges following the parallels
    west, south, east, north = box.extent
    assert (round(west, 4), round(south, 4), round(east, 4), round(north, 4)) == (2.2999, 48.8399, 2.4001, 48.8801)
    assert len(box.coords[0]) > 5
    # a polygon: as drawn
    assert polygon.coords[0] == ((2.3, 48.84), (2.4, 48.84), (2.35, 48.9), (2.3, 48.84))
    # none without a place
    assert save(user, name="nowhere", q="garden").area is None


def test_several_places_keep_the_smallest_as_the_area():
    saved = save(UserFactory(), bbox="2.0,48.0,3.0,49.5", **PARIS, radius_km="1")

    assert saved.area.extent[2] - saved.area.extent[0] < 0.03  # the 1 km circle, not the box


def test_a_box_wider_than_a_hemisphere_has_no_indexed_area():
    saved = save(UserFactory(), bbox="-170,-10,170,10")

    assert saved.area is None and saved.query["bbox"] == "-170,-10,170,10"


# --- unsubscribe ---------------------------------------------------------------------------------

def test_the_link_in_an_alert_unsubscribes_without_signing_in(api_client):
    # given a saved search with daily alerts and the token of its unsubscribe link
    saved = save(UserFactory(), q="garden", frequency="daily")
    token = services.saved_search_unsubscribe_token(saved)

    # when the link is opened (twice: mail scanners open links too)
    response = api_client.get(f"{URL}unsubscribe/", {"token": token})
    again = api_client.get(f"{URL}unsubscribe/", {"token": token})

    # then alerts are off
    assert response.status_code == 200 and again.status_code == 200
    assert response.json() == {"id": saved.pk, "alert_frequency": "never"}
    saved.refresh_from_db()
    assert saved.alert_frequency == "never"


def test_one_click_unsubscribe_by_post(api_client):
    saved = save(UserFactory(), q="garden", frequency="instant")

    response = api_client.post(f"{URL}unsubscribe/?token={services.saved_search_unsubscribe_token(saved)}")

    assert response.status_code == 200
    saved.refresh_from_db()
    assert saved.alert_frequency == "never"


def test_a_bad_or_stale_unsubscribe_token(api_client):
    saved = save(UserFactory(), q="garden")
    token = services.saved_search_unsubscribe_token(saved)
    forged = token[:-2] + ("aa" if not token.endswith("aa") else "bb")

    assert api_client.get(f"{URL}unsubscribe/", {"token": forged}).status_code == 400
    assert api_client.get(f"{URL}unsubscribe/").status_code == 400
    # a token signed for something else (another salt) is refused too
    from django.core import signing
    other = signing.dumps([saved.pk, saved.user_id], salt="something-else")
    assert api_client.get(f"{URL}unsubscribe/", {"token": other}).status_code == 400
    saved.refresh_from_db()
    assert saved.alert_frequency == "daily"
    # the search deleted since: 404
    saved.delete()
    response = api_client.get(f"{URL}unsubscribe/", {"token": token})
    assert response.status_code == 404 and response.json()["detail"]


# --- a person's data ------------------------------------------------------------------------------

def test_export_and_erase_cover_a_persons_saved_searches():
    user, other = UserFactory(), UserFactory()
    saved = save(user, name="mine", q="garden", frequency="weekly")
    save(other, name="theirs", q="garden")

    assert selectors.saved_searches_export(user) == [{
        "id": saved.pk, "name": "mine", "query": {"q": "garden"}, "alert_frequency": "weekly",
        "created_at": saved.created_at.isoformat(), "last_alerted_at": None}]
    services.saved_searches_erase(user)
    assert not SavedSearch.objects.filter(user=user).exists()
    assert SavedSearch.objects.filter(user=other).exists()
