"""Booking a viewing in Chromium, against the ASGI site: the listing page's slot picker, the
confirmation, /bookings/, rescheduling and cancelling; an agent confirming a request in the admin.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory
from bookings.models import Viewing
from bookings.tests.factories import ViewingFactory
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")


def next_weekday(days_ahead=2):
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("details.menu")).to_be_visible()


@pytest.fixture
def listing():
    agent = AgentFactory(time_zone="Europe/Paris", first_name="Ada", last_name="Agent")
    return ListingFactory(agent=agent, title="Canal house with a garden")


def test_a_customer_books_a_slot_from_the_listing_page_then_cancels_it(page, live_asgi_server, listing, tiles,
                                                                        console_errors):
    customer = UserFactory()
    day = next_weekday()
    sign_in(page, live_asgi_server, customer.email)

    page.goto(f"{live_asgi_server}/listings/{listing.pk}/")
    panel = page.locator("#book")
    expect(panel.get_by_role("navigation", name="Days").get_by_role("link")).to_have_count(14)
    page.evaluate("() => { window.notReloaded = true; }")
    panel.locator(f'[data-day="{day.isoformat()}"]').click()
    expect(panel.locator(f'[data-day="{day.isoformat()}"]')).to_have_attribute("aria-current", "date")
    expect(panel.get_by_role("heading", level=3)).to_contain_text(day.strftime("%-d"))
    panel.get_by_text("Add a note for the agent").click()
    panel.get_by_label("Note for the agent (optional)").fill("I'll come by bike")
    panel.get_by_role("button", name=re.compile(r"^Book 10:00 ")).click()

    confirmation = panel.get_by_role("status")
    expect(confirmation).to_contain_text("Your request is sent")
    expect(confirmation.locator("[data-booking-status]")).to_have_text("Requested")
    expect(confirmation).to_contain_text("10:00–10:30")
    assert page.evaluate("() => window.notReloaded") is True  # htmx, in place
    viewing = Viewing.objects.get()
    assert (viewing.customer_id, viewing.status, viewing.note) == (customer.pk, "requested", "I'll come by bike")
    assert viewing.start == dt.datetime.combine(day, dt.time(10), tzinfo=PARIS)

    confirmation.get_by_role("link", name="See your viewings").click()
    expect(page).to_have_url(f"{live_asgi_server}/bookings/")
    upcoming = page.get_by_role("region", name="Upcoming")
    card = upcoming.locator(f'[data-viewing-id="{viewing.pk}"]')
    expect(card).to_contain_text("Canal house with a garden")
    expect(card).to_contain_text("10:00–10:30")
    expect(card).to_contain_text("Europe/Paris")
    expect(card.get_by_role("link", name=re.compile("^Add to calendar"))).to_have_attribute(
        "href", f"/bookings/{viewing.pk}/calendar.ics")

    card.locator("summary").click()
    card.get_by_label("Reason (optional)").fill("Found another home")
    card.get_by_role("button", name="Cancel the viewing").click()

    expect(page.get_by_role("status").first).to_contain_text("The viewing is cancelled.")
    expect(page.get_by_role("region", name="Past and cancelled").locator(f'[data-viewing-id="{viewing.pk}"]')
           ).to_contain_text("Cancelled")
    viewing.refresh_from_db()
    assert (viewing.status, viewing.cancel_reason) == ("cancelled", "Found another home")
    assert console_errors == []


def test_a_taken_time_shows_the_reason_in_the_picker(page, live_asgi_server, listing, tiles, console_errors):
    customer = UserFactory()
    day = next_weekday()
    sign_in(page, live_asgi_server, customer.email)
    page.goto(f"{live_asgi_server}/listings/{listing.pk}/?day={day.isoformat()}")
    panel = page.locator("#book")
    book_ten = panel.get_by_role("button", name=re.compile(r"^Book 10:00 "))
    expect(book_ten).to_be_visible()
    # Someone else takes 10:00 meanwhile.
    ViewingFactory(listing=listing, start=dt.datetime.combine(day, dt.time(10), tzinfo=PARIS))

    book_ten.click()

    expect(panel.get_by_role("alert")).to_have_text("The agent is not free at that time.")
    expect(panel.get_by_role("button", name=re.compile(r"^Book 10:00 "))).to_have_count(0)
    assert Viewing.objects.count() == 1
    # The browser reports the 409 response itself; nothing else may fail.
    assert [e for e in console_errors if "409" not in e] == []


def test_anonymous_visitors_sign_in_and_come_back_to_the_picker(page, live_asgi_server, listing, tiles,
                                                               console_errors):
    customer = UserFactory()
    day = next_weekday()
    page.goto(f"{live_asgi_server}/listings/{listing.pk}/")
    panel = page.locator("#book")
    panel.locator(f'[data-day="{day.isoformat()}"]').click()
    expect(panel.locator(f'[data-day="{day.isoformat()}"]')).to_have_attribute("aria-current", "date")
    panel.get_by_role("button", name=re.compile(r"^Book 10:00 ")).click()

    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill(customer.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    expect(page).to_have_url(f"{live_asgi_server}/listings/{listing.pk}/?day={day.isoformat()}#book")
    expect(panel.locator(f'[data-day="{day.isoformat()}"]')).to_have_attribute("aria-current", "date")
    panel.get_by_role("button", name=re.compile(r"^Book 10:00 ")).click()
    expect(panel.get_by_role("status")).to_contain_text("Your request is sent")
    assert Viewing.objects.get().customer_id == customer.pk
    assert console_errors == []


def test_a_customer_reschedules_from_the_bookings_page(page, live_asgi_server, listing, console_errors):
    customer = UserFactory()
    day = next_weekday()
    viewing = ViewingFactory(listing=listing, customer=customer,
                             start=dt.datetime.combine(day, dt.time(10), tzinfo=PARIS))
    sign_in(page, live_asgi_server, customer.email)

    page.goto(f"{live_asgi_server}/bookings/")
    page.locator(f'[data-viewing-id="{viewing.pk}"]').get_by_role("link", name=re.compile("^Reschedule")).click()
    picker = page.locator("#reschedule-picker")
    picker.locator(f'[data-day="{day.isoformat()}"]').click()
    expect(picker.locator(f'[data-day="{day.isoformat()}"]')).to_have_attribute("aria-current", "date")
    picker.get_by_role("button", name=re.compile(r"^Move to 15:00 ")).click()

    expect(page).to_have_url(f"{live_asgi_server}/bookings/")
    expect(page.get_by_role("status").first).to_contain_text("The viewing is moved to its new time.")
    expect(page.locator(f'[data-viewing-id="{viewing.pk}"]')).to_contain_text("15:00–15:30")
    viewing.refresh_from_db()
    assert viewing.start == dt.datetime.combine(day, dt.time(15), tzinfo=PARIS)
    assert Viewing.objects.count() == 1
    assert console_errors == []


def test_an_agent_confirms_a_request_in_the_admin(page, live_asgi_server, listing, console_errors):
    viewing = ViewingFactory(listing=listing, start=dt.datetime.combine(next_weekday(), dt.time(10), tzinfo=PARIS))
    sign_in(page, live_asgi_server, listing.agent.email)
    # The admin's pages name no icon, so the browser asks for /favicon.ico, which the site lacks.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))

    page.goto(f"{live_asgi_server}/admin/bookings/viewing/?agenda=upcoming")
    row = page.locator("#result_list tbody tr").filter(has_text="Canal house with a garden")
    expect(row).to_have_count(1)
    row.locator("input[name=_selected_action]").check()
    page.locator("select[name=action]").select_option("confirm")
    page.get_by_role("button", name="Go").click()

    expect(page.locator(".messagelist")).to_contain_text("1 viewing confirmed.")
    viewing.refresh_from_db()
    assert viewing.status == "confirmed"
    assert console_errors == []
