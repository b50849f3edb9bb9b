"""Log records carry the request id and user id of the request being served."""

import contextvars
import logging
from contextlib import contextmanager

_request_id = contextvars.ContextVar("request_id", default="-")
_request = contextvars.ContextVar("request", default=None)


@contextmanager
def request_context(*, request_id, request=None):
    tokens = (_request_id.set(request_id), _request.set(request))
    try:
        yield
    finally:
        _request_id.reset(tokens[0])
        _request.reset(tokens[1])


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `user_id`: from the record's own request (Django's request log,
    written after the middleware has returned) or from the request being served."""

    def filter(self, record):
        request = getattr(record, "request", None)
        if not hasattr(request, "request_id"):
            request = _request.get()
        record.request_id = getattr(request, "request_id", None) or _request_id.get()
        # Only an already-resolved user: resolving it here would query inside logging.
        resolved = getattr(request, "_cached_user", None) if request is not None else None
        record.user_id = getattr(resolved, "pk", None)
        return True
