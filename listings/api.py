"""Listings API (`/api/v1/`): listings, their photos, and favorites (DESIGN.md section 5)."""

import datetime
import functools
import hashlib
import time
from decimal import Decimal

import django_filters
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from accounts.models import validate_time_zone
from listings import selectors, services
from listings.bodies import absolute, listing_body, published_bodies
from listings.models import Feature, Listing
from realio import cache as versioned_cache
from realio.api import AwareDateTimeField
from realio.errors import ApplicationError


class PersonSerializer(serializers.Serializer):
    """A related person: {id, name}."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class PhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    caption = serializers.CharField(max_length=200, required=False, allow_blank=True)
    position = serializers.IntegerField(min_value=0, max_value=1000, required=False)

    def _absolute(self, url):
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_url(self, photo) -> str:
        return self._absolute(photo.large_url)

    def get_thumbnail_url(self, photo) -> str:
        return self._absolute(photo.thumbnail_url)


class PriceHistorySerializer(serializers.Serializer):
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    changed_at = serializers.DateTimeField()


class ListingSerializer(serializers.ModelSerializer):
    """The listing as every client reads it."""

    url = serializers.SerializerMethodField()
    latitude = serializers.FloatField(read_only=True)
    longitude = serializers.FloatField(read_only=True)
    features = serializers.ListField(child=serializers.CharField(), read_only=True)
    photos = PhotoSerializer(many=True, read_only=True)
    agent = PersonSerializer(read_only=True)
    price_history = PriceHistorySerializer(source="price_changes", many=True, read_only=True)

    class Meta:
        model = Listing
        fields = [
            "id", "url", "title", "description", "listing_type", "rent_period", "property_type", "status", "price",
            "currency", "bedrooms", "bathrooms", "area_sqm", "year_built", "street", "city", "region",
            "postal_code", "country", "latitude", "longitude", "time_zone", "features", "photos", "agent",
            "price_history", "close_price", "closed_at", "published_at", "view_count", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, listing) -> str:
        path = reverse("listing_page", args=[listing.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


def _year_ceiling():
    return datetime.date.today().year + 5


def body_cache_key(request, pk):
    # URLs in the body are absolute and times are in the viewer's time zone. The listing's cache
    # version is kept in the entry (realio.cache.get_or_compute), read in the same round trip.
    variant = hashlib.sha256(f"{request.build_absolute_uri('/')}|{timezone.get_current_timezone_name()}"
                             .encode()).hexdigest()[:16]
    return f"listing-api:{pk}:{variant}"


def active_listing_bodies(request, ids):
    """The API bodies of these listings that are active, in their order: from the cache that
    `retrieve` fills (one Redis round trip for the versions, bodies and view counts of the lot), the rest
    serialized in one go and kept. Versions are read before the data, as in `retrieve`."""
    if settings.LISTING_CACHE_SECONDS <= 0:
        found = selectors.with_details(selectors.listings_listed_for(None)).in_bulk(ids)
        return [absolute(listing_body(found[pk]), request) for pk in ids if pk in found]
    namespaces = {pk: versioned_cache.listing_namespace(pk) for pk in ids}
    keys = {pk: body_cache_key(request, pk) for pk in ids}
    cached = versioned_cache.cache.get_many([f"version:{namespace}" for namespace in namespaces.values()]
                                            + list(keys.values()) + [services.view_count_key(pk) for pk in ids])
    by_namespace = versioned_cache.versions_of(list(namespaces.values()), cached)
    versions = {pk: by_namespace[namespaces[pk]] for pk in ids}
    entries = {pk: versioned_cache.current_entry(cached.get(keys[pk]), versions[pk]) for pk in ids}
    bodies = {pk: entry[0] for pk, entry in entries.items() if entry is not None}
    missing = [pk for pk in ids if pk not in bodies]
    if missing:
        started = time.time()
        # The serializer's representation built directly from rows (listings/bodies.py; tests
        # keep them equal).
        computed = {pk: absolute(body, request) for pk, body in published_bodies(missing).items()}
        delta = (time.time() - started) / max(1, len(computed))
        expiry = time.time() + settings.LISTING_CACHE_SECONDS
        versioned_cache.cache.set_many({keys[pk]: versioned_cache.entry_of(body, delta, expiry, versions[pk])
                                        for pk, body in computed.items()}, settings.LISTING_CACHE_SECONDS)
        bodies.update(computed)
    active = [bodies[pk] for pk in ids if pk in bodies and bodies[pk]["status"] == Listing.Status.ACTIVE]
    return services.view_counts_overlay(active, cached)


class ListingWriteSerializer(serializers.Serializer):
    """What an agent sends to create or change a listing (shape only; rules are the services')."""

    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    listing_type = serializers.ChoiceField(choices=Listing.ListingType.choices)
    rent_period = serializers.ChoiceField(choices=Listing.RentPeriod.choices, required=False, allow_null=True)
    property_type = serializers.ChoiceField(choices=Listing.PropertyType.choices)
    status = serializers.ChoiceField(choices=Listing.Status.choices, required=False)
    price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    bedrooms = serializers.IntegerField(min_value=0, max_value=100, required=False)
    bathrooms = serializers.IntegerField(min_value=0, max_value=100, required=False)
    area_sqm = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.01"), required=False,
                                       allow_null=True)
    year_built = serializers.IntegerField(min_value=1500, required=False, allow_null=True)
    street = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", max_length=2,
                                     error_messages={"invalid": _("Use the two-letter ISO code, e.g. FR.")})
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    time_zone = serializers.CharField(max_length=64, required=False, validators=[validate_time_zone])
    features = serializers.ListField(child=serializers.ChoiceField(choices=Feature.choices), required=False,
                                     max_length=len(Feature.choices))
    close_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False,
                                           allow_null=True)
    closed_at = AwareDateTimeField(required=False, allow_null=True)

    def validate_year_built(self, value):
        if value is not None and value > _year_ceiling():
            raise serializers.ValidationError(_("A year no later than %(y)d.") % {"y": _year_ceiling()})
        return value


class ListingFilter(django_filters.FilterSet):
    listing_type = django_filters.ChoiceFilter(choices=Listing.ListingType.choices)
    property_type = django_filters.MultipleChoiceFilter(choices=Listing.PropertyType.choices)
    status = django_filters.ChoiceFilter(choices=Listing.Status.choices)
    city = django_filters.CharFilter(lookup_expr="iexact")
    country = django_filters.CharFilter(lookup_expr="iexact")
    agent = django_filters.NumberFilter(field_name="agent_id")
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    min_beds = django_filters.NumberFilter(field_name="bedrooms", lookup_expr="gte")
    min_baths = django_filters.NumberFilter(field_name="bathrooms", lookup_expr="gte")

    class Meta:
        model = Listing
        fields = []


class ListingViewSet(viewsets.ModelViewSet):
    serializer_class = ListingSerializer
    # Anyone reads; writing needs a signed-in user (401 otherwise); the services decide the rest.
    # DRF's own class, so the schema shows reads as open to anonymous callers.
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, OrderingFilter]
    filterset_class = ListingFilter
    ordering_fields = ["price", "published_at", "created_at", "area_sqm", "bedrooms"]
    ordering = ["-published_at", "-id"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        user = self.request.user
        base = selectors.listings_listed_for(user) if self.action == "list" else selectors.listings_visible_to(user)
        return selectors.with_details(base)

    def _write(self, partial):
        data = ListingWriteSerializer(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    @extend_schema(request=ListingWriteSerializer, responses={201: ListingSerializer})
    def create(self, request, *args, **kwargs):
        services.check_can_create(user=request.user)  # a customer's 403 comes before any 400
        listing = services.listing_create(agent=request.user, **self._write(partial=False))
        return Response(self._read(listing.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=ListingWriteSerializer, responses=ListingSerializer)
    def update(self, request, *args, **kwargs):
        listing = self.get_object()
        fields = self._write(partial=kwargs.get("partial", False))
        listing = services.listing_update(listing=listing, by=request.user, **fields)
        return Response(self._read(listing.pk))

    @extend_schema(request=ListingWriteSerializer, responses=ListingSerializer)
    def partial_update(self, request, *args, **kwargs):
        # Declared for the schema only: without it PATCH is documented with no request body.
        return super().partial_update(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        pk = kwargs[self.lookup_field]
        record_view = functools.partial(
            services.view_record, user_id=request.user.pk if request.user.is_authenticated else None,
            session_key=request.session.session_key if hasattr(request, "session") else None)
        body = self._published_body(pk, record_view)
        if body is None:  # not published (its agent or staff may see it), or no such listing
            body = self.get_serializer(self.get_object()).data
            if settings.LISTING_CACHE_SECONDS <= 0:  # otherwise recorded with the cache read
                record_view(listing_id=body["id"])
        return Response(body)

    def _published_body(self, pk, record_view):
        """A published listing's body from the cache (the same for every viewer: published
        listings are visible to all and the body has nothing personal), under the listing's
        cache version, which its writes bump after commit. None for any other listing.
        The view is queued in the same Redis round trip (the flush counts views of published
        listings only, so a 404 or a draft costs nothing there)."""
        if not str(pk).isdigit() or settings.LISTING_CACHE_SECONDS <= 0:
            return None

        def compute():
            listing = selectors.with_details(selectors.published_listings()).filter(pk=pk).first()
            return None if listing is None else dict(self.get_serializer(listing).data)

        body, counts = versioned_cache.get_or_compute_with(
            body_cache_key(self.request, pk), compute, settings.LISTING_CACHE_SECONDS,
            namespace=versioned_cache.listing_namespace(pk), also=[services.view_count_key(pk)],
            then=lambda pipeline: record_view(listing_id=pk, pipeline=pipeline))
        return None if body is None else services.view_counts_overlay([body], counts)[0]

    def destroy(self, request, *args, **kwargs):
        services.listing_delete(listing=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _read(self, pk):
        listing = selectors.with_details(Listing.objects.filter(pk=pk)).get()
        return ListingSerializer(listing, context=self.get_serializer_context()).data

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "image": {"type": "string", "format": "binary"}, "caption": {"type": "string"}}}},
        responses={201: PhotoSerializer})
    @action(detail=True, methods=["post"], url_path="photos", parser_classes=[MultiPartParser, FormParser])
    def photos(self, request, pk=None):
        listing = self.get_object()
        upload = request.FILES.get("image")
        if upload is None:
            raise ApplicationError(_("image: send the photo as the multipart field 'image'."),
                                   errors={"image": [_("This field is required.")]})
        photo = services.photo_add(listing=listing, by=request.user, upload=upload,
                                   caption=str(request.data.get("caption", ""))[:200])
        return Response(PhotoSerializer(photo, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=PhotoSerializer, responses=PhotoSerializer, methods=["PATCH"])
    @extend_schema(responses={204: None}, methods=["DELETE"])
    @action(detail=True, methods=["patch", "delete"], url_path=r"photos/(?P<photo_id>[0-9]+)",
            parser_classes=[JSONParser, MultiPartParser, FormParser])
    def photo(self, request, pk=None, photo_id=None):
        listing = self.get_object()
        if request.method == "DELETE":
            services.photo_delete(photo_id=photo_id, listing_id=listing.pk, by=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = PhotoSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        photo = services.photo_update(photo_id=photo_id, listing_id=listing.pk, by=request.user,
                                      caption=data.validated_data.get("caption"),
                                      position=data.validated_data.get("position"))
        return Response(PhotoSerializer(photo, context=self.get_serializer_context()).data)


class FavoriteSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    listing = ListingSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class FavoriteCreateSerializer(serializers.Serializer):
    listing = serializers.IntegerField(min_value=1)


class FavoriteViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's favorites. POST {listing} saves one (201, or 200 when already saved);
    DELETE favorites/{listing_id}/ removes it."""

    serializer_class = FavoriteSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "listing_id"
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.favorites_of(self.request.user)

    @extend_schema(request=FavoriteCreateSerializer, responses={201: FavoriteSerializer, 200: FavoriteSerializer})
    def create(self, request):
        data = FavoriteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        favorite, created = services.favorite_add(user=request.user, listing_id=data.validated_data["listing"])
        favorite = self.get_queryset().get(pk=favorite.pk)
        return Response(FavoriteSerializer(favorite, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses={204: None})
    def destroy(self, request, listing_id=None):
        services.favorite_remove(user=request.user, listing_id=listing_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


router = SimpleRouter()
router.register("listings", ListingViewSet, basename="listing")
router.register("favorites", FavoriteViewSet, basename="favorite")
urlpatterns = router.urls
