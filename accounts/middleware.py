"""Per-user language and time zone, and MFA for staff where it is required."""

import zoneinfo

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation


class UserPreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = translation.get_language()
            if settings.MFA_REQUIRED_FOR_STAFF and user.sees_everything and not _mfa_exempt(request):
                from allauth.mfa.models import Authenticator

                if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
                    return redirect(reverse("mfa_activate_totp"))
        else:
            timezone.deactivate()
        return self.get_response(request)


def _mfa_exempt(request):
    path = request.path_info
    return path.startswith(("/accounts/", "/static/", "/api/", "/i18n/")) or path in ("/healthz", "/readyz")
