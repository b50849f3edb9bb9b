"""Homes for sale or rent, their photos, price history, favorites and who viewed them."""

from django.conf import settings
from django.contrib.gis.db import models as gis_models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import validate_time_zone


class Feature(models.TextChoices):
    """The small vocabulary of features a home can have (slugs are part of the API)."""

    GARAGE = "garage", _("Garage")
    GARDEN = "garden", _("Garden")
    POOL = "pool", _("Pool")
    BALCONY = "balcony", _("Balcony")
    TERRACE = "terrace", _("Terrace")
    ELEVATOR = "elevator", _("Elevator")
    PARKING = "parking", _("Parking")
    AIR_CONDITIONING = "air-conditioning", _("Air conditioning")
    FIREPLACE = "fireplace", _("Fireplace")
    PETS_ALLOWED = "pets-allowed", _("Pets allowed")
    FURNISHED = "furnished", _("Furnished")
    CELLAR = "cellar", _("Cellar")
    SEA_VIEW = "sea-view", _("Sea view")
    ACCESSIBLE = "accessible", _("Step-free access")


def deployment_currency():
    return settings.CURRENCY


class Listing(models.Model):
    class ListingType(models.TextChoices):
        SALE = "sale", _("For sale")
        RENT = "rent", _("For rent")

    class RentPeriod(models.TextChoices):
        MONTH = "month", _("per month")
        WEEK = "week", _("per week")

    class PropertyType(models.TextChoices):
        HOUSE = "house", _("House")
        APARTMENT = "apartment", _("Apartment")
        CONDO = "condo", _("Condo")
        TOWNHOUSE = "townhouse", _("Townhouse")
        LAND = "land", _("Land")
        COMMERCIAL = "commercial", _("Commercial")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PENDING = "pending", _("Under offer")
        SOLD = "sold", _("Sold")
        RENTED = "rented", _("Rented")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    # Listings outlive an agent's account (it is anonymised, never deleted): PROTECT.
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="listings",
                              verbose_name=_("agent"))
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), max_length=10_000, blank=True)
    listing_type = models.CharField(_("listing type"), max_length=8, choices=ListingType.choices)
    # null, not "": the API says null for a sale, and a constraint ties it to the type.
    rent_period = models.CharField(_("rent period"), max_length=8, choices=RentPeriod.choices,  # noqa: DJ001
                                   null=True, blank=True)
    property_type = models.CharField(_("property type"), max_length=16, choices=PropertyType.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default=deployment_currency)
    bedrooms = models.PositiveSmallIntegerField(_("bedrooms"), default=0)
    bathrooms = models.PositiveSmallIntegerField(_("bathrooms"), default=0)
    area_sqm = models.DecimalField(_("area (m²)"), max_digits=10, decimal_places=2, null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(_("year built"), null=True, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100)
    region = models.CharField(_("region"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 code, e.g. FR."))
    # A geography wraps out-of-range coordinates instead of refusing them, so the services
    # validate latitude/longitude before they build the point (listings.services.point).
    location = gis_models.PointField(_("location"), geography=True, srid=4326)
    time_zone = models.CharField(_("time zone"), max_length=64, validators=[validate_time_zone])
    features = ArrayField(models.CharField(max_length=32, choices=Feature.choices), default=list, blank=True,
                          verbose_name=_("features"))
    close_price = models.DecimalField(_("close price"), max_digits=14, decimal_places=2, null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    view_count = models.PositiveIntegerField(_("views"), default=0, editable=False)
    # The MLS/RESO ListingKey of an imported listing: imports are idempotent by it.
    external_key = models.CharField(_("external key"), max_length=64, null=True, blank=True,
                                    unique=True)  # null: many listings have none, unique among those that do
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Weighted text for keyword search (title A; city, region, street, features B; description
    # C), kept current by a database trigger (migration listings 0002), so bulk writes get it too.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
        ordering = ["-published_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="listing_price_not_negative"),
            models.CheckConstraint(condition=Q(close_price__isnull=True) | Q(close_price__gte=0),
                                   name="listing_close_price_not_negative"),
            models.CheckConstraint(condition=Q(area_sqm__isnull=True) | Q(area_sqm__gt=0),
                                   name="listing_area_positive"),
            models.CheckConstraint(condition=Q(year_built__isnull=True) | Q(year_built__gte=1500, year_built__lte=2100),
                                   name="listing_year_built_plausible"),
            models.CheckConstraint(
                condition=(Q(listing_type="rent", rent_period__isnull=False)
                           | Q(listing_type="sale", rent_period__isnull=True)),
                name="listing_rent_period_only_for_rent"),
            models.CheckConstraint(
                condition=~Q(status="sold") | Q(listing_type="sale"), name="listing_sold_only_for_sale"),
            models.CheckConstraint(
                condition=~Q(status="rented") | Q(listing_type="rent"), name="listing_rented_only_for_rent"),
            models.CheckConstraint(condition=Q(status__in=["draft", "withdrawn"]) | Q(published_at__isnull=False),
                                   name="listing_published_has_date"),
        ]
        indexes = [
            models.Index(fields=["status", "-published_at"], name="listing_status_published_idx"),
            models.Index(fields=["agent", "status"], name="listing_agent_status_idx"),
            models.Index(fields=["status", "listing_type", "property_type", "price"], name="listing_filter_idx"),
            models.Index(fields=["city"], name="listing_city_idx"),
            GinIndex(fields=["features"], name="listing_features_gin"),
            GinIndex(fields=["search_vector"], name="listing_search_vector_gin", condition=Q(status="active")),
            # Search facets and counts read these columns of every active match: an index-only
            # scan instead of the wide heap (measured 184 → 59 ms over 72,000 active listings).
            models.Index(fields=["listing_type", "property_type", "bedrooms", "price"],
                         include=["features", "bathrooms", "area_sqm", "year_built"],
                         condition=Q(status="active"), name="listing_search_facets_idx"),
        ]

    def __str__(self):
        return self.title

    @property
    def latitude(self):
        return self.location.y if self.location else None

    @property
    def longitude(self):
        return self.location.x if self.location else None

    @property
    def is_public(self):
        return self.status != self.Status.DRAFT and self.status != self.Status.WITHDRAWN


def photo_path(instance, filename):
    return f"listings/{instance.listing_id}/{filename}"


def rendition_path(instance, filename):
    return f"listings/{instance.listing_id}/renditions/{filename}"


class ListingPhoto(models.Model):
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="photos",
                                verbose_name=_("listing"))
    # The upload, re-encoded without metadata by realio.images.image_check.
    image = models.ImageField(_("image"), upload_to=photo_path, width_field="width", height_field="height")
    width = models.PositiveIntegerField(_("width"), default=0, editable=False)
    height = models.PositiveIntegerField(_("height"), default=0, editable=False)
    # Made by a Celery task after upload; until then pages fall back to the image itself.
    thumbnail = models.ImageField(_("thumbnail"), upload_to=rendition_path, blank=True, editable=False)
    large = models.ImageField(_("large"), upload_to=rendition_path, blank=True, editable=False)
    caption = models.CharField(_("caption"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["listing", "position"], name="photo_listing_position_idx")]

    def __str__(self):
        return self.caption or f"{self.listing_id}/{self.pk}"

    @property
    def thumbnail_url(self):
        return (self.thumbnail or self.image).url

    @property
    def large_url(self):
        return (self.large or self.image).url


class PriceChange(models.Model):
    """One row per price a listing has had, written by the listing services."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="price_changes")
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)
    changed_at = models.DateTimeField(_("changed"), auto_now_add=True)

    class Meta:
        verbose_name = _("price change")
        verbose_name_plural = _("price history")
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["listing", "changed_at"], name="price_listing_changed_idx")]

    def __str__(self):
        return f"{self.price} ({self.changed_at:%Y-%m-%d})"


class Favorite(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favorites")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="favorites")
    created_at = models.DateTimeField(_("saved"), auto_now_add=True)

    class Meta:
        verbose_name = _("favorite")
        verbose_name_plural = _("favorites")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "listing"], name="favorite_once_per_user")]

    def __str__(self):
        return f"{self.user_id} ♥ {self.listing_id}"


class RecentlyViewed(models.Model):
    """The last time a signed-in person viewed a listing, written in batches from Redis."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recently_viewed")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    viewed_at = models.DateTimeField(_("viewed"))

    class Meta:
        verbose_name = _("recently viewed")
        verbose_name_plural = _("recently viewed")
        constraints = [models.UniqueConstraint(fields=["user", "listing"], name="recently_viewed_once")]
        indexes = [models.Index(fields=["user", "-viewed_at"], name="recently_viewed_user_idx")]

    def __str__(self):
        return f"{self.user_id} viewed {self.listing_id}"
