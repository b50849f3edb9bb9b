"""The recommender: evaluation against popularity, fold-in, filters, cold start, promotion and
the atomic switch of the serving model."""

import json

import numpy as np
import pytest
from django.contrib.gis.geos import Polygon
from django.core.management import call_command

from accounts.tests.factories import UserFactory
from bookings.tests.factories import ViewingFactory
from listings import services as listing_services
from listings.models import Favorite, Listing
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent
from realio.redis import get_redis
from recommendations import handlers, recommender, serving, store, training
from recommendations.models import Interaction, ModelVersion
from recommendations.tests.factories import BERLIN, PARIS, homes, interact, seeded_world
from search.models import SavedSearch

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status


def ids(picked):
    return [pk for pk, _score in picked]


# --- quality ------------------------------------------------------------------------------------

def test_the_model_beats_popularity_by_the_goal_on_a_time_split():
    seeded_world()

    _model, _split, metrics, *_ = training.recommender_holdout(holdout=0.2)

    model, baseline = metrics["model"], metrics["popularity"]
    assert model["users"] >= 30
    assert model["ndcg@10"] >= 2 * baseline["ndcg@10"]
    assert model["precision@10"] > baseline["precision@10"]
    assert model["recall@10"] > baseline["recall@10"]
    assert model["coverage"] > baseline["coverage"]


def test_evaluate_recommendations_prints_a_table_and_writes_json(tmp_path, capsys):
    seeded_world(listings=300, users=60)
    report = tmp_path / "reco.json"

    call_command("evaluate_recommendations", json=str(report))

    out = capsys.readouterr().out
    assert "| NDCG@10 |" in out and "| precision@10 |" in out and "popularity" in out
    data = json.loads(report.read_text())
    assert data["goal"]["met"] is True
    assert data["ndcg_ratio"] >= 2


# --- training, promotion, serving switch ------------------------------------------------------

def test_training_promotes_a_first_model_that_then_serves(api_client, django_capture_on_commit_callbacks):
    seeded_world(listings=300, users=60)

    with django_capture_on_commit_callbacks(execute=True):
        row = training.train_recommender()

    assert row.status == Status.PROMOTED and row.promoted
    assert (store.artefact_path("recommender", row.version)).exists()
    assert row.metrics["model"]["ndcg@10"] > 0
    assert get_redis().get(store.promoted_key("recommender")).decode() == row.version
    response = api_client.get("/api/v1/recommendations/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 10 and all(isinstance(item["score"], float) for item in results)
    assert {item["status"] for item in results} == {"active"}


def test_a_worse_model_is_not_promoted_and_the_current_one_keeps_serving():
    seeded_world(listings=300, users=60)
    good = training.train_recommender()

    worse = training.train_recommender(blend=(0.0, 0.0, 0.0))  # ranks nothing: scores all equal

    assert worse.status == Status.REJECTED and not worse.promoted
    assert worse.metrics["comparison"]["current_version"] == good.version
    assert store.promoted_row("recommender").version == good.version
    assert store.current("recommender").version == good.version


def test_a_failed_training_is_recorded_and_changes_nothing(monkeypatch):
    seeded_world(listings=300, users=60)
    good = training.train_recommender()

    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(recommender, "fit", broken)
    failed = training.train_recommender()

    assert failed.status == Status.FAILED and "no room" in failed.error
    assert store.current("recommender").version == good.version


def test_every_process_switches_to_a_newly_promoted_model_without_restart(django_capture_on_commit_callbacks):
    seeded_world(listings=300, users=60)
    with django_capture_on_commit_callbacks(execute=True):
        first = training.train_recommender()
    serving_before = store.current("recommender")
    assert serving_before.version == first.version

    with django_capture_on_commit_callbacks(execute=True):
        second = training.train_recommender()  # same data: not worse, so promoted

    assert second.status == Status.PROMOTED
    assert ModelVersion.objects.filter(kind="recommender", promoted=True).count() == 1
    assert store.current("recommender").version == second.version
    # a process that has never loaded a model (or lost the Redis key) finds it in the database
    store.forget()
    get_redis().delete(store.promoted_key("recommender"))
    assert store.current("recommender").version == second.version
    # the model object a request already holds is untouched by the switch
    assert serving_before.version == first.version


def test_before_any_model_popular_homes_are_served_and_estimates_are_404(api_client):
    popular = ListingFactory(view_count=50)
    ListingFactory(view_count=1)

    response = api_client.get("/api/v1/recommendations/")

    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == popular.pk
    assert api_client.get(f"/api/v1/listings/{popular.pk}/estimate/").status_code == 404


# --- fold-in, filters, cold start ---------------------------------------------------------------

@pytest.fixture
def two_cities():
    """Twenty homes in Paris and twenty in Berlin; a trained model in which a crowd likes each city."""
    paris = homes(20, where=PARIS, city="Paris")
    berlin = homes(20, where=BERLIN, city="Berlin", price=900, listing_type="rent")
    crowd = [UserFactory() for _ in range(8)]
    for n, person in enumerate(crowd):
        for home in (paris if n % 2 else berlin)[n: n + 8]:
            interact(person, home, "view")
    row = training.train_recommender()
    assert row.status == Status.PROMOTED, row.error
    return paris, berlin


def test_fold_in_changes_a_persons_results_right_after_new_favorites(two_cities, django_capture_on_commit_callbacks):
    paris, berlin = two_cities
    person = UserFactory()
    for home in paris[:3]:
        interact(person, home, "view")
    serving.refresh_user(person.pk)
    before = ids(serving.recommend(person))
    assert set(before) <= {home.pk for home in paris}

    with django_capture_on_commit_callbacks(execute=True):
        for home in berlin[:4]:
            listing_services.favorite_add(user=person, listing_id=home.pk)
        for published in OutboxEvent.objects.filter(type="listing.favorited"):
            handlers.record_favorite(published)

    after = ids(serving.recommend(person))
    berlin_ids = {home.pk for home in berlin}
    assert sum(pk in berlin_ids for pk in after) > sum(pk in berlin_ids for pk in before)
    assert not set(after) & {home.pk for home in berlin[:4]}  # favorited: not recommended


def test_inactive_favorited_and_booked_homes_are_never_recommended(two_cities):
    paris, _berlin = two_cities
    person = UserFactory()
    for home in paris[:3]:
        interact(person, home, "view")
    first = ids(serving.recommend(person))
    sold, favorite, booked = (Listing.objects.get(pk=pk) for pk in first[:3])

    Listing.objects.filter(pk=sold.pk).update(status="sold")
    Favorite.objects.create(user=person, listing=favorite)  # before any event reaches the model
    ViewingFactory(listing=booked, customer=person)

    again = ids(serving.recommend(person))
    assert not {sold.pk, favorite.pk, booked.pk} & set(again)
    assert {home.pk for home in paris[:3]}.isdisjoint(again)  # already seen


def test_results_are_spread_over_buildings(two_cities):
    paris, _berlin = two_cities
    Listing.objects.filter(pk__in=[home.pk for home in paris]).update(street="1 rue Unique", postal_code="75001")
    person = UserFactory()
    interact(person, paris[0], "favorite")

    picked = ids(serving.recommend(person, limit=3))

    assert len(picked) == 3  # filled from the popular homes elsewhere when one building has them all
    assert sum(pk in {home.pk for home in paris} for pk in picked) == 1


def test_cold_start_uses_the_area_and_price_band_of_saved_searches(two_cities):
    paris, berlin = two_cities
    person = UserFactory()
    SavedSearch.objects.create(user=person, name="Berlin rentals", query={}, listing_types=["rent"], max_price=1000,
                               area=Polygon.from_bbox((13.0, 52.3, 13.8, 52.7)))

    picked = ids(serving.recommend(person))

    assert picked and set(picked) <= {home.pk for home in berlin}


def test_anonymous_visitors_get_popular_homes(two_cities, api_client):
    response = api_client.get("/api/v1/recommendations/?limit=5")
    assert response.status_code == 200
    model = store.current("recommender")
    popular = [int(model.item_ids[row]) for row in model.popular_order[:20]]
    assert [item["id"] for item in response.json()["results"]] == [pk for pk in popular if pk][:5]


def test_a_new_listing_gets_content_exposure_before_it_has_interactions(two_cities):
    paris, _berlin = two_cities
    person = UserFactory()
    for home in paris[:6]:
        interact(person, home, "favorite")
    newcomer = homes(1, where=PARIS, city="Paris", title="Newly listed flat")[0]

    candidates = dict(serving.compute_candidates(store.current("recommender"), person.pk))

    assert newcomer.pk in candidates
    similar = serving.similar(newcomer)
    assert similar and set(similar) <= {home.pk for home in paris}


def test_similar_homes_are_active_same_deal_and_same_city(two_cities, api_client):
    paris, berlin = two_cities
    Listing.objects.filter(pk=paris[1].pk).update(status="withdrawn")

    response = api_client.get(f"/api/v1/listings/{paris[0].pk}/similar/")

    assert response.status_code == 200
    found = [item["id"] for item in response.json()["results"]]
    assert found and set(found) <= {home.pk for home in paris[2:]}
    assert "count" not in response.json()


@pytest.mark.parametrize("path", ["/api/v1/listings/999999/similar/", "/api/v1/listings/999999/estimate/"])
def test_unknown_listings_are_404(api_client, path):
    assert api_client.get(path).status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=51", "limit=ten", "limit=1.5"])
def test_bad_limits_are_400(api_client, query):
    home = ListingFactory()
    for path in ("/api/v1/recommendations/", f"/api/v1/listings/{home.pk}/similar/"):
        response = api_client.get(f"{path}?{query}")
        assert response.status_code == 400 and "limit" in response.json()["errors"]


def test_a_draft_is_not_visible_through_similar(api_client):
    draft = ListingFactory(status="draft")
    assert api_client.get(f"/api/v1/listings/{draft.pk}/similar/").status_code == 404


def test_the_blend_is_tuned_on_validation_data():
    seeded_world(listings=300, users=60)
    model = recommender.fit(recommender.content_base(recommender.load_listings()), recommender.load_interactions())
    assert model.metrics["validation"]["grid"]
    assert tuple(model.blend) in recommender.BLEND_GRID
    assert np.isfinite(model.metrics["validation"]["ndcg@10"])


def test_interactions_are_exported_and_erased_with_the_account(auth_client):
    from accounts import services as account_services

    person, home = UserFactory(), ListingFactory()
    interact(person, home, "favorite")

    export = auth_client(person).get("/api/v1/me/export/").json()
    assert [(item["listing"], item["kind"]) for item in export["interactions"]] == [(home.pk, "favorite")]

    account_services.user_delete(user=person)
    assert not Interaction.objects.exists()


def test_cached_listing_bodies_follow_changes_and_hosts(two_cities, api_client, settings):
    settings.RECO_LISTING_CACHE_SECONDS = 600
    paris, _berlin = two_cities
    first = api_client.get(f"/api/v1/listings/{paris[0].pk}/similar/").json()["results"]
    neighbour = Listing.objects.get(pk=first[0]["id"])

    neighbour.title = "Renamed flat"
    neighbour.save()
    again = api_client.get(f"/api/v1/listings/{paris[0].pk}/similar/", HTTP_HOST="localhost").json()["results"]

    assert again[0]["id"] == neighbour.pk and again[0]["title"] == "Renamed flat"
    assert again[0]["url"] == f"http://localhost/listings/{neighbour.pk}/"
    assert [item["id"] for item in again] == [item["id"] for item in first]


def test_listing_bodies_are_exactly_the_listing_serializers(api_client):
    from django.core.files.base import ContentFile

    from listings.api import ListingSerializer
    from listings.tests.factories import image_upload

    home = ListingFactory(listing_type="rent", area_sqm=None, close_price=None, features=["garden"])
    sold = ListingFactory(status="sold", close_price="301000.50", closed_at=home.created_at)
    upload = image_upload()
    home.photos.create(image=ContentFile(upload.read(), name="a.png"), caption="Front", position=0)

    for listing in Listing.objects.filter(pk__in=[home.pk, sold.pk]).prefetch_related("photos", "price_changes"):
        assert serving.listing_body(listing) == dict(ListingSerializer(listing).data)


def test_bodies_are_warmed_after_promotion_and_forgotten_when_photos_change(two_cities, settings):
    from django.core.cache import cache

    settings.RECO_LISTING_CACHE_SECONDS = 600
    paris, _berlin = two_cities
    assert serving.warm_all_bodies() == Listing.objects.filter(status="active").count()
    home = Listing.objects.get(pk=paris[0].pk)
    key = serving._body_key(home.pk, home.updated_at.timestamp())
    assert cache.get(key)["title"] == home.title

    handlers.forget_changed_photos(OutboxEvent(type="listing.updated", payload={
        "listing_id": home.pk, "fields": ["photos"]}))

    assert cache.get(key) is None
