"""Accounts API (`/api/v1/`): registration, JWT tokens, the caller's profile, export, deletion."""

from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from accounts import selectors, services
from accounts.models import User
from realio.errors import RateLimited
from realio.images import image_check


class AuthThrottle(SimpleRateThrottle):
    """Sign-ins and registrations per client address (AUTH_RATE), anonymous or not."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    role = serializers.ChoiceField(choices=[User.Role.CUSTOMER.value, User.Role.AGENT.value])
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class RegisteredSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    role = serializers.CharField()


class RegisterView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer}, auth=[])
    def post(self, request):
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        return Response(RegisteredSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenView(APIView):
    """Email + password → a JWT pair. Failed attempts are limited per account (LOGIN_FAILED_RATE)
    and per address, in the same counters as the web login."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].lower()
        # allauth's adapter does what the web login does: the same failed-sign-in counters
        # (per account and per address), consumed before the password is checked.
        try:
            user = get_adapter(request._request).authenticate(
                request._request, email=email, password=data.validated_data["password"])
        except DjangoValidationError:
            raise RateLimited(_("Too many failed sign-ins. Try again later.")) from None
        if user is None or not user.is_active:
            return Response({"detail": _("Wrong email or password.")}, status=status.HTTP_401_UNAUTHORIZED)
        if not selectors.email_verified_enough(user):
            return Response({"detail": _("Confirm your email address first: we sent you a link.")},
                            status=status.HTTP_403_FORBIDDEN)
        refresh = RefreshToken.for_user(user)
        User.objects.filter(pk=user.pk).update(last_login=refresh.current_time)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class RefreshView(TokenRefreshView):
    """A refresh token → a new access token (and a rotated refresh; the old one is blacklisted)."""

    throttle_classes = [AuthThrottle]


class AgentProfileSerializer(serializers.Serializer):
    agency = serializers.CharField(max_length=200, required=False, allow_blank=True)
    licence_number = serializers.CharField(max_length=64, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    languages = serializers.CharField(max_length=200, required=False, allow_blank=True)
    service_areas = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    verified = serializers.SerializerMethodField()

    def get_verified(self, profile) -> bool:
        return profile.verified_at is not None


class MeSerializer(serializers.ModelSerializer):
    phone = PhoneNumberField(required=False, allow_blank=True)
    name = serializers.CharField(read_only=True)
    avatar = serializers.ImageField(read_only=True)
    agent_profile = AgentProfileSerializer(required=False)
    can_publish = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "role", "first_name", "last_name", "name", "phone", "time_zone", "language",
                  "avatar", "date_joined", "agent_profile", "can_publish"]
        read_only_fields = ["id", "email", "role", "name", "avatar", "date_joined"]

    def get_can_publish(self, user) -> bool:
        return selectors.agent_can_publish(user)

    def to_representation(self, user):
        data = super().to_representation(user)
        if not user.is_agent:
            data.pop("agent_profile", None)
        return data


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=MeSerializer, responses=MeSerializer)
    def patch(self, request):
        data = MeSerializer(request.user, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields.update(fields.pop("agent_profile", {}) or {})
        if "avatar" in request.FILES:
            fields["avatar"] = image_check(request.FILES["avatar"]).file
        user = services.user_update(user=request.user, **fields)
        return Response(MeSerializer(user).data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        services.user_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeExportView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Export", {"account": serializers.DictField()}))
    def get(self, request):
        response = Response(selectors.user_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="realio-my-data.json"'
        return response


urlpatterns = [
    path("auth/register/", RegisterView.as_view(), name="api-register"),
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("auth/token/refresh/", RefreshView.as_view(), name="api-token-refresh"),
    path("me/", MeView.as_view(), name="api-me"),
    path("me/export/", MeExportView.as_view(), name="api-me-export"),
]
