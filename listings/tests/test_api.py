"""The listings and favorites API contract (DESIGN.md section 5) and its ownership rules."""

import pytest

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from listings.models import Favorite, Listing, PriceChange
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {
    "id", "url", "title", "description", "listing_type", "rent_period", "property_type", "status", "price",
    "currency", "bedrooms", "bathrooms", "area_sqm", "year_built", "street", "city", "region", "postal_code",
    "country", "latitude", "longitude", "time_zone", "features", "photos", "agent", "price_history",
    "close_price", "closed_at", "created_at", "updated_at",
}


def new_listing(**overrides):
    return {"title": "Family house with garden", "description": "Five minutes from the school.",
            "listing_type": "sale", "property_type": "house", "price": "420000.00", "bedrooms": 4,
            "bathrooms": 2, "area_sqm": "140.5", "year_built": 1998, "street": "3 chemin des Vignes",
            "city": "Bordeaux", "region": "Nouvelle-Aquitaine", "postal_code": "33000", "country": "FR",
            "latitude": 44.8378, "longitude": -0.5792, "features": ["garden", "garage"]} | overrides


def test_anyone_lists_active_listings_only(api_client):
    active = ListingFactory()
    ListingFactory(status="draft")
    ListingFactory(status="withdrawn")
    ListingFactory(status="sold")

    body = api_client.get("/api/v1/listings/").json()

    assert body["count"] == 1
    assert body["results"][0]["id"] == active.pk
    assert set(body["results"][0]) >= CONTRACT_FIELDS
    assert {"next", "previous"} <= set(body)


def test_listing_representation_follows_the_contract(api_client):
    listing = ListingFactory(price="350000.00")

    body = api_client.get(f"/api/v1/listings/{listing.pk}/").json()

    assert body["price"] == "350000.00" and body["currency"] == "EUR"
    assert body["agent"] == {"id": listing.agent_id, "name": listing.agent.name}
    assert body["latitude"] == pytest.approx(48.869) and body["longitude"] == pytest.approx(2.3312)
    assert body["url"].endswith(f"/listings/{listing.pk}/")
    assert body["price_history"] == [{"price": "350000.00", "changed_at": body["price_history"][0]["changed_at"]}]
    assert body["created_at"].endswith("Z")
    assert body["rent_period"] is None


def test_an_agent_also_lists_their_own_in_every_status(auth_client):
    agent = AgentFactory()
    mine = {ListingFactory(agent=agent, status=s).pk for s in ("draft", "withdrawn", "sold")}
    ListingFactory(status="draft")  # someone else's

    ids = {row["id"] for row in auth_client(agent).get("/api/v1/listings/?page_size=50").json()["results"]}

    assert mine <= ids
    assert not Listing.objects.filter(pk__in=ids, status="draft").exclude(agent=agent).exists()


def test_drafts_are_invisible_to_others(api_client, auth_client):
    draft = ListingFactory(status="draft")

    assert api_client.get(f"/api/v1/listings/{draft.pk}/").status_code == 404
    assert auth_client(UserFactory()).get(f"/api/v1/listings/{draft.pk}/").status_code == 404
    assert auth_client(AgentFactory()).get(f"/api/v1/listings/{draft.pk}/").status_code == 404
    assert auth_client(draft.agent).get(f"/api/v1/listings/{draft.pk}/").status_code == 200
    assert auth_client(StaffFactory()).get(f"/api/v1/listings/{draft.pk}/").status_code == 200


def test_create_as_agent(auth_client):
    agent = AgentFactory()

    response = auth_client(agent).post("/api/v1/listings/", new_listing(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and body["agent"]["id"] == agent.pk
    assert body["time_zone"] == "Europe/Paris"  # derived from the location
    assert body["features"] == ["garage", "garden"]
    assert body["country"] == "FR" and body["currency"] == "EUR"
    assert len(body["price_history"]) == 1


def test_create_needs_an_agent(api_client, auth_client):
    assert api_client.post("/api/v1/listings/", new_listing(), format="json").status_code == 401
    customer = auth_client(UserFactory())
    assert customer.post("/api/v1/listings/", new_listing(), format="json").status_code == 403
    assert customer.post("/api/v1/listings/", {}, format="json").status_code == 403
    assert not Listing.objects.exists()


def test_create_can_publish_at_once(auth_client):
    response = auth_client(AgentFactory()).post("/api/v1/listings/", new_listing(status="active"), format="json")

    assert response.status_code == 201
    listing = Listing.objects.get()
    assert listing.status == "active" and listing.published_at
    assert OutboxEvent.objects.filter(type="listing.published", payload__listing_id=listing.pk).count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"price": "abc"}, "price"),
        ({"bedrooms": -2}, "bedrooms"),
        ({"area_sqm": "0"}, "area_sqm"),
        ({"latitude": 91}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"latitude": "north"}, "latitude"),
        ({"listing_type": "swap"}, "listing_type"),
        ({"property_type": "castle"}, "property_type"),
        ({"features": ["moat"]}, "features"),
        ({"features": "pool"}, "features"),
        ({"country": "France"}, "country"),
        ({"year_built": 3000}, "year_built"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"closed_at": "2026-01-01T10:00:00"}, "closed_at"),
    ],
)
def test_create_rejects_bad_input_with_field_errors(auth_client, overrides, field):
    response = auth_client(AgentFactory()).post("/api/v1/listings/", new_listing(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert isinstance(response.json()["detail"], str)
    assert not Listing.objects.exists()


def test_missing_required_fields(auth_client):
    response = auth_client(AgentFactory()).post("/api/v1/listings/", {"title": "Only a title"}, format="json")

    assert response.status_code == 400
    assert {"price", "city", "latitude", "longitude", "listing_type"} <= set(response.json()["errors"])


def test_only_the_owner_changes_a_listing(auth_client):
    listing = ListingFactory(title="Original")
    other_agent = auth_client(AgentFactory())
    customer = auth_client(UserFactory())

    assert other_agent.patch(f"/api/v1/listings/{listing.pk}/", {"title": "Hijacked"}, format="json").status_code == 403
    assert customer.patch(f"/api/v1/listings/{listing.pk}/", {"title": "Hijacked"}, format="json").status_code == 403
    assert other_agent.delete(f"/api/v1/listings/{listing.pk}/").status_code == 403
    listing.refresh_from_db()
    assert listing.title == "Original"

    owner = auth_client(listing.agent)
    assert owner.patch(f"/api/v1/listings/{listing.pk}/", {"title": "Renamed"}, format="json").status_code == 200
    listing.refresh_from_db()
    assert listing.title == "Renamed"


def test_another_agents_draft_is_404_not_403(auth_client):
    draft = ListingFactory(status="draft")

    response = auth_client(AgentFactory()).patch(f"/api/v1/listings/{draft.pk}/", {"title": "x"}, format="json")

    assert response.status_code == 404


def test_put_replaces_the_listing(auth_client):
    listing = ListingFactory()

    response = auth_client(listing.agent).put(
        f"/api/v1/listings/{listing.pk}/", new_listing(title="Replaced", city="Lyon", latitude=45.76, longitude=4.83),
        format="json")

    assert response.status_code == 200, response.json()
    listing.refresh_from_db()
    assert listing.title == "Replaced" and listing.city == "Lyon"
    assert auth_client(listing.agent).put(f"/api/v1/listings/{listing.pk}/", {"title": "x"},
                                          format="json").status_code == 400


def test_price_change_writes_history_and_an_event(auth_client):
    listing = ListingFactory(price="300000.00")

    response = auth_client(listing.agent).patch(f"/api/v1/listings/{listing.pk}/", {"price": "285000"}, format="json")

    assert response.status_code == 200
    assert [h["price"] for h in response.json()["price_history"]] == ["300000.00", "285000.00"]
    event = OutboxEvent.objects.get(type="listing.price_changed")
    assert event.payload == {"listing_id": listing.pk, "old": "300000.00", "new": "285000.00"}


def test_same_price_writes_no_history(auth_client):
    listing = ListingFactory(price="300000.00")

    auth_client(listing.agent).patch(f"/api/v1/listings/{listing.pk}/", {"price": "300000.00"}, format="json")

    assert PriceChange.objects.filter(listing=listing).count() == 1
    assert not OutboxEvent.objects.filter(type="listing.price_changed").exists()


def test_moving_a_listing_updates_its_time_zone(auth_client):
    listing = ListingFactory()

    body = auth_client(listing.agent).patch(f"/api/v1/listings/{listing.pk}/",
                                            {"latitude": 40.7128, "longitude": -74.0060}, format="json").json()

    assert body["time_zone"] == "America/New_York"
    assert body["latitude"] == pytest.approx(40.7128)


def test_status_transitions_through_the_api(auth_client):
    listing = ListingFactory(status="draft")
    client = auth_client(listing.agent)

    def move(status, **extra):
        return client.patch(f"/api/v1/listings/{listing.pk}/", {"status": status, **extra}, format="json")

    assert move("active").status_code == 200
    assert move("pending").status_code == 200
    assert move("rented").status_code == 409  # a sale cannot be rented
    sold = move("sold", close_price="410000")
    assert sold.status_code == 200
    assert sold.json()["close_price"] == "410000.00" and sold.json()["closed_at"]
    illegal = move("active")
    assert illegal.status_code == 409
    assert isinstance(illegal.json()["detail"], str)
    assert list(OutboxEvent.objects.filter(type="listing.status_changed").order_by("id")
                .values_list("payload__old", "payload__new")) == [
        ("draft", "active"), ("active", "pending"), ("pending", "sold")]


def test_delete_by_owner(auth_client):
    listing = ListingFactory()

    assert auth_client(listing.agent).delete(f"/api/v1/listings/{listing.pk}/").status_code == 204
    assert not Listing.objects.filter(pk=listing.pk).exists()
    assert OutboxEvent.objects.filter(type="listing.deleted", payload__listing_id=listing.pk).exists()


def test_filters_and_ordering(api_client):
    cheap = ListingFactory(price="100000", city="Lyon", bedrooms=1)
    ListingFactory(price="900000", city="Lyon", bedrooms=5)
    ListingFactory(price="500000", city="Paris", listing_type="rent", rent_period="month")

    body = api_client.get("/api/v1/listings/?city=lyon&max_price=200000").json()
    assert [r["id"] for r in body["results"]] == [cheap.pk]
    prices = [r["price"] for r in api_client.get("/api/v1/listings/?ordering=price").json()["results"]]
    assert prices == sorted(prices, key=float)
    assert api_client.get("/api/v1/listings/?listing_type=rent").json()["count"] == 1
    assert api_client.get("/api/v1/listings/?min_beds=3").json()["count"] == 1


@pytest.mark.parametrize("query", ["min_price=cheap", "listing_type=swap", "property_type=castle", "min_beds=x"])
def test_bad_filters_are_400(api_client, query):
    response = api_client.get(f"/api/v1/listings/?{query}")

    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)


def test_list_runs_a_constant_number_of_queries(api_client, django_assert_max_num_queries):
    ListingFactory.create_batch(3)
    with django_assert_max_num_queries(6):
        api_client.get("/api/v1/listings/")
    ListingFactory.create_batch(20)
    with django_assert_max_num_queries(6):
        assert len(api_client.get("/api/v1/listings/").json()["results"]) == 20


# --- favorites --------------------------------------------------------------------------------

def test_favorites_flow(auth_client):
    customer = UserFactory()
    client = auth_client(customer)
    listing = ListingFactory()

    created = client.post("/api/v1/favorites/", {"listing": listing.pk}, format="json")
    again = client.post("/api/v1/favorites/", {"listing": listing.pk}, format="json")

    assert created.status_code == 201 and again.status_code == 200
    assert created.json()["listing"]["id"] == listing.pk
    assert Favorite.objects.filter(user=customer).count() == 1
    assert OutboxEvent.objects.filter(type="listing.favorited").count() == 1
    listed = client.get("/api/v1/favorites/").json()
    assert listed["count"] == 1 and listed["results"][0]["listing"]["id"] == listing.pk

    assert client.delete(f"/api/v1/favorites/{listing.pk}/").status_code == 204
    assert client.delete(f"/api/v1/favorites/{listing.pk}/").status_code == 404
    assert OutboxEvent.objects.filter(type="listing.unfavorited").count() == 1


def test_favorites_are_private_and_need_sign_in(api_client, auth_client):
    listing = ListingFactory()
    owner = UserFactory()
    Favorite.objects.create(user=owner, listing=listing)

    assert api_client.get("/api/v1/favorites/").status_code == 401
    assert auth_client(UserFactory()).get("/api/v1/favorites/").json()["count"] == 0
    assert auth_client(UserFactory()).delete(f"/api/v1/favorites/{listing.pk}/").status_code == 404
    assert Favorite.objects.filter(user=owner).exists()


@pytest.mark.parametrize("body", [{}, {"listing": "abc"}, {"listing": 0}, {"listing": 999999}])
def test_favorite_bad_input(auth_client, body):
    response = auth_client(UserFactory()).post("/api/v1/favorites/", body, format="json")

    assert response.status_code in (400, 404)
    assert isinstance(response.json()["detail"], str)
    assert not Favorite.objects.exists()


def test_cannot_favorite_an_invisible_draft(auth_client):
    draft = ListingFactory(status="draft")

    response = auth_client(UserFactory()).post("/api/v1/favorites/", {"listing": draft.pk}, format="json")

    assert response.status_code == 404


def test_favorites_show_a_home_that_went_under_offer(auth_client):
    customer = UserFactory()
    listing = ListingFactory()
    Favorite.objects.create(user=customer, listing=listing)
    Listing.objects.filter(pk=listing.pk).update(status="pending")

    results = auth_client(customer).get("/api/v1/favorites/").json()["results"]

    assert results[0]["listing"]["status"] == "pending"
