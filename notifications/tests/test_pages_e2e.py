"""The header's unread badge changes live when a notification arrives, and "Mark all read" on
/notifications/ clears it — in Chromium against the ASGI site, with the real broker and worker.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
"""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory
from listings import services as listing_services
from listings.models import Favorite
from listings.tests.factories import ListingFactory

pytestmark = [pytest.mark.e2e, pytest.mark.celery]


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("details.menu")).to_be_visible()


def test_the_badge_updates_live_and_mark_all_read_clears_it(page, live_asgi_server, celery_worker, console_errors):
    # given a customer who favorited a home, on their notifications page with nothing unread
    agent = AgentFactory()
    home = ListingFactory(agent=agent, title="Canal house", price=Decimal("400000"))
    fan = UserFactory(email="fan@example.com")
    Favorite.objects.create(user=fan, listing=home)
    sign_in(page, live_asgi_server, fan.email)
    page.goto(f"{live_asgi_server}/notifications/")
    badge = page.locator(".menu__toggle [data-unread-count]")
    expect(badge).to_be_hidden()
    expect(page.get_by_text("No notifications yet.")).to_be_visible()
    expect(page.locator("html[data-notifications-live]")).to_have_count(1)  # the socket is open

    # when the agent cuts the price (the worker turns the event into a notification)
    listing_services.listing_update(listing=home, by=agent, price=Decimal("375000"))

    # then, without a reload, the badge shows 1 and the notification tops the list
    expect(badge).to_have_text("1 unread notifications", timeout=15000)
    expect(badge).to_be_visible()
    item = page.locator("[data-notification-list] li").first
    expect(item).to_contain_text("Price drop: Canal house")
    expect(page.locator("[data-unread-summary]")).to_have_text("1 unread")

    # when they mark all read (a plain form post)
    page.get_by_role("button", name="Mark all read").click()

    # then the badge is gone and the notification is read
    expect(page.get_by_text("All notifications are marked read.")).to_be_visible()
    expect(page.locator(".menu__toggle [data-unread-count]")).to_be_hidden()
    expect(page.locator(".notification--unread")).to_have_count(0)
    expect(page.locator(".notification")).to_have_count(1)
    assert console_errors == []
