"""Fixtures of the notification tests: the SMS provider (Twilio) and FCM replaced at their client
boundary, recording what would have been sent."""

import itertools
import json
import time

import pytest
import requests
from firebase_admin import messaging

from notifications.backends import backend_for
from notifications.models import Channel

TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
CALLBACK_URL = "https://realio.example/notifications/sms/status/"


class FakeTwilio(requests.adapters.BaseAdapter):
    """Answers the HTTP requests the Twilio backend makes, as Twilio would; keeps them."""

    def __init__(self):
        super().__init__()
        self.requests = []
        self.replies = []  # (status, body) to answer next, in order; then 201 Created
        self.delay = 0  # seconds each answer takes
        self._ids = itertools.count(1)

    def send(self, request, **kwargs):
        self.requests.append(request)
        time.sleep(self.delay)
        status, body = self.replies.pop(0) if self.replies else (201, {"sid": f"SM{next(self._ids):032d}",
                                                                        "status": "queued"})
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request, response.url = request, request.url
        return response

    def close(self):
        pass

    def forms(self):
        from urllib.parse import parse_qs

        return [{k: v[0] for k, v in parse_qs(r.body).items()} for r in self.requests]


@pytest.fixture
def twilio(settings, monkeypatch):
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.backends.sms.TwilioSMSBackend"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.NOTIFICATIONS_SMS_STATUS_CALLBACK_URL = CALLBACK_URL
    fake = FakeTwilio()
    session = requests.Session()
    session.mount("https://", fake)
    monkeypatch.setattr(backend_for(Channel.SMS), "session", session)
    return fake


@pytest.fixture(scope="session")
def fcm_credentials():
    """A service-account JSON with a real (throwaway) key: firebase-admin parses it, never calls out."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "realio-test", "private_key_id": "k1",
                       "private_key": pem, "client_email": "push@realio-test.iam.gserviceaccount.com",
                       "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"})


class FakeFCM:
    """Stands in for `messaging.send_each_for_multicast`: keeps the messages, answers per token
    with `outcomes[token]` (an exception instance) or success."""

    def __init__(self):
        self.messages = []
        self.apps = []
        self.outcomes = {}
        self._ids = itertools.count(1)

    def __call__(self, message, dry_run=False, app=None):
        self.messages.append(message)
        self.apps.append(app)
        responses = []
        for token in message.tokens:
            error = self.outcomes.get(token)
            if error is None:
                responses.append(messaging.SendResponse({"name": f"projects/realio-test/messages/{next(self._ids)}"},
                                                        None))
            else:
                responses.append(messaging.SendResponse(None, error))
        return messaging.BatchResponse(responses)


@pytest.fixture
def fcm(settings, monkeypatch, fcm_credentials):
    settings.NOTIFICATIONS_PUSH_BACKEND = "notifications.backends.push.FCMPushBackend"
    settings.FCM_CREDENTIALS_JSON = fcm_credentials
    fake = FakeFCM()
    monkeypatch.setattr(messaging, "send_each_for_multicast", fake)
    return fake


def wait_for(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
