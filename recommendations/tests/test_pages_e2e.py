"""The listing page's similar homes and price estimate in Chromium, and the gallery's signal.

Run in their own process: `pytest -m e2e` (see listings/tests/test_pages_e2e.py)."""

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import AgentFactory
from listings import demo as listing_demo
from listings.models import Listing
from recommendations import training, valuation
from recommendations.models import Interaction
from recommendations.tests.factories import customers

pytestmark = pytest.mark.e2e


def test_a_homes_page_shows_similar_homes_and_the_estimate(page, live_asgi_server, tiles, console_errors):
    listing_demo.seed_listings(agents=[AgentFactory().pk], count=400, seed=5)
    from recommendations import demo

    demo.seed_interactions(customers=customers(30), per_user=20)
    assert training.train_recommender().status == "promoted"
    assert valuation.train_valuation()[0].status == "promoted"
    home = next(listing for listing in Listing.objects.filter(status="active", listing_type="sale").order_by("pk")
                if listing.photos.count() > 1)

    page.goto(f"{live_asgi_server}/listings/{home.pk}/")

    estimate = page.get_by_role("region", name="Price estimate")
    expect(estimate).to_contain_text("Likely between")
    expect(estimate).to_contain_text("Typical error")
    similar = page.get_by_role("region", name="Similar homes")
    expect(similar.locator(".listing-card").first).to_be_visible()
    assert similar.locator(".listing-card").count() >= 1

    # opening the gallery sends a signal, recorded for this anonymous visitor (waiting through
    # Playwright: a sleeping test would hold the page's requests, which the tile route intercepts)
    thumbs = page.locator("[data-gallery-thumb]")
    assert thumbs.count() > 1
    with page.expect_response(lambda response: "/api/v1/interactions/" in response.url) as signal:
        thumbs.nth(1).click()
    assert signal.value.status == 202
    assert Interaction.objects.filter(kind="gallery_opened", listing=home, user=None).exists()
    assert console_errors == []
