"""Bookings API (`/api/v1/`): availability, a listing's free slots, viewings (DESIGN.md section 5).

Times of slots and viewings carry the listing's local offset; input without an offset is a 400.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from accounts.models import validate_time_zone
from bookings import ical, selectors, services
from bookings.models import AvailabilityException, Viewing
from listings.api import PersonSerializer
from listings.selectors import listings_visible_to
from realio.api import AwareDateTimeField
from realio.errors import ApplicationError, NotFound

# --- availability -----------------------------------------------------------------------------


@extend_schema_field({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$", "description": "HH:MM"})
class HourMinuteField(serializers.TimeField):
    """A time of day written "HH:MM" (seconds accepted on input): not OpenAPI's `time`
    format, which is RFC 3339's and requires seconds."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)


class RuleSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6)
    start = HourMinuteField()
    end = HourMinuteField()

    def validate(self, attrs):
        if attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": _("The end must be after the start.")})
        return attrs


class ExceptionSerializer(serializers.Serializer):
    date = serializers.DateField()
    kind = serializers.ChoiceField(choices=AvailabilityException.Kind.choices, default="off")
    start = HourMinuteField(required=False, allow_null=True)
    end = HourMinuteField(required=False, allow_null=True)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class AvailabilitySerializer(serializers.Serializer):
    """An agent's weekly hours (in `time_zone`), exceptions and booking policy."""

    time_zone = serializers.CharField(max_length=64, validators=[validate_time_zone])
    rules = RuleSerializer(many=True, max_length=services.MAX_RULES)
    exceptions = ExceptionSerializer(many=True, required=False, max_length=services.MAX_EXCEPTIONS)
    buffer_minutes = serializers.IntegerField(min_value=0, max_value=240, required=False)
    min_notice_minutes = serializers.IntegerField(min_value=0, max_value=60 * 24 * 14, required=False)
    horizon_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    slot_minutes = serializers.IntegerField(min_value=5, max_value=240, required=False)
    instant_booking = serializers.BooleanField(required=False)
    feed_url = serializers.SerializerMethodField()

    def get_feed_url(self, availability) -> str:
        url = reverse("bookings_agent_feed", args=[availability.feed_token])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


def _availability_data(availability, request):
    data = AvailabilitySerializer(availability, context={"request": request}).data
    data["rules"] = RuleSerializer(availability.rules.all(), many=True).data
    data["exceptions"] = ExceptionSerializer(availability.exceptions.all(), many=True).data
    return data


class IsAgent(permissions.BasePermission):
    """Signed in (401 otherwise) and an agent or staff (403 otherwise)."""

    message = _("Only agents have viewing availability.")

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_agent or user.sees_everything


class AvailabilityView(APIView):
    """GET the caller's availability; PUT replaces it all (weekly rules, and exceptions and
    policy fields when given)."""

    permission_classes = [IsAgent]
    serializer_class = AvailabilitySerializer

    @extend_schema(responses=AvailabilitySerializer)
    def get(self, request):
        return Response(_availability_data(services.availability_get(agent=request.user), request))

    @extend_schema(request=AvailabilitySerializer, responses=AvailabilitySerializer)
    def put(self, request):
        data = AvailabilitySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        availability = services.availability_replace(
            agent=request.user, time_zone=fields.pop("time_zone"), rules=fields.pop("rules"),
            exceptions=fields.pop("exceptions", None), **fields)
        return Response(_availability_data(availability, request))


# --- slots ------------------------------------------------------------------------------------


class SlotSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


def _local_iso(value, zone) -> str:
    return value.astimezone(zone).isoformat()


@extend_schema(
    parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True,
                                 description="The listing's local date, YYYY-MM-DD."),
                OpenApiParameter("duration_minutes", OpenApiTypes.INT, required=False)],
    responses=inline_serializer("Slots", {"date": serializers.DateField(), "time_zone": serializers.CharField(),
                                          "slots": SlotSerializer(many=True)}),
)
class ListingSlotsView(APIView):
    """Free viewing times of a listing on one of its local dates (anyone may look)."""

    permission_classes = [permissions.AllowAny]

    def get(self, request, listing_id):
        listing = listings_visible_to(request.user).select_related("agent").filter(pk=listing_id).first()
        if listing is None:
            raise NotFound(_("No such listing."))
        raw_date = request.query_params.get("date", "")
        try:
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise ApplicationError(_("date: give the day as YYYY-MM-DD."),
                                   errors={"date": [_("Give the day as YYYY-MM-DD.")]}) from None
        duration = request.query_params.get("duration_minutes")
        if duration is not None:
            try:
                duration = int(duration)
            except ValueError:
                raise ApplicationError(_("duration_minutes: a whole number of minutes."),
                                       errors={"duration_minutes": [_("A whole number of minutes.")]}) from None
        slots = services.listing_slots(listing=listing, date=day, duration_minutes=duration)
        zone = ZoneInfo(listing.time_zone)
        return Response({"date": day.isoformat(), "time_zone": listing.time_zone,
                         "slots": [{"start": _local_iso(s, zone), "end": _local_iso(e, zone)} for s, e in slots]})


class ListingBookingOptionSerializer(serializers.Serializer):
    instant_booking = serializers.BooleanField(allow_null=True)


class ListingBookingOptionView(APIView):
    """PUT {instant_booking: true|false|null}: this listing's own choice (null: the agent's default)."""

    permission_classes = [IsAgent]

    @extend_schema(request=ListingBookingOptionSerializer, responses=ListingBookingOptionSerializer)
    def put(self, request, listing_id):
        data = ListingBookingOptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing = listings_visible_to(request.user).filter(pk=listing_id).first()
        if listing is None:
            raise NotFound(_("No such listing."))
        services.listing_booking_mode_set(listing=listing, by=request.user,
                                          instant_booking=data.validated_data["instant_booking"])
        return Response({"instant_booking": data.validated_data["instant_booking"]})


# --- viewings ---------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.DATETIME)
class LocalDateTimeField(serializers.Field):
    """A datetime shown with the listing's local offset."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, viewing):
        return _local_iso(getattr(viewing, self.field_name), ZoneInfo(viewing.listing.time_zone))


class BookingSerializer(serializers.ModelSerializer):
    """A viewing as both parties see it."""

    agent = PersonSerializer(read_only=True)
    customer = PersonSerializer(read_only=True)
    start = LocalDateTimeField()
    end = LocalDateTimeField()
    listing_title = serializers.CharField(source="listing.title", read_only=True)
    time_zone = serializers.CharField(source="listing.time_zone", read_only=True)
    duration_minutes = serializers.SerializerMethodField()
    calendar_url = serializers.SerializerMethodField()

    class Meta:
        model = Viewing
        fields = ["id", "listing", "listing_title", "agent", "customer", "start", "end", "duration_minutes",
                  "time_zone", "status", "note", "cancel_reason", "calendar_url", "created_at", "updated_at"]
        read_only_fields = fields

    def get_duration_minutes(self, viewing) -> int:
        return int((viewing.end - viewing.start).total_seconds() // 60)

    def get_calendar_url(self, viewing) -> str:
        url = reverse("booking-calendar", args=[viewing.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class BookingCreateSerializer(serializers.Serializer):
    listing = serializers.IntegerField(min_value=1)
    start = AwareDateTimeField()
    duration_minutes = serializers.IntegerField(required=False)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class RescheduleSerializer(serializers.Serializer):
    start = AwareDateTimeField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("when", str, enum=["upcoming", "past"], required=False),
    OpenApiParameter("status", str, enum=[s for s, _ in Viewing.Status.choices], required=False),
    OpenApiParameter("as", str, enum=["customer", "agent"], required=False,
                     description="Only viewings where the caller is the customer, or the agent."),
]))
class BookingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's viewings, as customer or as agent. POST books one; actions move it along."""

    serializer_class = BookingSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        queryset = selectors.viewings_of(self.request.user)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        when = params.get("when")
        if when not in (None, "", "upcoming", "past"):
            raise ApplicationError(_("when: upcoming or past."), errors={"when": [_("upcoming or past.")]})
        status_ = params.get("status")
        if status_ not in (None, "") and status_ not in Viewing.Status.values:
            raise ApplicationError(_("status: one of %(s)s.") % {"s": ", ".join(Viewing.Status.values)},
                                   errors={"status": [_("Unknown status.")]})
        role = params.get("as")
        if role not in (None, "", "customer", "agent"):
            raise ApplicationError(_("as: customer or agent."), errors={"as": [_("customer or agent.")]})
        if role == "customer":
            queryset = queryset.filter(customer=self.request.user)
        elif role == "agent":
            queryset = queryset.filter(agent=self.request.user)
        if status_:
            queryset = queryset.filter(status=status_)
        if when == "upcoming":
            return selectors.upcoming(queryset)
        if when == "past":
            return selectors.past(queryset)
        return queryset.order_by("-start", "-id")

    def perform_content_negotiation(self, request, force=False):
        # Calendar apps ask for text/calendar: the .ics is written directly, errors stay JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "calendar")

    def get_object(self):
        return services.access_viewing(viewing_id=self.kwargs["pk"], user=self.request.user)

    def _respond(self, viewing, code=status.HTTP_200_OK):
        viewing = selectors.viewings_of(self.request.user).get(pk=viewing.pk)
        return Response(BookingSerializer(viewing, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=BookingCreateSerializer, responses={201: BookingSerializer})
    def create(self, request):
        data = BookingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        viewing = services.booking_request(
            customer=request.user, listing_id=fields["listing"], start=fields["start"],
            duration_minutes=fields.get("duration_minutes"), note=fields.get("note", ""))
        return self._respond(viewing, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._respond(services.booking_confirm(viewing_id=pk, by=request.user))

    @extend_schema(request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._respond(services.booking_decline(viewing_id=pk, by=request.user,
                                                      reason=data.validated_data.get("reason", "")))

    @extend_schema(request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._respond(services.booking_cancel(viewing_id=pk, by=request.user,
                                                     reason=data.validated_data.get("reason", "")))

    @extend_schema(request=RescheduleSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def reschedule(self, request, pk=None):
        data = RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._respond(services.booking_reschedule(viewing_id=pk, by=request.user,
                                                         start=data.validated_data["start"]))

    @extend_schema(responses={(200, "text/calendar"): OpenApiTypes.BINARY})
    def calendar(self, request, pk=None):
        """The viewing as iCalendar (routed as `bookings/{id}/calendar.ics`, no trailing slash)."""
        viewing = self.get_object()
        response = HttpResponse(ical.viewing_ics(viewing), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="viewing-{viewing.pk}.ics"'
        return response


router = SimpleRouter()
router.register("bookings", BookingViewSet, basename="booking")
urlpatterns = [
    path("availability/", AvailabilityView.as_view(), name="availability"),
    path("listings/<int:listing_id>/slots/", ListingSlotsView.as_view(), name="listing-slots"),
    path("listings/<int:listing_id>/booking-option/", ListingBookingOptionView.as_view(),
         name="listing-booking-option"),
    path("bookings/<int:pk>/calendar.ics", BookingViewSet.as_view({"get": "calendar"}), name="booking-calendar"),
    *router.urls,
]
