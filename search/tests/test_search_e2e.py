"""The search page in Chromium, against the ASGI site: the list and the map's markers show the
same homes as the map moves, filters change and areas are drawn; the address bar holds the
query and the back button restores it; the plain form works with JavaScript off.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
Map tiles are answered by the test (the machine is offline).
"""

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.gis.geos import Point, Polygon
from playwright.sync_api import expect

from listings.tests.factories import ListingFactory
from search.services import vocabulary_refresh

pytestmark = pytest.mark.e2e

PARIS = (2.3470, 48.8590)
LYON = (4.8357, 45.7640)
CARDS = "#search-results [data-listing-id]"
MARKERS = "#search-map .search-marker[data-listing-id]"


@pytest.fixture
def homes():
    """Seven flats in Paris and five houses in Lyon, spread over a few streets (prices rising
    with the ids)."""
    paris = [ListingFactory(title=f"Paris flat {n}", city="Paris", price=Decimal(300000 + n * 10000),
                            location=Point(PARIS[0] + (n % 4) * 0.008, PARIS[1] + (n // 4) * 0.006, srid=4326))
             for n in range(7)]
    lyon = [ListingFactory(title=f"Lyon house {n}", city="Lyon", property_type="house",
                           price=Decimal(250000 + n * 10000),
                           location=Point(LYON[0] + (n % 3) * 0.01, LYON[1] + (n // 3) * 0.008, srid=4326))
            for n in range(5)]
    vocabulary_refresh()
    return {"paris": {home.pk for home in paris}, "lyon": {home.pk for home in lyon}}


def ids(page, selector):
    return page.eval_on_selector_all(selector, "nodes => nodes.map(n => Number(n.dataset.listingId))")


def shown(page):
    """The homes listed and the homes on the map, once both agree (sorted lists of ids)."""
    page.wait_for_function(
        """([cards, markers]) => {
            const ids = s => Array.from(document.querySelectorAll(s), n => n.dataset.listingId).sort().join();
            return document.querySelectorAll(cards).length > 0 && ids(cards) === ids(markers);
        }""",
        arg=[CARDS, MARKERS],
    )
    return sorted(ids(page, CARDS)), sorted(ids(page, MARKERS))


def query_of(url):
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


def wait_until_settled(page):
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_list_and_markers_follow_the_map_and_the_back_button(page, live_asgi_server, homes, tiles, console_errors):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_asgi_server}/search/")
    page.evaluate("() => { window.notReloaded = true; }")

    cards, markers = shown(page)
    assert cards == markers == sorted(homes["paris"] | homes["lyon"])
    expect(page.locator("#search-results-title")).to_have_text("12 homes")

    # Move the map to Lyon: the visible box is searched, list and markers change together.
    page.evaluate(f"() => window.realioSearchMap.setView([{LYON[1] + 0.004}, {LYON[0] + 0.01}], 13)")
    expect(page).to_have_url(re.compile(r"[?&]bbox="))
    expect(page.locator("#search-results-title")).to_have_text("5 homes")
    cards, markers = shown(page)
    assert cards == markers == sorted(homes["lyon"])
    first_box = page.url
    west, south, east, north = map(float, query_of(page.url)["bbox"].split(","))
    assert west < LYON[0] < east and south < LYON[1] < north
    expect(page.locator("label[for='search-property_type-apartment']")).to_contain_text("0")
    assert page.evaluate("() => window.notReloaded") is True  # swapped in place, no page load

    # A marker opens a popup linking to its home. Near the map's top edge the popup moves the map
    # to show itself whole: that move is not a search.
    first = ids(page, CARDS)[0]
    page.evaluate(
        """id => {
            const map = window.realioSearchMap;
            const marker = document.querySelector(`#search-map .search-marker[data-listing-id="${id}"]`);
            const top = marker.getBoundingClientRect().top - map.getContainer().getBoundingClientRect().top;
            map.panBy([0, top - 40], {animate: false});
        }""",
        first,
    )
    wait_until_settled(page)
    page.wait_for_timeout(600)  # the move's search, if it had started, would be under way
    wait_until_settled(page)
    assert first in ids(page, MARKERS)
    url, centre = page.url, page.evaluate("() => window.realioSearchMap.getCenter().lat")
    page.locator(f"#search-map .search-marker[data-listing-id='{first}'] .search-marker__label").click()
    popup = page.locator("#search-map .leaflet-popup")
    expect(popup.get_by_role("link")).to_have_attribute("href", f"/listings/{first}/")
    expect(popup).to_contain_text(page.locator(f"{CARDS}[data-listing-id='{first}'] h3").inner_text())
    page.wait_for_timeout(800)
    assert page.evaluate("() => window.realioSearchMap.getCenter().lat") != centre  # the popup moved the map
    assert page.url == url
    expect(popup).to_be_visible()

    # Sorting orders list and markers alike; the address keeps the box and adds the sort.
    page.select_option("#search-sort-select", "price_desc")
    expect(page).to_have_url(re.compile(r"sort=price_desc"))
    assert query_of(page.url)["bbox"]
    wait_until_settled(page)
    assert ids(page, CARDS) == ids(page, MARKERS)  # same homes, in the list's order
    assert ids(page, CARDS) == sorted(homes["lyon"], reverse=True)  # the factory raised prices as ids rose

    # Back: the Lyon box in the list's default order (the box after the last move, then the
    # first one); back again: every home.
    page.go_back()
    expect(page).to_have_url(url)
    expect(page.locator("#search-results-title")).to_have_text("5 homes")
    expect(page.locator("#search-sort-select")).to_have_value("")
    page.go_back()
    expect(page).to_have_url(first_box)
    expect(page.locator("#search-results-title")).to_have_text("5 homes")
    page.go_back()
    expect(page).to_have_url(f"{live_asgi_server}/search/")
    expect(page.locator("#search-results-title")).to_have_text("12 homes")
    cards, markers = shown(page)
    assert cards == markers == sorted(homes["paris"] | homes["lyon"])
    assert page.evaluate("() => window.notReloaded") is True
    # Restoring the view did not count as the person moving the map.
    page.wait_for_timeout(800)
    expect(page).to_have_url(f"{live_asgi_server}/search/")

    assert console_errors == []


def test_filters_and_pages_update_list_and_map_together(page, live_asgi_server, homes, tiles, console_errors):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_asgi_server}/search/?page_size=5")
    page.evaluate("() => { window.notReloaded = true; }")

    page.locator("#search-property_type-apartment").check()
    expect(page).to_have_url(re.compile(r"property_type=apartment"))
    expect(page.locator("#search-results-title")).to_have_text("7 homes")
    cards, markers = shown(page)
    assert len(cards) == 5 and cards == markers and set(cards) <= homes["paris"]
    # The other filters' counts follow: with apartments only, nothing is for rent.
    expect(page.locator("label[for='search-listing_type-sale']")).to_contain_text("7")

    page.get_by_role("navigation", name="Result pages").get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    assert query_of(page.url)["property_type"] == "apartment" and query_of(page.url)["page_size"] == "5"
    wait_until_settled(page)
    cards, markers = shown(page)
    assert len(cards) == 2 and cards == markers and set(cards) <= homes["paris"]
    assert page.evaluate("() => window.notReloaded") is True

    assert console_errors == []


def test_draw_an_area_to_search(page, live_asgi_server, homes, tiles, console_errors):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_asgi_server}/search/")
    shown(page)
    page.evaluate(f"() => window.realioSearchMap.setView([{LYON[1] + 0.004}, {LYON[0] + 0.01}], 14)")
    expect(page.locator("#search-results-title")).to_have_text("5 homes")
    wait_until_settled(page)

    # A triangle around the homes of the first row in Lyon (west of the others' column).
    corners = page.evaluate(
        f"""() => {{
            const map = window.realioSearchMap;
            return [[{LYON[1] - 0.003}, {LYON[0] - 0.008}], [{LYON[1] - 0.003}, {LYON[0] + 0.018}],
                    [{LYON[1] + 0.005}, {LYON[0] + 0.005}]]
                .map(p => map.latLngToContainerPoint(p)).map(p => [p.x, p.y]);
        }}"""
    )
    page.get_by_role("button", name="Draw an area").click()
    expect(page.get_by_role("button", name="Finish")).to_be_disabled()
    box = page.locator("#search-map").bounding_box()
    for x, y in corners:
        page.mouse.click(box["x"] + x, box["y"] + y)
    page.get_by_role("button", name="Finish").click()

    expect(page).to_have_url(re.compile(r"[?&]polygon="))
    params = query_of(page.url)
    assert "bbox" not in params
    wait_until_settled(page)
    ring = [tuple(map(float, pair.split(","))) for pair in params["polygon"].split(";")]
    area = Polygon([*ring, ring[0]] if ring[0] != ring[-1] else ring, srid=4326)
    cards, markers = shown(page)
    assert cards == markers
    located = {home.pk: home.location for home in ListingFactory._meta.model.objects.filter(pk__in=cards)}
    assert cards and all(area.contains(located[pk]) for pk in cards)
    expected = {pk for pk in homes["lyon"] if area.contains(ListingFactory._meta.model.objects.get(pk=pk).location)}
    assert set(cards) == expected and len(expected) < 5
    expect(page.locator("#search-map path.search-map__area")).to_have_count(1)
    expect(page.locator("#search-area")).to_contain_text("Within the area drawn on the map")

    # Clear: the area goes, the visible box is searched again.
    page.get_by_role("button", name="Clear").click()
    expect(page).not_to_have_url(re.compile(r"polygon="))
    expect(page.locator("#search-results-title")).to_have_text("5 homes")
    expect(page.locator("#search-map path.search-map__area")).to_have_count(0)

    # Drawn again, closed by a double-click on the last corner.
    page.get_by_role("button", name="Draw an area").click()
    page.mouse.click(box["x"] + corners[0][0], box["y"] + corners[0][1])
    page.mouse.click(box["x"] + corners[1][0], box["y"] + corners[1][1])
    page.mouse.dblclick(box["x"] + corners[2][0], box["y"] + corners[2][1])
    expect(page).to_have_url(re.compile(r"[?&]polygon="))
    assert len(query_of(page.url)["polygon"].split(";")) == 4  # three corners, closed
    expect(page.locator("#search-results-title")).to_have_text(f"{len(expected)} homes")
    expect(page.get_by_role("button", name="Draw an area")).to_be_visible()

    # With "search as I move" off, moving the map waits for "Search this area".
    wait_until_settled(page)
    page.get_by_label("Search as I move the map").uncheck()
    before = page.url
    page.evaluate(f"() => window.realioSearchMap.setView([{PARIS[1]}, {PARIS[0]}], 13)")
    expect(page.get_by_role("button", name="Search this area")).to_be_visible()
    page.wait_for_timeout(600)
    assert page.url == before
    page.get_by_role("button", name="Search this area").click()
    expect(page).to_have_url(re.compile(r"[?&]bbox="))
    expect(page.locator("#search-results-title")).to_have_text("7 homes")
    assert sorted(ids(page, CARDS)) == sorted(ids(page, MARKERS)) == sorted(homes["paris"])

    assert console_errors == []


def test_the_plain_form_works_without_javascript(browser, live_asgi_server, homes):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_asgi_server}/search/")
    expect(page.locator("[data-search-map-panel]")).to_be_hidden()  # no empty map without its script
    expect(page.locator(CARDS)).to_have_count(12)

    page.locator("#search-property_type-house").check()
    page.get_by_label("Maximum price").fill("270000")
    page.get_by_role("button", name="Show homes").click()

    expect(page.locator("#search-results-title")).to_have_text("3 homes")  # 250,000 to 270,000
    params = parse_qs(urlsplit(page.url).query)
    assert params["property_type"] == ["house"] and params["max_price"] == ["270000"]
    assert set(ids(page, CARDS)) <= homes["lyon"]
    expect(page.get_by_label("Maximum price")).to_have_value("270000")
    context.close()
