"""The booking pages through Django's test client: the listing's slot picker (plain POST and
htmx), /bookings/ with cancel, confirm/decline, reschedule and the page's .ics."""

import datetime as dt
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from icalendar import Calendar

from accounts.tests.factories import AgentFactory, UserFactory
from bookings import services
from bookings.models import Viewing
from bookings.tests.factories import ViewingFactory
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
HTMX = {"HTTP_HX_REQUEST": "true"}


def next_weekday(days_ahead=2):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def paris(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


@pytest.fixture
def agent():
    return AgentFactory(time_zone="Europe/Paris", first_name="Ada", last_name="Agent")


@pytest.fixture
def listing(agent):
    return ListingFactory(agent=agent, title="Canal flat")


@pytest.fixture
def customer():
    return UserFactory(first_name="Cleo", last_name="Customer")


def book_url(listing):
    return reverse("listing_book", args=[listing.pk])


def book(customer, listing, start, note=""):
    return services.booking_request(customer=customer, listing_id=listing.pk, start=start, note=note)


# --- the picker ---------------------------------------------------------------------------------

def test_the_listing_page_loads_the_picker_and_links_to_it(client, listing):
    html = client.get(reverse("listing_page", args=[listing.pk])).content.decode()

    assert 'id="book-picker"' in html
    assert f'hx-get="{book_url(listing)}"' in html
    assert f'href="{book_url(listing)}"' in html  # without JavaScript
    assert "js/bookings.js" in html
    assert 'href="#book"' in html


def test_the_picker_shows_two_weeks_of_days_and_the_free_times_of_one(client, listing):
    day = next_weekday()

    response = client.get(f"{book_url(listing)}?day={day}", **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a partial for htmx
    assert html.count('<a class="day-tab') == 14
    assert 'aria-current="date"' in html
    assert f'value="{paris(day, 9).isoformat()}"' in html
    assert f'value="{paris(day, 16, 30).isoformat()}"' in html
    assert "16 times" in html
    assert "Europe/Paris" in html
    assert response["Vary"].count("HX-Request") == 1


def test_without_a_day_the_first_day_with_free_times_is_shown(client, listing):
    response = client.get(book_url(listing))  # the whole page, without htmx

    assert response.status_code == 200
    assert "<html" in response.content.decode()
    selected = response.context["picker"]["day"]
    assert selected["slots"]
    assert all(not day["slots"] for day in response.context["picker"]["days"]
               if day["date"] < selected["date"])


def test_a_customer_books_with_a_plain_post_and_sees_the_confirmation(client, listing, customer):
    client.force_login(customer)
    day = next_weekday()

    response = client.post(book_url(listing), {"start": paris(day, 10).isoformat(), "note": "Ring <twice>",
                                               "day": day.isoformat()})

    viewing = Viewing.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{book_url(listing)}?booked={viewing.pk}"
    assert (viewing.customer, viewing.start, viewing.status, viewing.note) == (
        customer, paris(day, 10), "requested", "Ring <twice>")
    page = client.get(response["Location"]).content.decode()
    assert "Your request is sent" in page
    assert "Requested" in page
    assert "10:00–10:30" in page
    assert 'href="/bookings/"' in page
    assert reverse("booking_calendar_page", args=[viewing.pk]) in page


def test_htmx_booking_answers_with_the_confirmation_in_place(client, listing, customer):
    services.listing_booking_mode_set(listing=listing, by=listing.agent, instant_booking=True)
    client.force_login(customer)
    day = next_weekday()

    response = client.post(book_url(listing), {"start": paris(day, 11, 30).isoformat()}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "Your viewing is booked" in html
    assert "Confirmed" in html
    assert Viewing.objects.get().status == "confirmed"


def test_a_taken_time_is_409_with_the_reason_and_fresh_times(client, listing, customer):
    day = next_weekday()
    book(UserFactory(), listing, paris(day, 10))
    client.force_login(customer)

    response = client.post(book_url(listing), {"start": paris(day, 10).isoformat(), "day": day.isoformat()},
                           **HTMX)

    assert response.status_code == 409
    html = response.content.decode()
    assert "The agent is not free at that time." in html
    assert f'value="{paris(day, 10).isoformat()}"' not in html  # no longer offered
    assert f'value="{paris(day, 11).isoformat()}"' in html
    assert Viewing.objects.count() == 1


@pytest.mark.parametrize(("start", "reason"), [
    (lambda day: paris(day, 10, 10), "pick one of the offered times"),
    (lambda day: paris(day, 20), "does not show homes at that time"),
    (lambda day: paris(day - dt.timedelta(days=30), 10), "that time has passed"),
])
def test_a_time_that_cannot_be_booked_is_400_with_the_reason(client, listing, customer, start, reason):
    client.force_login(customer)

    response = client.post(book_url(listing), {"start": start(next_weekday()).isoformat()})

    assert response.status_code == 400
    assert reason in response.content.decode().lower()
    assert not Viewing.objects.exists()


@pytest.mark.parametrize("start", ["", "tomorrow at ten", "2030-01-07T10:00:00"])  # the last has no offset
def test_a_start_that_is_not_an_instant_is_400(client, listing, customer, start):
    client.force_login(customer)

    response = client.post(book_url(listing), {"start": start})

    assert response.status_code == 400
    assert "Pick one of the offered times." in response.content.decode()
    assert not Viewing.objects.exists()


def test_a_note_too_long_is_400_and_keeps_what_was_typed(client, listing, customer):
    client.force_login(customer)

    response = client.post(book_url(listing), {"start": paris(next_weekday(), 10).isoformat(), "note": "x" * 1001})

    assert response.status_code == 400
    html = response.content.decode()
    assert "The note can be at most 1,000 characters." in html
    assert "x" * 1001 in html
    assert not Viewing.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in_and_back_to_the_day(client, listing):
    day = next_weekday()
    html = client.get(f"{book_url(listing)}?day={day}", **HTMX).content.decode()
    assert "you will sign in first" in html

    response = client.post(book_url(listing), {"start": paris(day, 10).isoformat(), "day": day.isoformat()})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert unquote(response["Location"]).endswith(f"next=/listings/{listing.pk}/?day={day}#book")
    htmx = client.post(book_url(listing), {"start": paris(day, 10).isoformat(), "day": day.isoformat()}, **HTMX)
    assert htmx.status_code == 204
    assert htmx["HX-Redirect"].startswith("/accounts/login/")
    assert not Viewing.objects.exists()


def test_the_listing_page_forwards_the_chosen_day_to_the_picker(client, listing):
    day = next_weekday()
    html = client.get(reverse("listing_page", args=[listing.pk]) + f"?day={day}").content.decode()
    assert f'hx-get="{book_url(listing)}?day={day}"' in html


def test_the_listings_agent_gets_a_link_to_their_agenda_instead(client, listing):
    client.force_login(listing.agent)

    page = client.get(reverse("listing_page", args=[listing.pk])).content.decode()
    picker = client.get(book_url(listing), **HTMX).content.decode()

    assert 'href="/bookings/"' in page
    assert "/admin/bookings/viewing/?agenda=week" in picker
    assert "slot-list" not in picker


def test_an_agent_booking_their_own_listing_by_hand_is_refused(client, listing):
    client.force_login(listing.agent)
    response = client.post(book_url(listing), {"start": paris(next_weekday(), 10).isoformat()})
    assert response.status_code == 403
    assert not Viewing.objects.exists()


def test_a_home_not_on_the_market_offers_no_times(client, agent):
    sold = ListingFactory(agent=agent, status="sold")
    html = client.get(book_url(sold), **HTMX).content.decode()
    assert "not open for viewings" in html
    assert client.get(book_url(ListingFactory(status="draft"))).status_code == 404


# --- /bookings/ -----------------------------------------------------------------------------------

def test_the_bookings_page_needs_signing_in(client):
    response = client.get("/bookings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_bookings_page_lists_upcoming_and_past_in_the_homes_time(client, listing, customer):
    day = next_weekday()
    upcoming = book(customer, listing, paris(day, 14), note="<script>alert(1)</script>")
    cancelled = book(customer, listing, paris(day, 15))
    services.booking_cancel(viewing_id=cancelled.pk, by=customer, reason="Found another")
    ViewingFactory(listing=ListingFactory(title="Someone else's viewing"))
    client.force_login(customer)

    response = client.get("/bookings/")

    assert response.status_code == 200
    assert [v.pk for v in response.context["upcoming"]] == [upcoming.pk]
    assert [v.pk for v in response.context["past"]] == [cancelled.pk]
    html = response.content.decode()
    assert "Canal flat" in html
    assert "14:00–14:30" in html
    assert "Europe/Paris" in html
    assert "Someone else" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "Found another" in html
    assert "With Ada Agent" in html


def test_an_agent_sees_their_viewings_as_agent_and_confirms_or_declines(client, listing, customer):
    day = next_weekday()
    first, second = book(customer, listing, paris(day, 10)), book(UserFactory(), listing, paris(day, 11))
    client.force_login(listing.agent)

    html = client.get("/bookings/").content.decode()
    assert "You show the home to Cleo Customer" in html

    response = client.post(reverse("booking_confirm", args=[first.pk]))
    assert response.status_code == 302
    response = client.post(reverse("booking_decline", args=[second.pk]), {"reason": "Away"})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status, second.cancel_reason) == ("confirmed", "declined", "Away")
    assert "The viewing is confirmed." in client.get("/bookings/").content.decode()


def test_a_customer_cannot_confirm_their_own_request(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    client.force_login(customer)

    response = client.post(reverse("booking_confirm", args=[viewing.pk]))

    assert response.status_code == 403
    assert "Only the agent can confirm" in response.content.decode()
    viewing.refresh_from_db()
    assert viewing.status == "requested"


def test_cancel_with_a_reason(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    client.force_login(customer)

    response = client.post(reverse("booking_cancel", args=[viewing.pk]), {"reason": "Changed my mind"})

    assert response.status_code == 302
    viewing.refresh_from_db()
    assert (viewing.status, viewing.cancel_reason) == ("cancelled", "Changed my mind")
    page = client.get(response["Location"]).content.decode()
    assert "The viewing is cancelled." in page


def test_cancelling_twice_is_a_409_with_the_message(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    services.booking_cancel(viewing_id=viewing.pk, by=customer)
    client.force_login(customer)

    response = client.post(reverse("booking_cancel", args=[viewing.pk]))

    assert response.status_code == 409
    assert "A cancelled viewing cannot be cancelled." in response.content.decode()


def test_others_viewings_are_404_for_every_action(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    client.force_login(UserFactory())

    for name in ("booking_cancel", "booking_confirm", "booking_decline", "booking_reschedule"):
        assert client.post(reverse(name, args=[viewing.pk])).status_code == 404, name
    assert client.get(reverse("booking_reschedule", args=[viewing.pk])).status_code == 404
    assert client.get(reverse("booking_calendar_page", args=[viewing.pk])).status_code == 404
    viewing.refresh_from_db()
    assert viewing.status == "requested"


def test_actions_are_posts_with_csrf(listing, customer):
    from django.test import Client

    viewing = book(customer, listing, paris(next_weekday(), 10))
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)

    assert client.get(reverse("booking_cancel", args=[viewing.pk])).status_code == 405
    assert client.post(reverse("booking_cancel", args=[viewing.pk])).status_code == 403
    assert client.post(book_url(listing), {"start": paris(next_weekday(), 11).isoformat()}).status_code == 403
    viewing.refresh_from_db()
    assert viewing.status == "requested"


# --- reschedule -----------------------------------------------------------------------------------

def test_reschedule_keeps_the_id_and_moves_the_time(client, listing, customer):
    day = next_weekday()
    viewing = book(customer, listing, paris(day, 10))
    client.force_login(customer)

    page = client.get(reverse("booking_reschedule", args=[viewing.pk]) + f"?day={day}")
    assert page.status_code == 200
    assert f'value="{paris(day, 15).isoformat()}"' in page.content.decode()

    response = client.post(reverse("booking_reschedule", args=[viewing.pk]), {"start": paris(day, 15).isoformat()})

    assert response.status_code == 302
    assert response["Location"] == "/bookings/"
    viewing.refresh_from_db()
    assert viewing.start == paris(day, 15)
    assert Viewing.objects.count() == 1


def test_reschedule_to_a_taken_time_is_409_and_keeps_the_old_time(client, listing, customer):
    day = next_weekday()
    viewing = book(customer, listing, paris(day, 10))
    book(UserFactory(), listing, paris(day, 15))
    client.force_login(customer)

    response = client.post(reverse("booking_reschedule", args=[viewing.pk]),
                           {"start": paris(day, 15).isoformat(), "day": day.isoformat()}, **HTMX)

    assert response.status_code == 409
    assert "The agent is not free at that time." in response.content.decode()
    viewing.refresh_from_db()
    assert viewing.start == paris(day, 10)


def test_htmx_reschedule_redirects_to_the_list(client, listing, customer):
    day = next_weekday()
    viewing = book(customer, listing, paris(day, 10))
    client.force_login(customer)

    response = client.post(reverse("booking_reschedule", args=[viewing.pk]), {"start": paris(day, 13).isoformat()},
                           **HTMX)

    assert response.status_code == 204
    assert response["HX-Redirect"] == "/bookings/"


def test_only_the_customer_reschedules(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    client.force_login(listing.agent)
    assert client.get(reverse("booking_reschedule", args=[viewing.pk])).status_code == 403


def test_a_cancelled_viewing_cannot_be_rescheduled(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    services.booking_cancel(viewing_id=viewing.pk, by=customer)
    client.force_login(customer)

    response = client.get(reverse("booking_reschedule", args=[viewing.pk]), follow=True)

    assert response.redirect_chain[-1][0] == "/bookings/"
    assert "can no longer be rescheduled" in response.content.decode()


# --- add to calendar ------------------------------------------------------------------------------

def test_the_calendar_file_for_both_parties(client, listing, customer):
    day = next_weekday()
    viewing = book(customer, listing, paris(day, 10))
    for person in (customer, listing.agent):
        client.force_login(person)

        response = client.get(reverse("booking_calendar_page", args=[viewing.pk]))

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/calendar")
        assert "attachment" in response["Content-Disposition"]
        (event,) = Calendar.from_ical(response.content).walk("VEVENT")
        assert event.decoded("dtstart") == paris(day, 10)
        assert str(event["uid"]).startswith(f"viewing-{viewing.pk}@")


def test_the_calendar_file_needs_signing_in(client, listing, customer):
    viewing = book(customer, listing, paris(next_weekday(), 10))
    response = client.get(reverse("booking_calendar_page", args=[viewing.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
