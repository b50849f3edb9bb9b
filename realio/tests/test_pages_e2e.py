"""The site frame and the home page in Chromium, served over HTTP and websockets by the live
ASGI server. Run in their own process: `pytest -m e2e`."""

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 740}


def sign_in(page, base_url, user):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("details.menu")).to_be_visible()


def test_home_search_form_sends_the_query_to_the_search_page(page, live_asgi_server):
    page.goto(f"{live_asgi_server}/")
    hero = page.get_by_role("search", name="Search homes")

    hero.get_by_text("Rent", exact=True).click()
    hero.get_by_label("Where or what").fill("Lyon")
    hero.get_by_label("Property type").select_option("apartment")
    hero.get_by_label("Minimum price").fill("500")
    hero.get_by_label("Maximum price").fill("1500")
    hero.get_by_role("button", name="Search homes").click()

    page.wait_for_url("**/search/?*")
    url = urlsplit(page.url)
    assert url.path == "/search/"
    assert parse_qs(url.query) == {"listing_type": ["rent"], "q": ["Lyon"], "property_type": ["apartment"],
                                   "min_price": ["500"], "max_price": ["1500"]}


def test_skip_link_is_the_first_stop_and_moves_to_the_content(page, live_asgi_server):
    page.goto(f"{live_asgi_server}/")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")

    expect(page.locator("main#main")).to_be_focused()


@pytest.mark.parametrize("path", ["/", "/accounts/signup/", "/accounts/login/"])
def test_pages_fit_a_phone_screen(page, live_asgi_server, path):
    page.set_viewport_size(PHONE)

    page.goto(f"{live_asgi_server}{path}")

    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.get_by_role("search").first).to_be_visible()


def test_user_menu_opens_and_closes_with_the_keyboard(page, live_asgi_server):
    sign_in(page, live_asgi_server, UserFactory(first_name="Mary"))
    menu = page.locator("details.menu")

    menu.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Favorites")).to_be_visible()
    page.keyboard.press("Escape")

    expect(page.get_by_role("link", name="Favorites")).to_be_hidden()
    expect(menu.locator("summary")).to_be_focused()


def test_the_live_server_serves_websockets_with_the_session(page, live_asgi_server):
    user = UserFactory()
    sign_in(page, live_asgi_server, user)

    message = page.evaluate("""() => new Promise((resolve, reject) => {
        const socket = new WebSocket(`ws://${location.host}/ws/whoami/`);
        socket.onmessage = (event) => { resolve(JSON.parse(event.data)); socket.close(); };
        socket.onclose = (event) => reject(new Error(`closed ${event.code}`));
        setTimeout(() => reject(new Error("no message")), 5000);
    })""")

    assert message == {"type": "whoami", "user_id": user.pk, "role": "customer"}
