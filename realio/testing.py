"""pytest fixtures on the real services: Redis cleaned per test, a Celery worker on the real
broker using the test database, API clients."""

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with empty test Redis databases (cache, channel layer, broker): rate
    limits and cached values never leak from one test into the next."""
    for url in settings.TEST_REDIS_URLS:
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    yield


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(api_client):
    """`auth_client(user)` → an APIClient sending that user's Bearer access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (in a thread of this process, so it uses the test database)
    consuming every queue from the real Redis broker. Tests using it need committed data,
    hence the transactional database."""
    from celery.contrib.testing.worker import start_worker

    from realio.celery import app

    with start_worker(app, perform_ping_check=False, queues=["default", "notifications", "search", "ml"],
                      shutdown_timeout=30) as worker:
        yield worker
