"""Search API (`/api/v1/search/`): one query model, the configured backend, facets."""

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from listings.api import ListingSerializer
from search import services
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
    distance_km = serializers.SerializerMethodField()

    class Meta(ListingSerializer.Meta):
        fields = [*ListingSerializer.Meta.fields, "distance_km"]
        read_only_fields = fields

    def get_distance_km(self, listing) -> float | None:
        return self.context.get("distances", {}).get(listing.pk)

    def to_representation(self, listing):
        data = super().to_representation(listing)
        if not self.context.get("distances"):
            data.pop("distance_km")
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
        context = {"request": request, "distances": page.result.distances_km if query.has_point else {}}
        return Response({
            "count": page.total,
            "next": self._link(request, query, query.page + 1) if query.offset + query.page_size < page.total else None,
            "previous": self._link(request, query, query.page - 1) if query.page > 1 else None,
            "results": SearchResultSerializer(page.listings, many=True, context=context).data,
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
