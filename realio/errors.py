"""The one family of domain errors that services raise and every entry point maps to a status.

The API turns them into `{"detail": …}` (realio/api.py), pages into messages, consumers into
`{"type": "error", …}` frames.
"""

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    """A request that cannot be carried out as asked: 400 unless a subclass says otherwise."""

    status_code = 400
    default_detail = _("The request cannot be carried out.")

    def __init__(self, detail=None, *, errors=None):
        self.detail = str(detail if detail is not None else self.default_detail)
        self.errors = errors or {}
        super().__init__(self.detail)


    @classmethod
    def from_validation_error(cls, exc):
        """A Django ValidationError (from full_clean or a validator) as a 400 naming the field."""
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        field, messages = next(iter(errors.items()))
        detail = messages[0] if field in ("non_field_errors", "__all__") else f"{field}: {messages[0]}"
        return cls(detail, errors=errors)


class NotFound(ApplicationError):
    """The object does not exist, or the caller may not see it."""

    status_code = 404
    default_detail = _("Not found.")


class Forbidden(ApplicationError):
    """The caller may see the object but not act on it."""

    status_code = 403
    default_detail = _("You may not do this.")


class Conflict(ApplicationError):
    """A conflict with the current state: taken, duplicate or an illegal transition."""

    status_code = 409
    default_detail = _("This conflicts with the current state.")


class TooLarge(ApplicationError):
    status_code = 413
    default_detail = _("Too large.")


class RateLimited(ApplicationError):
    status_code = 429
    default_detail = _("Too many requests. Try again later.")


# Messages for database constraints, by constraint name. Apps add theirs in AppConfig.ready()
# so an IntegrityError raised by a named constraint reaches the user as a clear 409.
CONSTRAINT_MESSAGES: dict[str, str] = {}


def register_constraint_message(name, message):
    CONSTRAINT_MESSAGES[name] = message


def conflict_from_integrity_error(exc):
    """The Conflict for an IntegrityError, naming the violated constraint's rule when known."""
    diag = getattr(getattr(exc, "__cause__", None), "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name and name in CONSTRAINT_MESSAGES:
        return Conflict(CONSTRAINT_MESSAGES[name])
    return Conflict()
