"""Recommendations API (`/api/v1/`): `interactions/`, `recommendations/`, and the listing's
`similar/` and `estimate/` (DESIGN.md section 5)."""

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from listings import selectors as listing_selectors
from listings.api import ListingSerializer
from listings.bodies import absolute
from realio.errors import NotFound
from recommendations import services, serving, valuation

MAX_LIMIT = 50


class InteractionSerializer(serializers.Serializer):
    listing = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=[(str(kind), kind.label) for kind in services.CLIENT_KINDS])


class RecommendedListingSerializer(ListingSerializer):
    score = serializers.FloatField(read_only=True)

    class Meta(ListingSerializer.Meta):
        fields = [*ListingSerializer.Meta.fields, "score"]
        read_only_fields = fields


class LimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, default=10)


class EstimateSerializer(serializers.Serializer):
    value = serializers.DecimalField(max_digits=14, decimal_places=2)
    low = serializers.DecimalField(max_digits=14, decimal_places=2)
    high = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    model_version = serializers.CharField()
    median_error = serializers.FloatField(allow_null=True, help_text=_("Median absolute error on held-out homes."))
    coverage = serializers.FloatField(allow_null=True,
                                      help_text=_("Share of held-out prices inside their low–high range."))


class InteractionView(APIView):
    """Client signals from pages: gallery opened, search result clicked, shared (anonymous: by session)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=InteractionSerializer, responses={202: InteractionSerializer})
    def post(self, request):
        data = InteractionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        session = "" if user.is_authenticated else services.anonymous_identity(request)
        services.interaction_record(user=user, session=session, listing_id=data.validated_data["listing"],
                                    kind=data.validated_data["kind"])
        return Response(data.validated_data, status=status.HTTP_202_ACCEPTED)


def _limit(request):
    data = LimitSerializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return data.validated_data["limit"]


def listing_bodies(ids, request):
    """The listings' API bodies in the order of `ids` (serving.listing_bodies caches them)."""
    bodies = serving.listing_bodies(ids)
    return [absolute(bodies[pk], request) for pk in ids if pk in bodies]


class RecommendationsView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1–50, default 10")],
                   responses=inline_serializer("Recommendations", {
                       "results": RecommendedListingSerializer(many=True)}))
    def get(self, request):
        picked = serving.recommend(request.user, limit=_limit(request))
        scores = dict(picked)
        results = listing_bodies([pk for pk, _score in picked], request)
        for item in results:
            item["score"] = round(scores[item["id"]], 4)
        return Response({"results": results})


def _visible_listing(request, listing_id):
    listing = listing_selectors.listings_visible_to(request.user).filter(pk=listing_id).first()
    if listing is None:
        raise NotFound(_("No such listing."))
    return listing


class SimilarView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1–50, default 10")],
                   responses=inline_serializer("SimilarListings", {"results": ListingSerializer(many=True)}))
    def get(self, request, listing_id):
        listing = _visible_listing(request, listing_id)
        return Response({"results": listing_bodies(serving.similar(listing, limit=_limit(request)), request)})


class EstimateView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=EstimateSerializer)
    def get(self, request, listing_id):
        listing = _visible_listing(request, listing_id)
        estimate = valuation.estimate_for(listing)
        if estimate is None:
            raise NotFound(_("No price estimate yet: no valuation model is trained for this kind of home."))
        return Response(EstimateSerializer(estimate).data)


urlpatterns = [
    path("interactions/", InteractionView.as_view(), name="api-interactions"),
    path("recommendations/", RecommendationsView.as_view(), name="api-recommendations"),
    # Sub-paths of listings/<id>/ that the listings router has no routes for.
    path("listings/<int:listing_id>/similar/", SimilarView.as_view(), name="api-listing-similar"),
    path("listings/<int:listing_id>/estimate/", EstimateView.as_view(), name="api-listing-estimate"),
]
