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
    """Page-number pages. `page` and `page_size` must be whole numbers from 1 (400 otherwise,
    instead of DRF's silent fallback or 404); a page past the last is still 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        size = _positive_int_param(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        if request.query_params.get(self.page_query_param) not in self.last_page_strings:
            _positive_int_param(request, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)


def _positive_int_param(request, name):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        message = _("A whole number from 1.")
        raise ApplicationError(f"{name}: {message}", errors={name: [message]})
    return value


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


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["detail"],
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `detail` names the first problem, `errors` every field's.",
    "401": "Not signed in, or the token is invalid or expired.",
    "403": "The caller may see this but not do it.",
    "404": "Not found, or not the caller's to see.",
    "409": "A conflict with the current state (taken, duplicate, illegal transition).",
    "413": "Too large.",
    "415": "Unsupported content type.",
    "429": "Too many requests.",
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: the error answers of DESIGN.md section 5, with their
    `{"detail", "errors"?}` body, on every operation where they can occur, so clients (and the
    schema tests) know them. A status a view documents itself is left as it is."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            has_body = "requestBody" in operation
            statuses = ["401", "403", "429"]
            if has_body or any(p.get("in") == "query" for p in parameters):
                statuses.append("400")
            # A page past the last of a paginated list is 404 too.
            if has_body or any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
                statuses.append("404")
            if method in ("post", "put", "patch", "delete"):
                statuses.append("409")
            if has_body:
                statuses += ["413", "415"]
            for code in sorted(statuses):
                operation["responses"].setdefault(code, {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result
