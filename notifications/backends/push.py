"""Push channel: Firebase Cloud Messaging through firebase-admin (one multicast to all of the
person's live devices; dead tokens deactivated), or the console locally."""

import json
import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from notifications.backends import ChannelBackend, PermanentError, Sent, Skip, TransientError
from notifications.backends.email import absolute
from notifications.backends.sms import _append_outbox
from notifications.models import Channel

logger = logging.getLogger(__name__)
FCM_BATCH = 500  # FCM's limit of tokens per multicast


def _live_devices(user):
    from notifications import selectors

    devices = list(selectors.live_devices_of(user))
    if not devices:
        raise Skip(_("no device registered for push"))
    return devices


def push_data(notification):
    """The data payload every push carries (FCM wants string values)."""
    return {"notification_id": str(notification.pk), "kind": notification.kind, "url": absolute(notification.url)}


class ConsolePushBackend(ChannelBackend):
    """Logs the push and appends it to NOTIFICATIONS_OUTBOX_DIR/push.jsonl (when set)."""

    channel = Channel.PUSH

    def send(self, user, notifications):
        notification = notifications[0]
        devices = _live_devices(user)
        message_id = f"console-{get_random_string(16)}"
        record = {"id": message_id, "tokens": [d.token for d in devices], "title": notification.title,
                  "body": notification.body, "data": push_data(notification)}
        logger.info("push to %s device(s) of user %s: %s", len(devices), user.pk, notification.title)
        _append_outbox("push.jsonl", record)
        return Sent(message_id=message_id)


_app_lock = threading.Lock()
_apps = {}


def firebase_app():
    """The firebase-admin app made from FCM_CREDENTIALS_JSON or FCM_CREDENTIALS_FILE (once)."""
    import firebase_admin
    from firebase_admin import credentials

    source = settings.FCM_CREDENTIALS_JSON or settings.FCM_CREDENTIALS_FILE
    if not source:
        raise ImproperlyConfigured("FCMPushBackend needs FCM_CREDENTIALS_FILE or FCM_CREDENTIALS_JSON.")
    with _app_lock:
        if source not in _apps:
            info = json.loads(settings.FCM_CREDENTIALS_JSON) if settings.FCM_CREDENTIALS_JSON else source
            name = f"realio-{len(_apps)}"
            _apps[source] = firebase_admin.initialize_app(credentials.Certificate(info), name=name)
        return _apps[source]


class FCMPushBackend(ChannelBackend):
    channel = Channel.PUSH

    def send(self, user, notifications):
        from firebase_admin import exceptions, messaging

        from notifications import services

        notification = notifications[0]
        devices = _live_devices(user)
        app = firebase_app()
        message_ids, dead, transient, permanent = [], [], [], []
        for start in range(0, len(devices), FCM_BATCH):
            batch = devices[start:start + FCM_BATCH]
            message = _multicast(
                tokens=[d.token for d in batch],
                notification=messaging.Notification(title=notification.title, body=notification.body[:500]),
                data=push_data(notification),
                android=messaging.AndroidConfig(priority="high", collapse_key=notification.collapse_key or None),
                apns=messaging.APNSConfig(payload=messaging.APNSPayload(aps=messaging.Aps(sound="default"))),
                webpush=messaging.WebpushConfig(
                    fcm_options=messaging.WebpushFCMOptions(link=absolute(notification.url) or None)
                    if absolute(notification.url).startswith("https://") else None),
            )
            try:
                response = messaging.send_each_for_multicast(message, app=app)
            except (exceptions.UnavailableError, exceptions.InternalError, exceptions.DeadlineExceededError,
                    exceptions.UnknownError, messaging.QuotaExceededError, OSError) as exc:
                raise TransientError(f"FCM: {exc.__class__.__name__}: {exc}") from exc
            except exceptions.FirebaseError as exc:
                raise PermanentError(f"FCM: {exc.__class__.__name__}: {exc}") from exc
            for device, result in zip(batch, response.responses, strict=True):
                if result.success:
                    message_ids.append(result.message_id)
                    continue
                error = result.exception
                text = f"{error.__class__.__name__}: {error}"
                if _token_is_dead(error):
                    dead.append((device, text))
                elif isinstance(error, (exceptions.UnavailableError, exceptions.InternalError,
                                        messaging.QuotaExceededError, exceptions.DeadlineExceededError,
                                        exceptions.UnknownError)):
                    transient.append(text)
                else:
                    permanent.append(text)
        for device, reason in dead:
            services.device_deactivate(device=device, reason=reason)
        if message_ids:
            return Sent(message_id=message_ids[0])
        if transient:
            raise TransientError("FCM: " + "; ".join(transient)[:1000])
        raise PermanentError("FCM: " + "; ".join([text for _d, text in dead] + permanent)[:1000])


def _multicast(**fields):
    """A MulticastMessage to registration tokens. firebase-admin 7.7 deprecates `tokens` in favour
    of Firebase Installation IDs (`fids`); the apps register FCM registration tokens (the
    devices/ contract), which FCM still accepts, so the warning is silenced here only."""
    import warnings

    from firebase_admin import messaging

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="MulticastMessage.tokens is deprecated", category=DeprecationWarning)
        return messaging.MulticastMessage(**fields)


def _token_is_dead(error):
    from firebase_admin import exceptions, messaging

    if isinstance(error, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
        return True
    # INVALID_ARGUMENT for one token of a multicast is a malformed registration token.
    return isinstance(error, exceptions.InvalidArgumentError) and "token" in str(error).lower()
