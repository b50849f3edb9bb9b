"""SMS channel: Twilio's Messages API over HTTPS (TWILIO_* settings), or the console locally.

Twilio calls back NOTIFICATIONS_SMS_STATUS_CALLBACK_URL with the message's fate; the view
verifies its X-Twilio-Signature (notifications.views.sms_status).
"""

import base64
import hashlib
import hmac
import json
import logging
from pathlib import Path

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from notifications import kinds
from notifications.backends import ChannelBackend, PermanentError, Sent, Skip, TransientError
from notifications.backends.email import absolute
from notifications.models import Channel
from notifications.text import render_plain

logger = logging.getLogger(__name__)
MAX_LENGTH = 480  # three or four SMS segments at most


def sms_text(user, notification):
    kind = kinds.get(notification.kind)
    with translation.override(user.language or settings.LANGUAGE_CODE):
        text = render_plain([kind.template("sms.txt"), "notifications/sms/default.txt"],
                                {"notification": notification, "data": notification.data, "user": user,
                                 "url": absolute(notification.url), "site_name": settings.SITE_NAME})
    text = " ".join(text.split())
    return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH - 1] + "…"


def _recipient(user):
    if not user.phone or not user.is_active:
        raise Skip(_("no phone number"))
    return str(user.phone)


class ConsoleSMSBackend(ChannelBackend):
    """Logs the SMS and appends it to NOTIFICATIONS_OUTBOX_DIR/sms.jsonl (when set)."""

    channel = Channel.SMS

    def send(self, user, notifications):
        to, text = _recipient(user), sms_text(user, notifications[0])
        message_id = f"console-{get_random_string(16)}"
        logger.info("SMS to %s: %s", to, text)
        _append_outbox("sms.jsonl", {"id": message_id, "to": to, "body": text})
        return Sent(message_id=message_id)


class TwilioSMSBackend(ChannelBackend):
    channel = Channel.SMS
    # Twilio error codes about the recipient or the content: retrying cannot help.
    # https://www.twilio.com/docs/api/errors (21211 invalid To, 21610 unsubscribed, 21614 not mobile…)
    PERMANENT_CODES = {21211, 21212, 21408, 21610, 21612, 21614, 21617, 30003, 30005, 30006}

    def __init__(self):
        self.session = requests.Session()

    def send(self, user, notifications):
        sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        if not sid or not token or not (settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID):
            raise ImproperlyConfigured("TwilioSMSBackend needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                                       "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID.")
        form = {"To": _recipient(user), "Body": sms_text(user, notifications[0]),
                "StatusCallback": settings.NOTIFICATIONS_SMS_STATUS_CALLBACK_URL}
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            form["MessagingServiceSid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        else:
            form["From"] = settings.TWILIO_FROM_NUMBER
        url = f"{settings.TWILIO_API_URL.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            response = self.session.post(url, data=form, auth=(sid, token),
                                         timeout=settings.NOTIFICATIONS_PROVIDER_TIMEOUT)
        except requests.RequestException as exc:
            raise TransientError(f"{exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code in (200, 201):
            return Sent(message_id=str(body.get("sid", "")))
        text = f"Twilio {response.status_code} (code {body.get('code')}): {body.get('message') or response.text[:200]}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(text)
        if body.get("code") in self.PERMANENT_CODES or response.status_code in (400, 404):
            raise PermanentError(text)
        # 401/403: wrong credentials or a suspended account — fixable by operators, so retried.
        raise TransientError(text)


def twilio_signature(url, params, token):
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the POST parameters sorted by
    name, each name immediately followed by its value(s)."""
    payload = url + "".join(f"{name}{value}" for name in sorted(params) for value in params.getlist(name)) \
        if hasattr(params, "getlist") else url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(url, params, signature, token):
    if not token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(url, params, token), signature)


def _append_outbox(name, record):
    folder = settings.NOTIFICATIONS_OUTBOX_DIR
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with (path / name).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
