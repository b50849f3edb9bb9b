"""The listing pages (a home's page, favorites, the home page's newest homes) through Django's
test client."""

import json
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from accounts.tests.factories import AgentFactory, UserFactory
from listings import services
from listings.models import Favorite, Listing
from listings.tests.factories import ListingFactory, image_upload
from realio.redis import get_redis

pytestmark = pytest.mark.django_db


class PageParts(HTMLParser):
    """The <script> and <meta> tags of a page, with the text of each script."""

    def __init__(self):
        super().__init__()
        self.scripts, self.metas = [], []
        self._script = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._script = {**dict(attrs), "text": ""}
            self.scripts.append(self._script)
        elif tag == "meta":
            self.metas.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script["text"] += data


def page_parts(response):
    parser = PageParts()
    parser.feed(response.content.decode())
    return parser


def json_ld(response):
    (script,) = [s for s in page_parts(response).scripts if s.get("type") == "application/ld+json"]
    return json.loads(script["text"])


def open_graph(response):
    return {meta["property"]: meta["content"] for meta in page_parts(response).metas if "property" in meta}


def listing_page(listing):
    return reverse("listing_page", args=[listing.pk])


def favorite_url(listing):
    return reverse("listing_favorite", args=[listing.pk])


@pytest.fixture
def listing():
    return ListingFactory(title="Sunny flat by the canal", price=Decimal("350000.00"))


@pytest.fixture
def customer(client):
    user = UserFactory()
    client.force_login(user)
    return user


def with_photos_and_prices(listing, *, photos=2, prices=("340000", "325000")):
    for number in range(photos):
        services.photo_add(listing=listing, by=listing.agent, upload=image_upload(), caption=f"Room {number + 1}")
    for price in prices:
        listing = services.listing_update(listing=listing, by=listing.agent, price=Decimal(price))
    return listing


# --- a home's page: who sees it ---------------------------------------------------------------------


def test_an_active_listing_shows_its_facts(client, listing):
    response = client.get(listing_page(listing))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1 id=\"listing-title\">Sunny flat by the canal</h1>" in html
    assert "350,000 EUR" in html
    assert "Mortgage calculator" in html
    assert f'href="/messages/?listing={listing.pk}"' in html
    assert 'href="#book"' in html


def test_showing_a_listing_records_a_view(client, listing):
    client.get(listing_page(listing))

    assert get_redis().llen(services.VIEWS_QUEUE) == 1


def test_another_agents_draft_is_not_found(client, listing):
    draft = ListingFactory(status=Listing.Status.DRAFT)

    assert client.get(listing_page(draft)).status_code == 404
    client.force_login(AgentFactory())
    assert client.get(listing_page(draft)).status_code == 404


def test_the_agent_sees_their_own_draft_unindexed(client):
    draft = ListingFactory(status=Listing.Status.DRAFT)
    client.force_login(draft.agent)

    response = client.get(listing_page(draft))

    assert response.status_code == 200
    html = response.content.decode()
    assert "not published" in html
    assert '<meta name="robots" content="noindex">' in html
    assert not [s for s in page_parts(response).scripts if s.get("type") == "application/ld+json"]
    assert "This is your listing." in html


def test_a_rental_shows_its_rent_instead_of_a_mortgage(client):
    rental = ListingFactory(listing_type=Listing.ListingType.RENT, price=Decimal("1200.00"))

    html = client.get(listing_page(rental)).content.decode()

    assert "1,200 EUR per month" in html
    assert "14,400 EUR a year" in html
    assert "data-mortgage-calculator" not in html


# --- what the page says and how -----------------------------------------------------------------------


def test_the_description_is_escaped(client):
    listing = ListingFactory(description='<script>alert("x")</script>\nSecond <b>line</b>')

    html = client.get(listing_page(listing)).content.decode()

    assert "<script>alert" not in html
    assert "<b>line</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>Second &lt;b&gt;line&lt;/b&gt;" in html


def test_every_script_is_a_file_or_data(client, listing):
    with_photos_and_prices(listing)

    scripts = page_parts(client.get(listing_page(listing))).scripts

    assert any(s.get("src", "").endswith("js/listing.js") for s in scripts)
    assert any(s.get("src", "").endswith("vendor/leaflet/leaflet.js") for s in scripts)
    for script in scripts:
        assert script.get("src") or script.get("type") in ("application/ld+json", "application/json"), script


def test_json_ld_describes_the_listing(client, listing):
    listing = with_photos_and_prices(listing, prices=("340000",))

    data = json_ld(client.get(listing_page(listing)))

    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "RealEstateListing"
    assert data["name"] == "Sunny flat by the canal"
    assert data["url"] == f"http://testserver{listing_page(listing)}"
    assert len(data["image"]) == 2 and data["image"][0].startswith("http://testserver/media/")
    offer = data["offers"]
    assert (offer["@type"], Decimal(offer["price"]), offer["priceCurrency"]) == ("Offer", Decimal("340000"), "EUR")
    assert offer["availability"] == "https://schema.org/InStock"
    home = offer["itemOffered"]
    assert home["@type"] == "Apartment"
    assert home["address"] == {"@type": "PostalAddress", "streetAddress": "12 rue de la Paix",
                               "addressLocality": "Paris", "addressRegion": "Île-de-France",
                               "postalCode": "75002", "addressCountry": "FR"}
    assert (home["geo"]["latitude"], home["geo"]["longitude"]) == pytest.approx((48.8690, 2.3312))
    assert home["numberOfRooms"] == 2
    assert home["floorSize"] == {"@type": "QuantitativeValue", "value": "65.00", "unitCode": "MTK"}


def test_json_ld_cannot_be_broken_out_of(client):
    listing = ListingFactory(title="Flat</script><script>alert(1)</script>", description="A & B <!-- x")

    response = client.get(listing_page(listing))

    assert "</script><script>alert(1)" not in response.content.decode()
    data = json_ld(response)
    assert data["name"] == "Flat</script><script>alert(1)</script>"
    assert data["description"] == "A & B <!-- x"


def test_open_graph_tags(client, listing):
    listing = with_photos_and_prices(listing, prices=())

    og = open_graph(client.get(listing_page(listing)))

    assert og["og:title"] == "Sunny flat by the canal · 350,000 EUR"
    assert og["og:description"] == "Quiet street, close to the metro."
    assert og["og:url"] == f"http://testserver{listing_page(listing)}"
    first_photo = listing.photos.order_by("position").first()
    assert og["og:image"] == f"http://testserver{first_photo.large_url}"
    assert og["og:type"] == "website"


def test_open_graph_without_photos_has_no_image(client, listing):
    og = open_graph(client.get(listing_page(listing)))

    assert "og:image" not in og
    assert og["og:title"].startswith("Sunny flat by the canal")


def test_gallery_shows_the_photos_in_order(client, listing):
    with_photos_and_prices(listing, photos=3, prices=())
    photos = list(listing.photos.order_by("position"))

    html = client.get(listing_page(listing)).content.decode()

    positions = [html.index(f'href="{photo.large_url}"') for photo in photos]
    assert positions == sorted(positions)
    assert 'alt="Room 1"' in html
    assert "Photo 2 of 3: Room 2" in html


def test_price_history_as_a_chart_and_a_table(client, listing):
    listing = with_photos_and_prices(listing, photos=0, prices=("340000", "360000"))

    html = client.get(listing_page(listing)).content.decode()

    assert '<svg class="price-chart__svg"' in html
    assert html.count('<circle class="price-chart__point"') == 3
    assert "after 2 price changes" in html
    assert '<table class="price-table">' in html
    assert "−10,000 EUR (−2.9 %)" in html
    assert "+20,000 EUR (+5.9 %)" in html


def test_a_single_price_is_a_sentence_not_a_chart(client, listing):
    html = client.get(listing_page(listing)).content.decode()

    assert "price-chart__svg" not in html
    assert "The price has not changed since the home was listed: 350,000 EUR." in html


def test_map_settings_reach_the_page(client, listing, settings):
    settings.MAP_TILE_URL = "https://tiles.example.org/{z}/{x}/{y}.png"
    settings.MAP_TILE_ATTRIBUTION = "© Example & friends"

    html = client.get(listing_page(listing)).content.decode()

    assert 'data-tile-url="https://tiles.example.org/{z}/{x}/{y}.png"' in html
    assert 'data-tile-attribution="© Example &amp; friends"' in html
    assert 'data-lat="48.869"' in html
    assert 'data-icon-url="/static/vendor/leaflet/images/marker-icon.png"' in html


def test_the_agents_card(client, listing):
    listing.agent.first_name, listing.agent.last_name = "Rosa", "Parks"
    listing.agent.save()
    listing.agent.agent_profile.agency = "Maison & Co"
    listing.agent.agent_profile.save()

    html = client.get(listing_page(listing)).content.decode()

    assert '<p class="agent-card__name">Rosa Parks</p>' in html
    assert '<p class="agent-card__agency">Maison &amp; Co</p>' in html


def test_the_page_runs_a_bounded_number_of_queries(client, listing, customer, django_assert_max_num_queries):
    listing = with_photos_and_prices(listing, photos=3, prices=("340000", "330000"))
    Favorite.objects.create(user=customer, listing=listing)
    client.get(listing_page(listing))  # the session exists from here on

    # user, listing with its agent and profile, photos, prices, favorite (+1: the session on a cache miss)
    with django_assert_max_num_queries(6):
        response = client.get(listing_page(listing))
    assert response.status_code == 200


# --- favorites --------------------------------------------------------------------------------------


def test_saving_needs_a_signed_in_person(client, listing):
    response = client.post(favorite_url(listing))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={listing_page(listing)}"
    assert not Favorite.objects.exists()


def test_htmx_is_sent_to_sign_in_rather_than_swapping_the_form(client, listing):
    response = client.post(favorite_url(listing), headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"] == f"{reverse('account_login')}?next={listing_page(listing)}"


def test_anonymous_visitors_get_a_sign_in_link_instead_of_the_button(client, listing):
    html = client.get(listing_page(listing)).content.decode()

    assert f'href="{reverse("account_login")}?next={listing_page(listing)}"' in html
    assert f'action="{favorite_url(listing)}"' not in html


def test_the_favorite_button_toggles(client, listing, customer):
    response = client.post(favorite_url(listing))

    assert response.status_code == 302
    assert response["Location"] == listing_page(listing)
    assert Favorite.objects.filter(user=customer, listing=listing).exists()
    assert "Saved · remove" in client.get(listing_page(listing)).content.decode()

    client.post(favorite_url(listing))

    assert not Favorite.objects.filter(user=customer, listing=listing).exists()


def test_explicit_actions_are_idempotent(client, listing, customer):
    client.post(favorite_url(listing), {"action": "add"})
    client.post(favorite_url(listing), {"action": "add"})
    assert Favorite.objects.filter(user=customer).count() == 1

    client.post(favorite_url(listing), {"action": "remove"})
    response = client.post(favorite_url(listing), {"action": "remove"})
    assert response.status_code == 302
    assert not Favorite.objects.exists()


def test_htmx_gets_the_button_back(client, listing, customer):
    response = client.post(favorite_url(listing), {"action": "add"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form class="favorite-form"')
    assert 'name="action" value="remove"' in html
    assert "Saved · remove" in html


def test_an_invisible_listing_cannot_be_saved(client, customer):
    draft = ListingFactory(status=Listing.Status.DRAFT)

    assert client.post(favorite_url(draft)).status_code == 404
    assert not Favorite.objects.exists()


def test_saving_is_post_only(client, listing, customer):
    assert client.get(favorite_url(listing)).status_code == 405


def test_next_stays_on_this_site(client, listing, customer):
    response = client.post(favorite_url(listing), {"next": "https://evil.example.org/"})

    assert response["Location"] == listing_page(listing)


def test_the_favorites_page_lists_saved_homes(client, customer):
    saved = ListingFactory(title="Loft near the river")
    sold = ListingFactory(title="Old mill")
    services.favorite_add(user=customer, listing_id=saved.pk)
    services.favorite_add(user=customer, listing_id=sold.pk)
    Listing.objects.filter(pk=sold.pk).update(status=Listing.Status.SOLD)
    ListingFactory(title="Not saved")

    response = client.get(reverse("favorites"))

    html = response.content.decode()
    assert "Loft near the river" in html and "Old mill" in html
    assert "Not saved" not in html
    assert '<span class="badge badge--sold">Sold</span>' in html
    assert html.count('name="action" value="remove"') == 2


def test_removing_from_the_favorites_page_returns_to_it(client, customer, listing):
    services.favorite_add(user=customer, listing_id=listing.pk)

    response = client.post(favorite_url(listing), {"action": "remove", "next": reverse("favorites")})

    assert response["Location"] == reverse("favorites")
    assert not Favorite.objects.exists()
    assert "No favorites yet" in client.get(reverse("favorites")).content.decode()


def test_the_favorites_page_needs_a_signed_in_person(client):
    response = client.get(reverse("favorites"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_favorites_page_runs_a_bounded_number_of_queries(client, customer, django_assert_max_num_queries):
    for _number in range(4):
        listing = with_photos_and_prices(ListingFactory(), photos=1, prices=())
        services.favorite_add(user=customer, listing_id=listing.pk)

    # user, favorites with their listings, photos, prices (the session is cached)
    with django_assert_max_num_queries(5):
        client.get(reverse("favorites"))


# --- the home page ------------------------------------------------------------------------------------


def test_the_home_page_shows_the_newest_homes(client):
    ListingFactory(title="Older cottage")
    ListingFactory(title="Newer townhouse")
    ListingFactory(title="Secret draft", status=Listing.Status.DRAFT)

    html = client.get(reverse("home")).content.decode()

    assert html.index("Newer townhouse") < html.index("Older cottage")
    assert "Secret draft" not in html
    assert "350,000 EUR" in html
    assert "No homes yet" not in html


def test_the_home_page_without_homes_says_so(client):
    assert "No homes yet" in client.get(reverse("home")).content.decode()
