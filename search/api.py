"""Search API (`/api/v1/`): `search/` (one query model, the configured backend, facets) and
`saved-searches/` (a person's saved searches and the unsubscribe link of their alerts)."""

from urllib.parse import urlencode

from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from listings.api import ListingSerializer, active_listing_bodies
from realio.errors import ApplicationError
from search import selectors, services
from search.models import SavedSearch
from search.query import SearchQuery

PARAMETERS = [
    OpenApiParameter("q", str, description="Keywords (typos tolerated)."),
    OpenApiParameter("listing_type", str, description="sale or rent (comma-separated)."),
    OpenApiParameter("property_type", str, description="Comma-separated: house,apartment,condo,…"),
    *[OpenApiParameter(name, OpenApiTypes.NUMBER) for name in (
        "min_price", "max_price", "min_beds", "min_baths", "min_area", "max_area", "min_year", "max_year",
        "lat", "lng", "radius_km")],
    OpenApiParameter("features", str, description="Comma-separated slugs; all must match."),
    OpenApiParameter("bbox", str, description="west,south,east,north in degrees."),
    OpenApiParameter("polygon", str, description="lng,lat;lng,lat;… (a simple ring)."),
    OpenApiParameter("sort", str, enum=["relevance", "newest", "price_asc", "price_desc", "distance"]),
    OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="At most 100."),
]


class SearchResultSerializer(ListingSerializer):
    # Not read-only in the serializer's eyes, so the schema does not list it as always present:
    # it is there only when a point (lat/lng) is given.
    distance_km = serializers.FloatField(required=False, allow_null=True,
                                         help_text="Kilometres from the given point; only when lat/lng are given.")

    class Meta(ListingSerializer.Meta):
        fields = [*ListingSerializer.Meta.fields, "distance_km"]
        read_only_fields = fields

    def to_representation(self, listing):
        data = super().to_representation(listing)
        distances = self.context.get("distances")
        if distances:
            data["distance_km"] = distances.get(listing.pk)
        else:
            data.pop("distance_km", None)
        return data


class SearchView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(parameters=PARAMETERS, responses=inline_serializer("SearchResponse", {
        "count": serializers.IntegerField(), "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True), "results": SearchResultSerializer(many=True),
        "facets": serializers.DictField(child=serializers.DictField(child=serializers.IntegerField())),
    }))
    def get(self, request):
        query = SearchQuery.from_params(request.query_params)
        page = services.search(query)
        results = active_listing_bodies(request, page.result.ids)
        if query.has_point:
            distances = page.result.distances_km
            results = [{**body, "distance_km": distances.get(body["id"])} for body in results]
        return Response({
            "count": page.total,
            "next": self._link(request, query, query.page + 1) if query.offset + query.page_size < page.total else None,
            "previous": self._link(request, query, query.page - 1) if query.page > 1 else None,
            "results": results,
            "facets": page.result.facets,
        })

    @staticmethod
    def _link(request, query, number):
        from urllib.parse import urlencode

        params = query.to_params() | {"page": str(number)}
        if number == 1:
            params.pop("page")
        return request.build_absolute_uri(f"{request.path}?{urlencode(params)}")


urlpatterns = [path("search/", SearchView.as_view(), name="api-search")]


# --- saved searches ---------------------------------------------------------------------------

class SavedSearchSerializer(serializers.ModelSerializer):
    """A saved search as its owner reads it; `search_url` runs it on `search/`."""

    query = serializers.DictField(child=serializers.CharField())
    search_url = serializers.SerializerMethodField()

    class Meta:
        model = SavedSearch
        fields = ["id", "name", "query", "alert_frequency", "search_url", "last_alerted_at", "created_at",
                  "updated_at"]
        read_only_fields = fields

    def get_search_url(self, saved) -> str:
        url = f"{reverse('api-search')}?{urlencode(saved.query)}"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class SavedSearchWriteSerializer(serializers.Serializer):
    """What a person sends to save a search (shape only; the service validates the query)."""

    name = serializers.CharField(max_length=100)
    query = serializers.JSONField(help_text="The parameters of `search/` as an object, e.g. "
                                            '{"q": "garden", "property_type": "house,townhouse", "max_price": 450000, '
                                            '"lat": 48.86, "lng": 2.35, "radius_km": 5}. Lists may be given as arrays.')
    alert_frequency = serializers.ChoiceField(choices=SavedSearch.Frequency.choices, required=False)


class UnsubscribeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    alert_frequency = serializers.CharField()


class SavedSearchViewSet(viewsets.ModelViewSet):
    """The caller's saved searches. Another person's id answers 404."""

    serializer_class = SavedSearchSerializer
    permission_classes = [IsAuthenticated]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.saved_searches_of(self.request.user)

    def _write(self, partial):
        data = SavedSearchWriteSerializer(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "query" in values:
            values["query"] = services.saved_search_query(values["query"])
        return values

    def _read(self, saved):
        return SavedSearchSerializer(saved, context=self.get_serializer_context()).data

    @extend_schema(request=SavedSearchWriteSerializer, responses={201: SavedSearchSerializer})
    def create(self, request, *args, **kwargs):
        values = self._write(partial=False)
        saved = services.saved_search_create(user=request.user, **values)
        return Response(self._read(saved), status=status.HTTP_201_CREATED)

    @extend_schema(request=SavedSearchWriteSerializer, responses=SavedSearchSerializer)
    def update(self, request, *args, **kwargs):
        values = self._write(partial=kwargs.get("partial", False))
        saved = services.saved_search_update(saved_search_id=self.kwargs["pk"], user=request.user, **values)
        return Response(self._read(saved))

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.saved_search_delete(saved_search_id=self.kwargs["pk"], user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[OpenApiParameter("token", str, required=True,
                                                description="The token of the link in an alert.")],
                   request=None, responses=UnsubscribeSerializer)
    @action(detail=False, methods=["get", "post"], url_path="unsubscribe", permission_classes=[AllowAny])
    def unsubscribe(self, request):
        """Stop a saved search's alerts from the link in an alert, signed in or not (POST too, for
        mail clients' one-click unsubscribe)."""
        body = request.data if isinstance(request.data, dict) else {}
        token = request.query_params.get("token") or body.get("token")
        if not token:
            message = _("This field is required.")
            raise ApplicationError(f"token: {message}", errors={"token": [message]})
        saved = services.saved_search_unsubscribe(token=token)
        return Response({"id": saved.pk, "alert_frequency": saved.alert_frequency})


router = SimpleRouter()
router.register("saved-searches", SavedSearchViewSet, basename="saved-search")
urlpatterns += router.urls
