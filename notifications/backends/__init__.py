"""Channel backends behind one interface, chosen by settings.

A backend's `send(user, notifications)` delivers one message on its channel and returns a
`Sent` (the provider's message id, and whether delivery is already confirmed). It raises
`TransientError` for what may work later (retried with backoff) and `PermanentError` for what
never will (failed at once). Only the email backend is ever given more than one notification
(a digest: one email for several).
"""

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.models import Channel


class DeliveryError(Exception):
    permanent = False


class TransientError(DeliveryError):
    """A failure that may go away: a timeout, a 5xx, a rate limit."""


class PermanentError(DeliveryError):
    """A failure that retrying cannot fix: a refused address, a dead token, a bad number."""

    permanent = True


class Skip(Exception):  # not an error: the delivery is skipped, with this reason
    """Nothing to send on this channel (no phone number, no live device)."""


@dataclass(frozen=True)
class Sent:
    message_id: str = ""
    delivered: bool = False


class ChannelBackend:
    channel: str = ""

    def send(self, user, notifications) -> Sent:
        raise NotImplementedError


BACKEND_SETTINGS = {
    Channel.IN_APP: "NOTIFICATIONS_IN_APP_BACKEND",
    Channel.EMAIL: "NOTIFICATIONS_EMAIL_BACKEND",
    Channel.SMS: "NOTIFICATIONS_SMS_BACKEND",
    Channel.PUSH: "NOTIFICATIONS_PUSH_BACKEND",
}


@cache
def _backend(path):
    return import_string(path)()


def backend_for(channel) -> ChannelBackend:
    return _backend(getattr(settings, BACKEND_SETTINGS[channel]))
