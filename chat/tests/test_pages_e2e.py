"""A customer and an agent, each in their own browser context, talk live on the ASGI site.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.e2e


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("details.menu")).to_be_visible()


def watch_errors(page, errors):
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))


def answer_map_tiles(page):
    """The listing page's map asks for tiles (the machine is offline): a plain tile each."""
    from urllib.parse import urlsplit

    from django.conf import settings

    from realio.live_server import _plain_tile

    parts = urlsplit(settings.MAP_TILE_URL)
    origin = re.escape(f"{parts.scheme}://{parts.netloc}/").replace(re.escape("{s}"), "[^./]+")
    body = _plain_tile()
    page.route(re.compile(f"^{origin}"), lambda route: route.fulfill(status=200, content_type="image/png",
                                                                      body=body))


def test_a_customer_and_an_agent_talk_live(browser, live_asgi_server):
    agent = AgentFactory(first_name="Alice", last_name="Agent")
    customer = UserFactory(first_name="Carl", last_name="Customer")
    listing = ListingFactory(agent=agent, title="Canal house with a garden")
    errors = []
    customer_page = browser.new_context().new_page()
    agent_page = browser.new_context().new_page()
    for page in (customer_page, agent_page):
        watch_errors(page, errors)
        answer_map_tiles(page)

    # The customer contacts the agent from the listing page and lands in the conversation.
    sign_in(customer_page, live_asgi_server, customer.email)
    customer_page.goto(f"{live_asgi_server}/listings/{listing.pk}/")
    customer_page.get_by_role("link", name="Contact the agent").click()
    expect(customer_page).to_have_url(re.compile(r"/messages/\d+/$"))
    expect(customer_page.locator("[data-connection]")).to_have_text("Connected")
    customer_page.get_by_label("Your message").fill('Is the garden sunny? <b>bold</b> https://example.com/plan.')
    customer_page.get_by_role("button", name="Send").click()
    mine = customer_page.locator(".chat-message[data-id]")
    expect(mine).to_have_count(1)
    expect(mine.first).to_contain_text("<b>bold</b>")  # shown as text, never as markup

    # The agent finds it in the inbox, unread, and opens it.
    sign_in(agent_page, live_asgi_server, agent.email)
    agent_page.goto(f"{live_asgi_server}/messages/")
    row = agent_page.locator(".inbox__item")
    expect(row).to_contain_text("Canal house with a garden")
    expect(row).to_contain_text("1 unread")
    row.get_by_role("link").click()
    expect(agent_page.locator("[data-connection]")).to_have_text("Connected")
    received = agent_page.locator(".chat-message[data-id]").first
    expect(received).to_contain_text("Is the garden sunny? <b>bold</b>")
    link = received.get_by_role("link", name="https://example.com/plan")
    expect(link).to_have_attribute("href", "https://example.com/plan")
    expect(received.locator("b")).to_have_count(0)

    # Presence, read receipt and typing reach the customer without a reload.
    expect(customer_page.locator("[data-presence]")).to_have_text("online")
    expect(customer_page.locator(".chat-message--mine [data-status]").last).to_have_text("Seen")
    agent_page.get_by_label("Your message").press_sequentially("Yes, ")
    expect(customer_page.locator("[data-typing]")).to_be_visible()

    # The agent's answer appears live; the customer's reply reaches the agent live too.
    agent_page.get_by_label("Your message").fill("Yes, south-facing. Shall we book a visit?")
    agent_page.get_by_label("Your message").press("Enter")
    answer = customer_page.locator(".chat-message[data-id]").nth(1)
    expect(answer).to_contain_text("Yes, south-facing. Shall we book a visit?")
    expect(customer_page.locator("[data-typing]")).to_be_hidden()
    customer_page.get_by_label("Your message").fill("Saturday morning?")
    customer_page.get_by_role("button", name="Send").click()
    expect(agent_page.locator(".chat-message[data-id]").nth(2)).to_contain_text("Saturday morning?")
    expect(agent_page.locator(".chat-message--mine [data-status]").last).to_have_text("Seen")

    # After a reload the history is the same, in order, from the server.
    customer_page.reload()
    expect(customer_page.locator(".chat-message[data-id]")).to_have_count(3)
    expect(customer_page.locator(".chat-message[data-id]").nth(2)).to_contain_text("Saturday morning?")

    # The agent leaves: the customer sees it.
    agent_page.context.close()
    expect(customer_page.locator("[data-presence]")).to_have_text("offline")
    customer_page.context.close()
    assert errors == []
