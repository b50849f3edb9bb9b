"""The listing bodies built directly (listings/bodies.py) equal the API serializer's."""

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.tests.factories import AgentFactory
from listings import services
from listings.api import ListingSerializer
from listings.bodies import listing_body, published_bodies
from listings.models import Listing
from listings.tests.factories import ListingFactory, image_upload

pytestmark = pytest.mark.django_db


def test_bodies_read_as_rows_equal_the_serializer_and_listing_body():
    gone = AgentFactory(first_name="Ada", last_name="Gone")
    home = ListingFactory(listing_type="rent", area_sqm=None, close_price=None, features=["garden", "parking"])
    sold = ListingFactory(agent=gone, status="sold", close_price="301000.50", closed_at=home.created_at)
    services.listing_update(listing=home, by=home.agent, price="1200")
    services.listing_update(listing=home, by=home.agent, price="1100")
    photo = home.photos.create(image=ContentFile(image_upload().read(), name="a.png"), caption="Front", position=1)
    home.photos.create(image=ContentFile(image_upload().read(), name="b.png"), caption="Back", position=0)
    home.photos.create(image=ContentFile(image_upload().read(), name="salle à manger #2.png"), position=2)
    photo.large = ContentFile(image_upload().read(), name="a-large.png")
    photo.save()
    type(gone).objects.filter(pk=gone.pk).update(deleted_at=timezone.now())  # shows as "deleted user"
    draft = ListingFactory(status=Listing.Status.DRAFT, published_at=None)

    bodies = published_bodies([home.pk, sold.pk, draft.pk, 999999])

    assert set(bodies) == {home.pk, sold.pk}  # published ones only
    for listing in Listing.objects.filter(pk__in=[home.pk, sold.pk]).select_related("agent").prefetch_related(
            "photos", "price_changes"):
        assert bodies[listing.pk] == listing_body(listing) == dict(ListingSerializer(listing).data)
    assert [row["caption"] for row in bodies[home.pk]["photos"]] == ["Back", "Front", ""]
    assert "%C3%A0" in bodies[home.pk]["photos"][2]["url"] and "#" not in bodies[home.pk]["photos"][2]["url"]
    assert "large" in bodies[home.pk]["photos"][1]["url"]
    assert len(bodies[home.pk]["price_history"]) == 3
    assert bodies[sold.pk]["agent"]["name"] == "deleted user"
