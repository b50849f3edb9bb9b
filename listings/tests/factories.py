import io
from decimal import Decimal

import factory
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from accounts.tests.factories import AgentFactory
from listings.models import Listing, PriceChange


class ListingFactory(factory.django.DjangoModelFactory):
    """An active listing in Paris unless told otherwise (with its first price in the history)."""

    class Meta:
        model = Listing
        skip_postgeneration_save = True

    agent = factory.SubFactory(AgentFactory)
    title = factory.Sequence(lambda n: f"Bright flat number {n}")
    description = "Quiet street, close to the metro."
    listing_type = Listing.ListingType.SALE
    property_type = Listing.PropertyType.APARTMENT
    status = Listing.Status.ACTIVE
    price = Decimal("350000.00")
    currency = "EUR"
    bedrooms = 2
    bathrooms = 1
    area_sqm = Decimal("65.00")
    year_built = 1985
    street = "12 rue de la Paix"
    city = "Paris"
    region = "Île-de-France"
    postal_code = "75002"
    country = "FR"
    location = factory.LazyFunction(lambda: Point(2.3312, 48.8690, srid=4326))
    time_zone = "Europe/Paris"
    features = factory.LazyFunction(lambda: ["balcony", "elevator"])
    published_at = factory.LazyAttribute(lambda o: None if o.status in ("draft", "withdrawn") else timezone.now())
    rent_period = factory.LazyAttribute(lambda o: "month" if o.listing_type == "rent" else None)

    @factory.post_generation
    def first_price(obj, create, extracted, **kwargs):
        if create:
            PriceChange.objects.create(listing=obj, price=obj.price)


def image_upload(fmt="PNG", size=(64, 48), name=None, color=(90, 140, 200)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return SimpleUploadedFile(name or f"photo.{fmt.lower()}", buffer.getvalue())
