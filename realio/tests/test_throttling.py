"""The API's default rate limits (realio/throttling.py) on the real Redis cache."""

import pytest
from django.conf import settings
from rest_framework import throttling as drf_throttling

from accounts.tests.factories import UserFactory
from listings.tests.factories import ListingFactory
from realio import throttling
from realio.redis import get_redis

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates():
    """Set the anon and user rates for the test (the throttles read DRF's class attribute)."""
    original = drf_throttling.SimpleRateThrottle.THROTTLE_RATES

    def set_rates(**rates):
        drf_throttling.SimpleRateThrottle.THROTTLE_RATES = {**original, **rates}

    yield set_rates
    drf_throttling.SimpleRateThrottle.THROTTLE_RATES = original


def throttle_keys():
    return sorted(key.decode() for key in get_redis().keys("realio:throttle*"))


def test_the_api_uses_the_counting_throttles():
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "realio.throttling.AnonRateThrottle", "realio.throttling.UserRateThrottle"]


def test_an_anonymous_caller_over_the_rate_gets_429_with_retry_after(api_client, rates):
    rates(anon="3/min")
    listing = ListingFactory()

    responses = [api_client.get(f"/api/v1/listings/{listing.pk}/") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert isinstance(responses[3].json()["detail"], str)
    assert 0 < int(responses[3]["Retry-After"]) <= 60
    # Counted once, by address: the per-user throttle leaves anonymous callers alone.
    assert len(throttle_keys()) == 1 and "throttle_anon_127.0.0.1" in throttle_keys()[0]
    # Another address has its own budget.
    assert api_client.get(f"/api/v1/listings/{listing.pk}/", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_signed_in_callers_are_counted_per_account_not_per_address(api_client, auth_client, rates):
    rates(user="2/min", anon="1/min")
    listing = ListingFactory()
    first, second = auth_client(UserFactory()), auth_client(UserFactory())

    codes_first = [first.get(f"/api/v1/listings/{listing.pk}/").status_code for _ in range(3)]
    codes_second = [second.get(f"/api/v1/listings/{listing.pk}/").status_code for _ in range(2)]

    assert codes_first == [200, 200, 429]
    assert codes_second == [200, 200]  # same address, its own account's budget
    assert not any("throttle_anon" in key for key in throttle_keys())


def test_rejected_requests_do_not_use_up_the_budget(api_client, rates, monkeypatch):
    rates(anon="2/min")
    listing = ListingFactory()
    codes = [api_client.get(f"/api/v1/listings/{listing.pk}/").status_code for _ in range(5)]
    assert codes == [200, 200, 429, 429, 429]
    count = sum(int(get_redis().get(key) or 0) for key in throttle_keys())
    assert count == 2


def test_an_unreachable_redis_is_answered_503_not_500(api_client, rates, monkeypatch):
    from limits import strategies
    from limits.storage import RedisStorage

    rates(anon="1/min")
    listing = ListingFactory()
    # A port nothing listens on: what the throttle meets when Redis is down.
    down = strategies.SlidingWindowCounterRateLimiter(RedisStorage("redis://127.0.0.1:1", socket_timeout=0.2))
    monkeypatch.setattr(throttling, "_limiter", lambda: down)

    response = api_client.get(f"/api/v1/listings/{listing.pk}/")

    assert response.status_code == 503
    assert response["Retry-After"] and isinstance(response.json()["detail"], str)
