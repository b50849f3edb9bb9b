"""Log lines carry the request id (and the user once resolved); JSON in production."""

import io
import json
import logging

import pytest
from pythonjsonlogger.json import JsonFormatter

from accounts.tests.factories import UserFactory
from realio.logging import RequestContextFilter


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s"))
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_a_request_log_line_is_json_with_request_and_user_ids(client, json_log):
    user = UserFactory()
    client.force_login(user)

    response = client.get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="req-123")

    assert response.headers["X-Request-ID"] == "req-123"
    line = json.loads(json_log.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "req-123"
    assert line["levelname"] == "WARNING" and "Not Found" in line["message"]


def test_outside_a_request_the_ids_are_placeholders():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)

    RequestContextFilter().filter(record)

    assert record.request_id == "-" and record.user_id is None


@pytest.mark.django_db
def test_log_lines_inside_a_view_carry_the_signed_in_user(client, json_log):
    user = UserFactory()
    client.force_login(user)

    client.get("/api/v1/gone/", HTTP_X_REQUEST_ID="req-789")

    lines = [json.loads(line) for line in json_log.getvalue().strip().splitlines()]
    assert lines[-1]["request_id"] == "req-789" and lines[-1]["user_id"] == user.pk
