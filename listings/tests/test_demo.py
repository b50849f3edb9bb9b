"""The demo data generator and `manage.py seed_demo`."""

import io
import statistics
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from accounts.models import AgentProfile, User
from listings import demo
from listings.models import Favorite, Listing, ListingPhoto, PriceChange

NOW = datetime(2026, 6, 1, tzinfo=UTC)
KEY_FIELDS = ("key", "agent_index", "title", "description", "listing_type", "rent_period", "property_type", "status",
              "price", "bedrooms", "bathrooms", "area_sqm", "year_built", "street", "postal_code", "latitude",
              "longitude", "features", "close_price", "photos")


def key_fields(items):
    return [tuple(getattr(item, name) for name in KEY_FIELDS) + (item.city.name,) for item in items]


def seed(**options):
    out = io.StringIO()
    call_command("seed_demo", no_progress=True, stdout=out, **options)
    return out.getvalue()


# --- the generator (no database) --------------------------------------------------------------

def test_same_seed_gives_the_same_listings_and_another_seed_others():
    first = list(demo.generate(seed=7, count=300, agent_count=4, now=NOW))
    again = list(demo.generate(seed=7, count=300, agent_count=4, now=NOW))
    other = list(demo.generate(seed=8, count=300, agent_count=4, now=NOW))

    assert key_fields(first) == key_fields(again)
    assert [item.price_history for item in first] == [item.price_history for item in again]
    differing = sum(a != b for a, b in zip(key_fields(first), key_fields(other), strict=True))
    assert differing == 300


def test_listing_i_does_not_depend_on_how_many_are_asked_for():
    few = list(demo.generate(seed=3, count=10, agent_count=2, now=NOW))
    more = list(demo.generate(seed=3, count=50, agent_count=2, now=NOW))
    assert key_fields(few) == key_fields(more[:10])


@pytest.fixture(scope="module")
def sample():
    return list(demo.generate(seed=11, count=6000, agent_count=8, now=NOW))


def per_m2(item):
    return float(item.price) / float(item.area_sqm)


def test_dearer_neighbourhoods_cost_more_per_square_metre(sample):
    # Given sale apartments, priced relative to their city's level
    relative = defaultdict(list)
    for item in sample:
        if item.listing_type == "sale" and item.property_type == "apartment":
            relative[item.neighbourhood.multiplier >= 1.3, item.neighbourhood.multiplier <= 0.8].append(
                per_m2(item) / item.city.price_m2)
    dear, cheap = statistics.mean(relative[True, False]), statistics.mean(relative[False, True])
    # Then the dear neighbourhoods cost clearly more per m²
    assert dear > 1.5 * cheap
    # And within one city too: Saint-Germain above Belleville
    paris = defaultdict(list)
    for item in sample:
        if item.city.name == "Paris" and item.listing_type == "sale" and item.property_type in ("apartment", "condo"):
            paris[item.neighbourhood.name].append(per_m2(item))
    assert statistics.mean(paris["Saint-Germain-des-Prés"]) > statistics.mean(paris["Belleville"])


def test_bigger_homes_cost_more_and_new_builds_more_per_square_metre(sample):
    homes = [item for item in sample if item.listing_type == "sale" and item.property_type in demo.Type.values
             and item.property_type not in ("land", "commercial")]
    by_bedrooms = defaultdict(list)
    for item in homes:
        by_bedrooms[item.bedrooms].append(float(item.price) / item.city.price_m2)
    assert statistics.mean(by_bedrooms[1]) < statistics.mean(by_bedrooms[2]) < statistics.mean(by_bedrooms[3])

    def level(item):
        return per_m2(item) / (item.city.price_m2 * item.neighbourhood.multiplier)

    new = [level(item) for item in homes if item.year_built >= 2015]
    post_war = [level(item) for item in homes if 1945 <= item.year_built < 1990]
    assert statistics.mean(new) > statistics.mean(post_war)


def test_rents_are_a_plausible_fraction_of_sale_prices(sample):
    monthly = [float(item.price) / float(item.area_sqm) for item in sample
               if item.rent_period == "month" and item.property_type == "apartment"]
    sale = [per_m2(item) for item in sample if item.listing_type == "sale" and item.property_type == "apartment"]
    ratio = statistics.mean(monthly) * 12 / statistics.mean(sale)
    assert 0.03 < ratio < 0.07


def test_every_listing_is_consistent(sample):
    for item in sample:
        assert item.key.startswith(demo.DEMO_KEY_PREFIX)
        assert (item.rent_period is None) == (item.listing_type == "sale")
        assert item.status != "sold" or item.listing_type == "sale"
        assert item.status != "rented" or item.listing_type == "rent"
        assert item.published_at is not None or item.status in ("draft", "withdrawn")
        assert (item.close_price is not None) == (item.closed_at is not None) == (item.status in ("sold", "rented"))
        assert item.price_history[-1][0] == item.price
        moments = [at for _price, at in item.price_history]
        assert moments == sorted(moments) and moments[-1] <= NOW
        assert 1 <= len(item.photos) <= 5
        assert item.property_type in item.title.lower() or item.bedrooms == 0 or "plot" in item.title
        assert item.city.name in item.description
        assert abs(item.latitude - item.neighbourhood.latitude) < 0.05


def test_the_photo_pool_is_about_a_hundred_distinct_images():
    assert 90 <= len(demo.PHOTO_POOL) <= 110
    images = {demo.photo_bytes(photo) for photo in demo.PHOTO_POOL[:12]}
    assert len(images) == 12
    assert demo.photo_bytes(demo.PHOTO_POOL[5]) == demo.photo_bytes(demo.PHOTO_POOL[5])


# --- the command ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_seed_demo_writes_the_accounts_and_listings():
    # When
    output = seed(listings=60, agents=3, customers=4, seed=5)

    # Then the three demo logins and the numbered extra accounts exist, with the demo password
    emails = set(User.objects.filter(email__endswith="@demo.realio").values_list("email", flat=True))
    assert emails == {"customer@demo.realio", "agent@demo.realio", "staff@demo.realio", "agent1@demo.realio",
                      "agent2@demo.realio", "customer1@demo.realio", "customer2@demo.realio",
                      "customer3@demo.realio"}
    for email in emails:
        assert User.objects.get(email=email).check_password("realio-demo")
    assert User.objects.get(email="agent2@demo.realio").is_agent
    assert AgentProfile.objects.filter(user__email__endswith="@demo.realio", verified_at__isnull=False).count() == 3
    assert "customer@demo.realio" in output and "agent1…agent2@demo.realio" in output

    # And the listings, spread over the three agents, with photos, history and favorites
    listings = demo.demo_listings()
    assert listings.count() == 60
    assert set(listings.values_list("agent__email", flat=True)) <= {"agent@demo.realio", "agent1@demo.realio",
                                                                   "agent2@demo.realio"}
    photo_counts = listings.annotate(n=Count("photos")).values_list("n", flat=True)
    assert min(photo_counts) >= 1 and max(photo_counts) <= 5
    assert all(default_storage.exists(name) for name in ListingPhoto.objects.values_list("image", flat=True)
               .distinct())
    assert not listings.annotate(n=Count("price_changes")).filter(n=0).exists()
    assert Favorite.objects.filter(user__email__endswith="@demo.realio").exists()

    # And the stored rows match the generator, times included
    expected = {item.key: item for item in demo.generate(seed=5, count=60, agent_count=3)}
    for listing in listings.prefetch_related("price_changes"):
        item = expected[listing.external_key]
        assert (listing.price, listing.status, listing.city, listing.features) == (
            item.price, item.status, item.city.name, item.features)
        assert listing.location.y == pytest.approx(item.latitude) and listing.time_zone == item.city.time_zone
        assert [(c.price, c.changed_at) for c in listing.price_changes.all()] == item.price_history
        assert listing.created_at == item.created_at
    assert not PriceChange.objects.filter(changed_at__gt=timezone.now()).exists()


@pytest.mark.django_db
def test_seed_demo_again_adds_nothing_and_reset_replaces():
    # Given a seeded site
    seed(listings=30, agents=2, customers=2, seed=1)
    users, keys = User.objects.count(), set(demo.demo_listings().values_list("external_key", "price"))

    # When it runs again
    output = seed(listings=30, agents=2, customers=2, seed=1)

    # Then nothing is duplicated
    assert "already present" in output
    assert User.objects.count() == users
    assert set(demo.demo_listings().values_list("external_key", "price")) == keys

    # When it runs with --reset and another seed
    seed(listings=30, agents=2, customers=2, seed=2, reset=True)

    # Then the demo listings are replaced, not added to
    assert demo.demo_listings().count() == 30
    assert set(demo.demo_listings().values_list("external_key", "price")) != keys
    assert User.objects.count() == users


@pytest.mark.django_db
def test_seed_demo_leaves_other_listings_alone():
    from listings.tests.factories import ListingFactory

    own = ListingFactory()
    seed(listings=10, agents=1, customers=1, seed=1)
    seed(listings=10, agents=1, customers=1, seed=1, reset=True)
    assert Listing.objects.filter(pk=own.pk).exists()
    assert Listing.objects.count() == 11
