"""Notifications API (/api/v1/): the caller's notifications, marking read, channel preferences
and push devices (DESIGN.md section 5)."""

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.serializers import DeviceSerializer, NotificationSerializer
from realio.api import Pagination
from realio.errors import ApplicationError


class NotificationPagination(Pagination):
    """The usual page, plus the caller's unread count."""

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["unread"] = selectors.unread_count(self.request.user.pk)
        return response


class NotificationList(generics.ListAPIView):
    """The caller's notifications, newest first; `?unread=true` for the unread ones only."""

    serializer_class = NotificationSerializer
    pagination_class = NotificationPagination

    def get_queryset(self):
        unread = self.request.query_params.get("unread", "")
        if unread not in ("", "true", "false", "1", "0"):
            raise ApplicationError("unread: give true or false.", errors={"unread": ["Give true or false."]})
        return selectors.notifications_of(self.request.user, unread_only=unread in ("true", "1"))


class NotificationRead(APIView):
    @extend_schema(request=None, responses=NotificationSerializer)
    def post(self, request, pk):
        notification = services.notification_mark_read(user=request.user, notification_id=pk)
        notification = selectors.notifications_of(request.user).get(pk=notification.pk)
        return Response(NotificationSerializer(notification).data)


class NotificationReadAll(APIView):
    @extend_schema(request=None, responses=inline_serializer("ReadAll", {"marked": serializers.IntegerField(),
                                                                         "unread": serializers.IntegerField()}))
    def post(self, request):
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked, "unread": selectors.unread_count(request.user.pk)})


class QuietHoursSerializer(serializers.Serializer):
    start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"])
    end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"])


class KindChoiceSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64)
    channels = serializers.DictField(child=serializers.BooleanField(), allow_empty=True)


class PreferencesSerializer(serializers.Serializer):
    """PUT replaces the given kinds' channel choices (kinds left out keep theirs) and the quiet
    hours when `quiet_hours` is given (null removes them)."""

    kinds = KindChoiceSerializer(many=True, required=False)
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True)


class PreferencesView(APIView):
    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        return Response(selectors.preferences_table(request.user))

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def put(self, request):
        if not isinstance(request.data, dict):
            raise ApplicationError("Send a JSON object.")
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        choices = {}
        for row in data.get("kinds", []):
            choices.setdefault(row["kind"], {}).update(row["channels"])
        quiet = data.get("quiet_hours", ...)
        services.preferences_update(user=request.user, choices=choices, quiet_hours=quiet)
        return Response(selectors.preferences_table(request.user))


class DeviceList(generics.ListCreateAPIView):
    """The caller's push devices; POST {token, platform} registers one (again: refreshed)."""

    serializer_class = DeviceSerializer

    def get_queryset(self):
        return selectors.devices_of(self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, _created = services.device_register(user=request.user, **serializer.validated_data)
        return Response(DeviceSerializer(device).data, status=status.HTTP_201_CREATED)


class DeviceDetail(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk):
        services.device_delete(user=request.user, device_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("notifications/", NotificationList.as_view(), name="api-notifications"),
    path("notifications/read-all/", NotificationReadAll.as_view(), name="api-notifications-read-all"),
    path("notifications/preferences/", PreferencesView.as_view(), name="api-notification-preferences"),
    path("notifications/<int:pk>/read/", NotificationRead.as_view(), name="api-notification-read"),
    path("devices/", DeviceList.as_view(), name="api-devices"),
    path("devices/<int:pk>/", DeviceDetail.as_view(), name="api-device"),
]
