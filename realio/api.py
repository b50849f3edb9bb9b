"""Shared API pieces: the exception handler (DESIGN.md section 5's error shape), pagination,
and a datetime field that refuses input without an offset."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from realio.errors import ApplicationError, conflict_from_integrity_error

logger = logging.getLogger(__name__)


def _flatten(detail):
    """DRF error detail (nested dicts/lists of ErrorDetail) → {field: [str]}."""
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value):
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    if isinstance(value, (list, tuple)):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def exception_handler(exc, context):
    """Every API error as JSON with a string `detail`; 400s for fields add `errors`."""
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, IntegrityError):
        conflict = conflict_from_integrity_error(exc)
        logger.info("integrity error mapped to 409: %s", exc)
        return Response({"detail": conflict.detail}, status=conflict.status_code)
    if isinstance(exc, OperationalError | RedisConnectionError | RedisTimeoutError):
        # PostgreSQL or Redis is unreachable (/readyz says which): the client may retry.
        logger.warning("service unavailable: %s: %s", exc.__class__.__name__, exc)
        return Response({"detail": _("The service is briefly unavailable; try again shortly.")},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first_field, first_messages = next(iter(errors.items()), ("", [_("Invalid input.")]))
        detail = first_messages[0] if first_field == "non_field_errors" else f"{first_field}: {first_messages[0]}"
        response.data = {"detail": detail, "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {**response.data, "detail": str(response.data["detail"])}
    else:
        response.data = {"detail": str(response.data)}
    return response


def json_error(request, status_code, detail):
    return JsonResponse({"detail": str(detail)}, status=status_code)


def handler404(request, exception=None):
    return json_error(request, status.HTTP_404_NOT_FOUND, _("Not found."))


def handler500(request):
    return json_error(request, status.HTTP_500_INTERNAL_SERVER_ERROR, _("Server error."))


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must carry its offset: naive input is a 400, never guessed."""

    default_error_messages = {"naive": _("Give the time with its UTC offset, e.g. 2026-05-01T10:00:00+02:00.")}

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if isinstance(value, str) and not _has_offset(value):
            self.fail("naive")
        return parsed


def _has_offset(text):
    text = text.strip()
    if text.endswith(("Z", "z")):
        return True
    time_part = text.split("T", 1)[-1] if "T" in text else text.split(" ", 1)[-1]
    return "+" in time_part or "-" in time_part
