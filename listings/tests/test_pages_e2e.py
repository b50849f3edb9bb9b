"""A home's page, favorites and the home page's newest homes in Chromium, against the ASGI site.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
Map tiles are answered by the test (the machine is offline): the page asks for them, and the
CSP lets them in.
"""

import datetime
import io
import re
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, UserFactory
from listings.models import Favorite, PriceChange
from listings.tests.factories import ListingFactory

pytestmark = pytest.mark.e2e


def png(colour, size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def listing():
    """A home for sale at 300,000 with two photos and three prices over three months."""
    listing = ListingFactory(title="Canal house with a garden", price=Decimal("320000.00"),
                             description="Light all day.\nA <b>big</b> garden.")
    now = timezone.now()
    PriceChange.objects.filter(listing=listing).update(changed_at=now - datetime.timedelta(days=90))
    for days, price in ((40, "310000.00"), (5, "300000.00")):
        change = PriceChange.objects.create(listing=listing, price=Decimal(price))
        PriceChange.objects.filter(pk=change.pk).update(changed_at=now - datetime.timedelta(days=days))
    listing.price = Decimal("300000.00")
    listing.save(update_fields=["price"])
    for position, (colour, caption) in enumerate((((200, 60, 60), "Living room"), ((60, 60, 200), "Garden"))):
        listing.photos.create(image=ContentFile(png(colour), name=f"photo-{position}.png"), caption=caption,
                              position=position)
    return listing


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator("details.menu")).to_be_visible()


def monthly_payment(*, price, down_payment, rate, years, tax, insurance):
    """The amortised principal-and-interest payment plus a twelfth of the yearly tax and insurance."""
    loan = price - down_payment
    monthly_rate = rate / 100 / 12
    months = years * 12
    if monthly_rate == 0:
        principal_and_interest = loan / months
    else:
        principal_and_interest = loan * monthly_rate / (1 - (1 + monthly_rate) ** -months)
    return principal_and_interest + tax / 12 + insurance / 12


def test_a_homes_page_shows_gallery_map_and_price_history(page, live_asgi_server, listing, tiles, console_errors):
    page.goto(f"{live_asgi_server}/listings/{listing.pk}/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Canal house with a garden")
    expect(page.locator(".listing-description")).to_contain_text("A <b>big</b> garden.")

    gallery = page.get_by_role("region", name="Photos")
    photo = gallery.locator("[data-gallery-image]")
    expect(photo).to_have_attribute("alt", "Living room")
    expect(gallery.get_by_role("link")).to_have_count(2)
    gallery.get_by_role("button", name="Next photo").click()
    expect(photo).to_have_attribute("alt", "Garden")
    expect(gallery.locator("[data-gallery-counter]")).to_have_text("2 / 2")
    gallery.get_by_role("button", name="Next photo").press("ArrowRight")
    expect(photo).to_have_attribute("alt", "Living room")
    gallery.get_by_role("link", name="Photo 2 of 2: Garden").click()  # shown in place, not opened
    expect(photo).to_have_attribute("alt", "Garden")
    expect(page).to_have_url(f"{live_asgi_server}/listings/{listing.pk}/")
    assert page.evaluate("() => document.querySelector('[data-gallery-image]').naturalWidth") == 64

    map_container = page.locator("#listing-map.leaflet-container")
    expect(map_container).to_be_visible()
    marker = map_container.locator("img.leaflet-marker-icon")
    expect(marker).to_have_attribute("src", re.compile(r"/static/vendor/leaflet/images/marker-icon(-2x)?\.png$"))
    page.wait_for_function("() => document.querySelector('img.leaflet-marker-icon').naturalWidth > 0")
    expect(map_container.locator("img.leaflet-tile-loaded").first).to_be_visible()
    assert tiles, "the map asked for tiles"

    chart = page.get_by_role("img", name="Price history")
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(3)
    rows = page.locator(".price-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("300,000 EUR")
    expect(rows.first).to_contain_text("−10,000 EUR (−3.2 %)")
    expect(rows.last).to_contain_text("320,000 EUR")

    assert console_errors == []


def test_the_mortgage_calculator_computes_the_monthly_payment(page, live_asgi_server, listing, tiles,
                                                             console_errors):
    page.goto(f"{live_asgi_server}/listings/{listing.pk}/")
    calculator = page.get_by_role("region", name="Mortgage calculator")
    result = calculator.locator("#mortgage-monthly")
    # Prefilled: the price, 20 % down, 3.5 % over 25 years.
    expect(calculator.get_by_label("Home price (EUR)")).to_have_value("300000")
    expected = monthly_payment(price=300000, down_payment=60000, rate=3.5, years=25, tax=0, insurance=0)
    expect(result).to_have_text(f"{expected:,.2f} EUR")

    calculator.get_by_label("Home price (EUR)").fill("300000")
    calculator.get_by_label("Down payment (EUR)").fill("60000")
    calculator.get_by_label("Interest rate (% a year)").fill("3.0")
    calculator.get_by_label("Term (years)").fill("25")
    calculator.get_by_label("Property tax a year (EUR)").fill("1200")
    calculator.get_by_label("Home insurance a year (EUR)").fill("600")

    expected = monthly_payment(price=300000, down_payment=60000, rate=3.0, years=25, tax=1200, insurance=600)
    assert f"{expected:,.2f}" == "1,288.11"  # 1,138.11 principal and interest + 100 tax + 50 insurance
    expect(result).to_have_text("1,288.11 EUR")
    expect(calculator.locator("[data-mortgage-loan]")).to_have_text("240,000.00 EUR")
    expect(calculator.locator("[data-mortgage-extras]")).to_have_text("150.00 EUR")
    expect(calculator.locator("[data-mortgage-invalid]")).to_be_hidden()

    calculator.get_by_label("Interest rate (% a year)").fill("0")
    expect(result).to_have_text(f"{240000 / 300 + 150:,.2f} EUR")

    calculator.get_by_label("Down payment (EUR)").fill("400000")  # more than the price
    expect(result).to_have_text("—")
    expect(calculator.locator("[data-mortgage-invalid]")).to_be_visible()

    assert console_errors == []


def test_save_a_home_then_remove_it_from_the_favorites_page(page, live_asgi_server, listing, tiles,
                                                           console_errors):
    customer = UserFactory()
    sign_in(page, live_asgi_server, customer.email)
    page.goto(f"{live_asgi_server}/listings/{listing.pk}/")
    page.evaluate("() => { window.notReloaded = true; }")

    page.get_by_role("button", name="Save to favorites").click()

    expect(page.get_by_role("button", name="Saved · remove")).to_be_visible()
    assert page.evaluate("() => window.notReloaded") is True  # htmx swapped the button in place
    assert Favorite.objects.filter(user=customer, listing=listing).exists()

    page.goto(f"{live_asgi_server}/favorites/")
    expect(page.get_by_role("heading", name="Canal house with a garden")).to_be_visible()
    expect(page.locator(".listing-card__price")).to_contain_text("300,000 EUR")
    page.get_by_role("button", name="Remove Canal house with a garden from your favorites").click()

    expect(page.get_by_role("status")).to_contain_text("Removed from your favorites.")
    expect(page.get_by_text("No favorites yet.")).to_be_visible()
    assert not Favorite.objects.filter(user=customer).exists()
    assert console_errors == []


def test_the_home_page_leads_to_the_newest_homes(page, live_asgi_server, listing, tiles, console_errors):
    page.goto(f"{live_asgi_server}/")

    newest = page.get_by_role("region", name="Newest homes")
    newest.get_by_role("link", name="Canal house with a garden").click()

    expect(page).to_have_url(f"{live_asgi_server}/listings/{listing.pk}/")
    expect(page.locator("#listing-map.leaflet-container")).to_be_visible()
    assert console_errors == []
