"""An agent places a new listing on the admin's map in Chromium: Leaflet from the site's own static
files, no console error, no CSP violation, nothing fetched from elsewhere but map tiles.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
"""

import io
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from PIL import Image
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, AgentFactory
from listings.models import Listing

pytestmark = pytest.mark.e2e


def _png():
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (220, 230, 220)).save(buffer, "PNG")
    return buffer.getvalue()


TILE = _png()


@pytest.fixture
def browser_errors(page):
    """Console errors, uncaught exceptions and CSP violations the page reports."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Injected by the browser itself, so the page's CSP does not apply to this listener.
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")
    return errors


@pytest.fixture
def outside_requests(page, live_asgi_server):
    """Keep the browser offline: the site is served, map tiles are answered with a blank tile
    (map data, the one thing the CSP lets the page fetch from elsewhere), anything else is
    refused and recorded."""
    tiles = urlsplit(settings.MAP_TILE_URL)
    tile_origin = f"{tiles.scheme}://{tiles.netloc}/"
    refused = []

    def handle(route):
        url = route.request.url
        if url.startswith(live_asgi_server):
            route.continue_()
        elif url.startswith(tile_origin):
            route.fulfill(status=200, content_type="image/png", body=TILE)
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", handle)
    return refused


def test_agent_places_a_new_listing_on_the_map(page, live_asgi_server, browser_errors, outside_requests):
    agent = AgentFactory()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(agent.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{live_asgi_server}/")

    page.goto(f"{live_asgi_server}/admin/listings/listing/add/")

    map_ = page.locator("#id_location-map.leaflet-container")
    expect(map_).to_be_visible()
    expect(map_.locator("img.leaflet-tile-loaded").first).to_be_visible()

    page.locator(".leaflet-draw-draw-marker").click()
    map_.click()
    expect(map_.locator(".leaflet-marker-icon")).to_have_count(1)
    page.locator("#id_title").fill("Cottage placed on the map")
    page.locator("#id_listing_type").select_option("sale")
    page.locator("#id_property_type").select_option("house")
    page.locator("#id_price").fill("250000")
    page.locator("#id_city").fill("Brest")
    page.locator("#id_country").fill("FR")
    page.locator("input[name='_save']").click()

    expect(page.locator(".messagelist .success")).to_contain_text("Cottage placed on the map")
    listing = Listing.objects.get(title="Cottage placed on the map")
    assert (listing.agent_id, listing.status) == (agent.pk, "draft")
    assert listing.location is not None and listing.time_zone
    assert browser_errors == []
    assert outside_requests == []
