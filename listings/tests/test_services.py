"""Listing rules: the status workflow, photos (checks, order, renditions), views in batches."""

import io
import time
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from PIL import Image

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from listings import services
from listings.models import Listing, ListingPhoto, RecentlyViewed
from listings.tests.factories import ListingFactory, image_upload
from realio.errors import ApplicationError, Conflict, Forbidden, NotFound, TooLarge
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db


# --- workflow ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("draft", "active", True), ("draft", "withdrawn", True), ("draft", "pending", False),
        ("draft", "sold", False), ("active", "pending", True), ("active", "sold", True),
        ("active", "withdrawn", True), ("active", "draft", False), ("pending", "active", True),
        ("pending", "sold", True), ("withdrawn", "active", True), ("withdrawn", "draft", True),
        ("sold", "active", False), ("sold", "withdrawn", False),
    ],
)
def test_sale_workflow(start, target, allowed):
    listing = ListingFactory(status=start)

    if allowed:
        services.listing_set_status(listing=listing, by=listing.agent, status=target)
        listing.refresh_from_db()
        assert listing.status == target
    else:
        with pytest.raises(Conflict):
            services.listing_set_status(listing=listing, by=listing.agent, status=target)
        listing.refresh_from_db()
        assert listing.status == start


def test_a_rental_is_rented_not_sold_and_can_come_back():
    listing = ListingFactory(listing_type="rent", price="1200")

    with pytest.raises(Conflict):
        services.listing_set_status(listing=listing, by=listing.agent, status="sold")
    services.listing_set_status(listing=listing, by=listing.agent, status="rented", close_price="1150")
    listing.refresh_from_db()
    assert listing.close_price == Decimal("1150") and listing.closed_at
    services.listing_set_status(listing=listing, by=listing.agent, status="active")
    listing.refresh_from_db()
    assert listing.status == "active" and listing.close_price is None


def test_publishing_sets_published_at_once_and_publishes_one_event():
    listing = ListingFactory(status="draft")

    services.listing_set_status(listing=listing, by=listing.agent, status="active")
    listing.refresh_from_db()
    first = listing.published_at
    services.listing_set_status(listing=listing, by=listing.agent, status="withdrawn")
    services.listing_set_status(listing=listing, by=listing.agent, status="active")
    listing.refresh_from_db()

    assert first and listing.published_at == first
    assert OutboxEvent.objects.filter(type="listing.published").count() == 1


def test_unverified_agents_cannot_publish_where_verification_is_required(settings):
    settings.AGENT_VERIFICATION_REQUIRED = True
    listing = ListingFactory(status="draft")

    with pytest.raises(Forbidden):
        services.listing_set_status(listing=listing, by=listing.agent, status="active")

    from accounts.services import agent_verify

    agent_verify(agent=listing.agent, by=StaffFactory())
    services.listing_set_status(listing=listing, by=listing.agent, status="active")
    listing.refresh_from_db()
    assert listing.status == "active"


def test_the_database_refuses_what_must_never_hold():
    listing = ListingFactory()
    for update in ({"price": -1}, {"area_sqm": 0}, {"status": "rented"}, {"listing_type": "rent"},
                   {"status": "active", "published_at": None}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Listing.objects.filter(pk=listing.pk).update(**update)



def test_coordinates_out_of_range_are_refused_not_wrapped():
    # PostGIS's geography silently wraps POINT(10 95) to POINT(10 85): the service must refuse.
    listing = ListingFactory()
    for latitude, longitude in ((95, 10), (45, 200), (-90.5, 0)):
        with pytest.raises(ApplicationError):
            services.listing_update(listing=listing, by=listing.agent, latitude=latitude, longitude=longitude)
    listing.refresh_from_db()
    assert (listing.latitude, listing.longitude) == pytest.approx((48.869, 2.3312))


def test_customers_cannot_create():
    with pytest.raises(Forbidden):
        services.listing_create(agent=UserFactory(), latitude=48.85, longitude=2.35, title="x",
                                listing_type="sale", property_type="house", price=1, city="Paris", country="FR")


# --- photos -----------------------------------------------------------------------------------

def test_photos_are_checked_by_content():
    listing = ListingFactory()

    with pytest.raises(ApplicationError):
        services.photo_add(listing=listing, by=listing.agent,
                           upload=SimpleUploadedFile("house.png", b"just some text, not an image"))
    assert not ListingPhoto.objects.exists()


def test_oversized_photo_is_413(settings):
    settings.IMAGE_MAX_BYTES = 1000
    listing = ListingFactory()

    with pytest.raises(TooLarge):
        services.photo_add(listing=listing, by=listing.agent, upload=image_upload(size=(400, 400), fmt="PNG"))


def test_decompression_bomb_is_refused():
    # A tiny file that claims an enormous canvas: refused before it is decoded.
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG", optimize=True)
    assert buffer.tell() < 200_000
    listing = ListingFactory()

    with pytest.raises(ApplicationError):
        services.photo_add(listing=listing, by=listing.agent, upload=SimpleUploadedFile("bomb.png", buffer.getvalue()))
    assert not ListingPhoto.objects.exists()


def test_only_the_owner_adds_photos():
    listing = ListingFactory()

    with pytest.raises(Forbidden):
        services.photo_add(listing=listing, by=AgentFactory(), upload=image_upload())
    with pytest.raises(NotFound):
        services.photo_add(listing=ListingFactory(status="draft"), by=AgentFactory(), upload=image_upload())


def test_photo_order_caption_and_delete():
    listing = ListingFactory()
    photos = [services.photo_add(listing=listing, by=listing.agent, upload=image_upload(name=f"{i}.png"))
              for i in range(3)]

    services.photo_update(photo_id=photos[2].pk, listing_id=listing.pk, by=listing.agent, position=0,
                          caption="Front door")
    assert list(listing.photos.values_list("pk", flat=True)) == [photos[2].pk, photos[0].pk, photos[1].pk]
    assert listing.photos.first().caption == "Front door"

    services.photo_delete(photo_id=photos[0].pk, listing_id=listing.pk, by=listing.agent)
    assert list(listing.photos.values_list("pk", "position")) == [(photos[2].pk, 0), (photos[1].pk, 1)]
    with pytest.raises(NotFound):
        services.photo_delete(photo_id=photos[0].pk, listing_id=listing.pk, by=listing.agent)


def test_renditions_are_made_and_remaking_them_is_a_no_op():
    listing = ListingFactory()
    photo = services.photo_add(listing=listing, by=listing.agent, upload=image_upload(size=(2400, 1600)))

    services.photo_make_renditions(photo_id=photo.pk)
    photo.refresh_from_db()
    thumbnail, large = photo.thumbnail.name, photo.large.name
    services.photo_make_renditions(photo_id=photo.pk)
    photo.refresh_from_db()

    assert Image.open(photo.thumbnail.path).size == services.THUMBNAIL_SIZE
    assert max(Image.open(photo.large.path).size) == 1600
    assert (photo.thumbnail.name, photo.large.name) == (thumbnail, large)
    assert photo.thumbnail_url != photo.image.url


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery
def test_the_worker_makes_renditions_after_upload(celery_worker):
    listing = ListingFactory()

    photo = services.photo_add(listing=listing, by=listing.agent, upload=image_upload(size=(900, 700)))

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        photo.refresh_from_db()
        if photo.thumbnail and photo.large:
            break
        time.sleep(0.1)
    assert photo.thumbnail and photo.large
    assert default_storage.exists(photo.thumbnail.name)


@pytest.mark.django_db(transaction=True)
def test_deleting_a_listing_removes_its_files():
    listing = ListingFactory()
    photo = services.photo_add(listing=listing, by=listing.agent, upload=image_upload())
    services.photo_make_renditions(photo_id=photo.pk)
    photo.refresh_from_db()
    names = [photo.image.name, photo.thumbnail.name, photo.large.name]
    assert all(default_storage.exists(name) for name in names)

    services.listing_delete(listing=listing, by=listing.agent)

    assert not any(default_storage.exists(name) for name in names)


# --- views --------------------------------------------------------------------------------------

def test_views_are_counted_in_batches_once_per_viewer():
    listing = ListingFactory()
    other = ListingFactory()
    customer = UserFactory()

    assert services.view_record(listing_id=listing.pk, user_id=customer.pk)
    assert services.view_record(listing_id=listing.pk, user_id=customer.pk)  # a reload: dropped by the flush
    assert services.view_record(listing_id=listing.pk, session_key="anon-session")
    assert services.view_record(listing_id=other.pk, user_id=customer.pk)
    listing.refresh_from_db()
    assert listing.view_count == 0  # nothing written on the request path

    written = services.views_flush()

    assert written == 3
    listing.refresh_from_db()
    other.refresh_from_db()
    assert (listing.view_count, other.view_count) == (2, 1)
    assert set(RecentlyViewed.objects.filter(user=customer).values_list("listing_id", flat=True)) == {
        listing.pk, other.pk}
    viewed = OutboxEvent.objects.filter(type="listing.viewed")
    assert viewed.count() == 3
    assert "anon-session" not in str(list(viewed.values_list("payload", flat=True)))
    assert services.views_flush() == 0
    # Still within the half hour: the same viewers' views are repeats; a new viewer counts.
    services.view_record(listing_id=listing.pk, user_id=customer.pk)
    services.view_record(listing_id=listing.pk, session_key="anon-session")
    services.view_record(listing_id=listing.pk, session_key="other-session")
    assert services.views_flush() == 1
    listing.refresh_from_db()
    assert listing.view_count == 3


def test_a_batch_processed_again_after_a_crash_is_not_taken_for_repeats(monkeypatch):
    listing = ListingFactory()
    customer = UserFactory()
    services.view_record(listing_id=listing.pk, user_id=customer.pk)

    def crash(views):
        raise RuntimeError("worker killed before the batch committed")

    original = services._views_write
    monkeypatch.setattr(services, "_views_write", crash)
    with pytest.raises(RuntimeError):
        services.views_flush()  # the viewer was marked, nothing was written
    monkeypatch.setattr(services, "_views_write", original)

    assert services.views_flush() == 1
    listing.refresh_from_db()
    assert listing.view_count == 1


def test_views_of_callers_without_account_or_session_are_counted_without_events():
    listing = ListingFactory()
    services.view_record(listing_id=listing.pk)
    services.view_record(listing_id=listing.pk)
    services.view_record(listing_id=listing.pk, session_key="a-session")

    assert services.views_flush() == 3

    listing.refresh_from_db()
    assert listing.view_count == 3
    viewed = list(OutboxEvent.objects.filter(type="listing.viewed").values_list("payload", flat=True))
    assert len(viewed) == 1 and viewed[0]["session"]


def test_views_of_unpublished_listings_are_not_counted():
    draft = ListingFactory(status=Listing.Status.DRAFT, published_at=None)
    services.view_record(listing_id=draft.pk, user_id=draft.agent_id)
    services.views_flush()
    draft.refresh_from_db()
    assert draft.view_count == 0


def test_views_of_a_deleted_listing_are_dropped():
    listing = ListingFactory()
    services.view_record(listing_id=listing.pk, user_id=UserFactory().pk)
    Listing.objects.filter(pk=listing.pk).delete()

    assert services.views_flush() == 1
    assert not OutboxEvent.objects.filter(type="listing.viewed").exists()


def test_recently_viewed_selector_orders_by_last_view():
    from listings import selectors

    customer = UserFactory()
    first, second = ListingFactory(), ListingFactory()
    services.view_record(listing_id=first.pk, user_id=customer.pk)
    services.views_flush()
    services.view_record(listing_id=second.pk, user_id=customer.pk)
    services.views_flush()

    assert [listing.pk for listing in selectors.recently_viewed_by(customer)] == [second.pk, first.pk]
