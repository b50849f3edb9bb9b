"""The bookings API as DESIGN.md section 5 gives it: statuses, shapes, local offsets, bad input."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from accounts.tests.factories import AgentFactory, UserFactory
from bookings import services
from bookings.models import Viewing
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def next_weekday(days_ahead=2):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def paris(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


@pytest.fixture
def agent():
    return AgentFactory(time_zone="Europe/Paris")


@pytest.fixture
def listing(agent):
    return ListingFactory(agent=agent)


@pytest.fixture
def customer():
    return UserFactory()


def post_booking(client, listing, start, **extra):
    return client.post("/api/v1/bookings/", {"listing": listing.pk, "start": start, **extra}, format="json")


# --- slots ----------------------------------------------------------------------------------------

def test_slots_carry_the_listings_offset_and_anyone_may_look(api_client, listing):
    day = next_weekday()
    response = api_client.get(f"/api/v1/listings/{listing.pk}/slots/?date={day}")
    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "Europe/Paris"
    assert body["slots"][0] == {"start": paris(day, 9).isoformat(), "end": paris(day, 9, 30).isoformat()}
    assert len(body["slots"]) == 16


@pytest.mark.parametrize("query", ["", "?date=tomorrow", "?date=2027-02-30", "?date=2027-01-05&duration_minutes=x",
                                   "?date=2027-01-05&duration_minutes=7"])
def test_bad_slot_queries_are_400_naming_the_parameter(api_client, listing, query):
    response = api_client.get(f"/api/v1/listings/{listing.pk}/slots/{query}")
    assert response.status_code == 400
    assert response.json()["detail"].split(":")[0] in ("date", "duration_minutes")


def test_slots_of_a_hidden_listing_are_404(api_client, agent):
    draft = ListingFactory(agent=agent, status="draft")
    assert api_client.get(f"/api/v1/listings/{draft.pk}/slots/?date=2027-01-05").status_code == 404
    assert api_client.get("/api/v1/listings/999999/slots/?date=2027-01-05").status_code == 404


# --- booking ----------------------------------------------------------------------------------------

def test_book_then_list_then_read_with_local_offsets(auth_client, listing, customer, agent):
    day = next_weekday()
    client = auth_client(customer)
    response = post_booking(client, listing, paris(day, 10).astimezone(dt.UTC).isoformat(), note="Ring twice")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("listing", "start", "end", "status", "note")} == {
        "listing": listing.pk, "start": paris(day, 10).isoformat(), "end": paris(day, 10, 30).isoformat(),
        "status": "requested", "note": "Ring twice"}
    assert body["agent"] == {"id": agent.pk, "name": agent.name}
    assert body["customer"] == {"id": customer.pk, "name": customer.name}
    assert body["start"].endswith(("+01:00", "+02:00"))
    # both parties list it; nobody else does
    assert [b["id"] for b in client.get("/api/v1/bookings/").json()["results"]] == [body["id"]]
    assert [b["id"] for b in auth_client(agent).get("/api/v1/bookings/?as=agent").json()["results"]] == [body["id"]]
    assert auth_client(agent).get("/api/v1/bookings/?as=customer").json()["count"] == 0
    assert auth_client(UserFactory()).get("/api/v1/bookings/").json()["count"] == 0
    assert auth_client(UserFactory()).get(f"/api/v1/bookings/{body['id']}/").status_code == 404
    assert client.get(f"/api/v1/bookings/{body['id']}/").json()["id"] == body["id"]
    assert client.get("/api/v1/bookings/?when=upcoming").json()["count"] == 1
    assert client.get("/api/v1/bookings/?when=past").json()["count"] == 0


def test_agent_or_customer_overlap_is_409(auth_client, listing, customer):
    day = next_weekday()
    assert post_booking(auth_client(customer), listing, paris(day, 10).isoformat()).status_code == 201
    response = post_booking(auth_client(UserFactory()), listing, paris(day, 10, 15).isoformat())
    assert response.status_code == 409
    assert response.json() == {"detail": "The agent is not free at that time."}
    other = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    response = post_booking(auth_client(customer), other, paris(day, 10).isoformat())
    assert response.status_code == 409
    assert response.json() == {"detail": "You already have a viewing at that time."}


@pytest.mark.parametrize(("payload", "field"), [
    ({"start": "2027-01-05T10:00:00"}, "start"),  # no offset
    ({"start": "soon"}, "start"),
    ({"start": None}, "start"),
    ({"listing": "abc"}, "listing"),
    ({"listing": -1}, "listing"),
    ({"duration_minutes": "long"}, "duration_minutes"),
    ({"duration_minutes": 17}, "duration_minutes"),
    ({"note": "x" * 1001}, "note"),
])
def test_bad_booking_input_is_400_naming_the_field_and_books_nothing(auth_client, listing, customer, payload, field):
    body = {"listing": listing.pk, "start": paris(next_weekday(), 10).isoformat(), **payload}
    response = auth_client(customer).post("/api/v1/bookings/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith(field)
    assert not Viewing.objects.exists()


def test_times_outside_availability_off_grid_or_past_are_400(auth_client, listing, customer):
    client = auth_client(customer)
    day = next_weekday()
    for start, reason in [(paris(day, 20), "does not show homes"), (paris(day, 10, 5), "every 30 minutes"),
                          (paris(day - dt.timedelta(days=10), 10), "passed")]:
        response = post_booking(client, listing, start.isoformat())
        assert response.status_code == 400
        assert reason in response.json()["detail"]


def test_unknown_listing_is_404_and_anonymous_is_401(api_client, auth_client, customer, listing):
    assert post_booking(auth_client(customer), type("L", (), {"pk": 999999}),
                        paris(next_weekday(), 10).isoformat()).status_code == 404
    assert post_booking(api_client, listing, paris(next_weekday(), 10).isoformat()).status_code == 401
    assert api_client.get("/api/v1/bookings/").status_code == 401


@pytest.mark.parametrize("query", ["when=soon", "status=maybe", "as=landlord"])
def test_bad_list_filters_are_400(auth_client, customer, query):
    response = auth_client(customer).get(f"/api/v1/bookings/?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(query.split("=")[0])


def test_actions_and_their_statuses(auth_client, listing, customer, agent):
    day = next_weekday()
    client, agent_client = auth_client(customer), auth_client(agent)
    booking = post_booking(client, listing, paris(day, 10).isoformat()).json()
    url = f"/api/v1/bookings/{booking['id']}"
    assert client.post(f"{url}/confirm/").status_code == 403
    assert auth_client(UserFactory()).post(f"{url}/cancel/").status_code == 404
    response = agent_client.post(f"{url}/confirm/")
    assert (response.status_code, response.json()["status"]) == (200, "confirmed")
    response = client.post(f"{url}/reschedule/", {"start": paris(day, 14).isoformat()}, format="json")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["start"]) == (booking["id"], paris(day, 14).isoformat())
    assert agent_client.post(f"{url}/reschedule/", {"start": paris(day, 15).isoformat()},
                             format="json").status_code == 403
    assert client.post(f"{url}/reschedule/", {"start": "2027-01-05T10:00"}, format="json").status_code == 400
    response = agent_client.post(f"{url}/cancel/", {"reason": "Owner away"}, format="json")
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "Owner away"
    response = agent_client.post(f"{url}/confirm/")
    assert response.status_code == 409
    assert "cannot be confirmed" in response.json()["detail"]
    assert agent_client.post(f"{url}/decline/", {"reason": "x" * 501}, format="json").status_code == 400
    assert agent_client.post("/api/v1/bookings/abc/confirm/").status_code == 404


# --- calendar -------------------------------------------------------------------------------------

def test_calendar_ics_has_the_viewing_with_a_stable_uid(auth_client, listing, customer, agent):
    day = next_weekday()
    client = auth_client(customer)
    booking = post_booking(client, listing, paris(day, 10).isoformat()).json()
    response = client.get(f"/api/v1/bookings/{booking['id']}/calendar.ics", HTTP_ACCEPT="text/calendar")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    event = calendar.walk("VEVENT")[0]
    assert str(calendar["METHOD"]) == "REQUEST"
    uid = str(event["UID"])
    assert uid == f"viewing-{booking['id']}@127.0.0.1"
    assert event.decoded("DTSTART") == paris(day, 10)
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Paris"
    assert calendar.walk("VTIMEZONE"), "the time zone is described for calendar apps"
    assert "12 rue de la Paix" in str(event["LOCATION"])
    assert agent.name in str(event["DESCRIPTION"])
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["ORGANIZER"]) == f"mailto:{agent.email}"

    client.post(f"/api/v1/bookings/{booking['id']}/reschedule/", {"start": paris(day, 11).isoformat()},
                format="json")
    moved = Calendar.from_ical(client.get(f"/api/v1/bookings/{booking['id']}/calendar.ics").content)
    event = moved.walk("VEVENT")[0]
    assert (str(event["UID"]), event.decoded("DTSTART"), event["SEQUENCE"]) == (uid, paris(day, 11), 1)

    client.post(f"/api/v1/bookings/{booking['id']}/cancel/")
    cancelled = Calendar.from_ical(client.get(f"/api/v1/bookings/{booking['id']}/calendar.ics").content)
    assert str(cancelled["METHOD"]) == "CANCEL"
    assert str(cancelled.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    assert cancelled.walk("VEVENT")[0]["SEQUENCE"] == 2
    # not a party: 404 (as JSON)
    response = auth_client(UserFactory()).get(f"/api/v1/bookings/{booking['id']}/calendar.ics",
                                              HTTP_ACCEPT="text/calendar")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_the_agent_feed_is_private_and_lists_their_viewings(client, auth_client, listing, customer, agent):
    day = next_weekday()
    post_booking(auth_client(customer), listing, paris(day, 10).isoformat())
    feed_url = auth_client(agent).get("/api/v1/availability/").json()["feed_url"]
    path = feed_url.replace("http://testserver", "")
    response = client.get(path)
    assert response.status_code == 200
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert [e.decoded("DTSTART") for e in events] == [paris(day, 10)]
    assert client.get("/bookings/feed/not-the-token.ics").status_code == 404
    services.availability_feed_token_reset(agent=agent)
    assert client.get(path).status_code == 404


# --- availability ---------------------------------------------------------------------------------

def test_availability_get_and_put(auth_client, agent):
    client = auth_client(agent)
    body = client.get("/api/v1/availability/").json()
    assert body["time_zone"] == "Europe/Paris"
    assert body["rules"][0] == {"weekday": 0, "start": "09:00", "end": "17:00"}
    response = client.put("/api/v1/availability/", {
        "time_zone": "America/New_York", "rules": [{"weekday": 5, "start": "10:00", "end": "14:00"}],
        "exceptions": [{"date": "2027-01-09", "kind": "off"}], "buffer_minutes": 30, "instant_booking": True,
    }, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["time_zone"] == "America/New_York"
    assert body["rules"] == [{"weekday": 5, "start": "10:00", "end": "14:00"}]
    assert body["exceptions"][0]["date"] == "2027-01-09"
    assert (body["buffer_minutes"], body["instant_booking"]) == (30, True)


@pytest.mark.parametrize("payload", [
    {"rules": []},  # no time zone
    {"time_zone": "Nowhere/Land", "rules": []},
    {"time_zone": "UTC", "rules": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
    {"time_zone": "UTC", "rules": [{"weekday": 1, "start": "11:00", "end": "10:00"}]},
    {"time_zone": "UTC", "rules": [{"weekday": 1, "start": "9am", "end": "10:00"}]},
    {"time_zone": "UTC", "rules": "all week"},
    {"time_zone": "UTC", "rules": [], "buffer_minutes": -5},
    {"time_zone": "UTC", "rules": [], "exceptions": [{"date": "2027-01-09", "kind": "extra"}]},
    {"time_zone": "UTC", "rules": [], "exceptions": [{"date": "2027-01-09", "start": "10:00"}]},
])
def test_bad_availability_is_400_and_changes_nothing(auth_client, agent, payload):
    client = auth_client(agent)
    before = client.get("/api/v1/availability/").json()
    response = client.put("/api/v1/availability/", payload, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"]
    assert client.get("/api/v1/availability/").json() == before


def test_availability_is_for_agents(api_client, auth_client, customer):
    assert api_client.get("/api/v1/availability/").status_code == 401
    assert auth_client(customer).get("/api/v1/availability/").status_code == 403
    assert auth_client(customer).put("/api/v1/availability/", {}, format="json").status_code == 403


def test_listing_booking_option(auth_client, listing, agent):
    url = f"/api/v1/listings/{listing.pk}/booking-option/"
    assert auth_client(agent).put(url, {"instant_booking": True}, format="json").status_code == 200
    other = AgentFactory()
    assert auth_client(other).put(url, {"instant_booking": False}, format="json").status_code == 403
    assert auth_client(agent).put(url, {"instant_booking": "maybe"}, format="json").status_code == 400
    response = post_booking(auth_client(UserFactory()), listing, paris(next_weekday(), 10).isoformat())
    assert response.json()["status"] == "confirmed"


def test_export_includes_viewings(auth_client, listing, customer):
    post_booking(auth_client(customer), listing, paris(next_weekday(), 10).isoformat(), note="after work")
    export = auth_client(customer).get("/api/v1/me/export/").json()
    assert export["viewings"][0]["note"] == "after work"
