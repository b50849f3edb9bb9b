"""The recommendation blocks of the home page and the listing page (server-rendered)."""

import pytest

from accounts.tests.factories import UserFactory
from listings.models import Listing
from recommendations import training, valuation
from recommendations.tests.factories import BERLIN, PARIS, homes, interact

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained():
    paris = homes(12, where=PARIS, city="Paris")
    berlin = homes(12, where=BERLIN, city="Berlin")
    crowd = [UserFactory() for _ in range(6)]
    for n, person in enumerate(crowd):
        for home in (paris if n % 2 else berlin)[n: n + 6]:
            interact(person, home)
    assert training.train_recommender().status == "promoted"
    return paris, berlin


def test_the_home_page_recommends_homes_to_a_person(client, trained):
    paris, _berlin = trained
    person = UserFactory()
    interact(person, paris[0], "favorite")
    client.force_login(person)

    page = client.get("/").content.decode()

    assert "Recommended for you" in page and "data-recommended" in page
    assert f'/listings/{paris[1].pk}/' in page or f'/listings/{paris[2].pk}/' in page


def test_the_home_page_shows_popular_homes_to_visitors(client, trained):
    page = client.get("/").content.decode()
    assert "data-recommended" in page and "Popular homes right now" in page


def test_the_home_page_without_a_model_keeps_its_invitation(client):
    page = client.get("/").content.decode()
    assert "Sign in</a> to get homes picked for you." in page


def test_the_listing_page_loads_similar_homes_and_no_estimate_before_a_valuation(client, trained):
    paris, _berlin = trained

    page = client.get(f"/listings/{paris[0].pk}/").content.decode()
    similar = client.get(f"/listings/{paris[0].pk}/similar-block/").content.decode()
    estimate = client.get(f"/listings/{paris[0].pk}/estimate-block/").content.decode()

    assert f'hx-get="/listings/{paris[0].pk}/similar-block/"' in page
    assert f'hx-get="/listings/{paris[0].pk}/estimate-block/"' in page
    assert f'data-reco-listing="{paris[0].pk}"' in page
    assert "Similar homes" in similar and f"/listings/{paris[1].pk}/" in similar
    assert "Share this home" in similar
    assert "Price estimate" not in estimate


def test_the_listing_page_shows_the_estimate_its_range_error_and_drivers(client):
    from accounts.tests.factories import AgentFactory
    from listings import demo as listing_demo

    listing_demo.seed_listings(agents=[AgentFactory().pk], count=400, seed=5)
    assert valuation.train_valuation()[0].status == "promoted"
    home = Listing.objects.filter(status="active", listing_type="sale").first()

    block = client.get(f"/listings/{home.pk}/estimate-block/").content.decode()

    assert "Price estimate" in block and "Likely between" in block
    assert "Typical error" in block and "What moves this model’s estimates most" in block


def test_blocks_of_drafts_are_404_to_others(client):
    from listings.tests.factories import ListingFactory

    draft = ListingFactory(status="draft")
    assert client.get(f"/listings/{draft.pk}/similar-block/").status_code == 404
    assert client.get(f"/listings/{draft.pk}/estimate-block/").status_code == 404


def test_a_broken_model_file_does_not_break_the_page(client, trained, settings):
    for path in (settings.RECO_MODEL_DIR / "recommender").iterdir():
        path.write_bytes(b"not a model")
    from recommendations import store

    store.forget()
    paris, _berlin = trained
    assert client.get(f"/listings/{paris[0].pk}/similar-block/").status_code == 200
    assert client.get("/").status_code == 200
