"""The JSON shape of a notification, shared by the API, the socket and the pages' live updates."""

from rest_framework import serializers

from notifications.models import Delivery, Device, Notification


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["channel", "status", "attempts", "last_error"]


class NotificationSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "created_at", "read_at", "deliveries"]
        read_only_fields = fields


class DeviceSerializer(serializers.ModelSerializer):
    token = serializers.CharField(max_length=1024, trim_whitespace=True)
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Device
        fields = ["id", "token", "platform", "created_at", "last_seen_at", "active"]
        read_only_fields = ["id", "created_at", "last_seen_at", "active"]
        extra_kwargs = {"token": {"validators": []}}


def notification_json(notification):
    """Plain JSON types (for the channel layer's msgpack), dates as ISO 8601 in UTC."""
    import json

    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(NotificationSerializer(notification).data))
