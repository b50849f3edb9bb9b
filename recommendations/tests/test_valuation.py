"""Price estimates: training, the estimate API, its range, evaluation against the city baseline."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import AgentFactory
from listings import demo as listing_demo
from listings.models import Listing
from listings.tests.factories import ListingFactory
from recommendations import store, valuation
from recommendations.models import ModelVersion

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status


@pytest.fixture
def market():
    """Demo homes: prices built from neighbourhood levels, size, type, age and features."""
    listing_demo.seed_listings(agents=[AgentFactory().pk], count=500, seed=11)


def test_before_any_model_the_estimate_is_404(api_client):
    home = ListingFactory()
    response = api_client.get(f"/api/v1/listings/{home.pk}/estimate/")
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)


def test_too_few_prices_fail_the_training_and_promote_nothing():
    ListingFactory()
    (row,) = valuation.train_valuation()
    assert row.status == Status.FAILED
    assert store.current("valuation") is None


def test_a_trained_model_serves_estimates_with_an_ordered_range(market, api_client):
    (row,) = valuation.train_valuation()
    assert row.status == Status.PROMOTED, row.error

    for listing_type in ("sale", "rent"):
        home = Listing.objects.filter(status="active", listing_type=listing_type).first()
        response = api_client.get(f"/api/v1/listings/{home.pk}/estimate/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) >= {"value", "low", "high", "currency", "model_version"}
        assert all(isinstance(body[name], str) for name in ("value", "low", "high"))
        low, value, high = (Decimal(body[name]) for name in ("low", "value", "high"))
        assert Decimal(0) < low <= value <= high
        assert body["model_version"] == row.version and body["currency"] == home.currency
        # in the right range of the asking price (the demo's noise is about 10 %)
        assert Decimal("0.5") < value / home.price < Decimal("2")


def test_the_model_beats_the_city_baseline_and_its_range_covers_about_its_nominal_share():
    # given enough homes that each city has a few dozen prices of each kind
    listing_demo.seed_listings(agents=[AgentFactory().pk], count=1500, seed=11)

    _valuation, _tests, metrics = valuation.fit_and_measure()

    for listing_type in ("sale", "rent"):
        m = metrics[listing_type]
        assert m["mape"] < m["baseline"]["mape"]
        assert m["rmsle"] < m["baseline"]["rmsle"]
        assert abs(m["coverage"] - m["nominal_coverage"]) < 0.15
        assert m["importance"][0][1] > 0


class OverpricingModel(valuation.PriceModel):
    """A model that estimates every home 80 % too high."""

    def predict(self, rows):
        value, low, high = super().predict(rows)
        return value * 1.8, low * 1.8, high * 1.8


def test_a_worse_valuation_is_not_promoted(market, monkeypatch):
    (good,) = valuation.train_valuation()
    original = valuation.fit_price_model

    def overpricing(*args, **kwargs):
        model = original(*args, **kwargs)
        model.__class__ = OverpricingModel
        return model

    monkeypatch.setattr(valuation, "fit_price_model", overpricing)
    (worse,) = valuation.train_valuation()

    assert worse.status == Status.REJECTED
    assert worse.metrics["comparison"]["current_version"] == good.version
    assert store.current("valuation").version == good.version


def test_a_weekly_rent_is_estimated_per_week(market):
    valuation.train_valuation()
    home = Listing.objects.filter(status="active", listing_type="rent").first()
    monthly = valuation.estimate_for(home)["value"]
    Listing.objects.filter(pk=home.pk).update(rent_period="week", updated_at=timezone.now())  # as the service does
    home.refresh_from_db()
    weekly = valuation.estimate_for(home)["value"]
    assert weekly == pytest.approx(monthly * Decimal(12) / Decimal(52), rel=Decimal("0.01"))


def test_evaluate_valuation_prints_a_table_and_writes_json(market, tmp_path, capsys):
    report = tmp_path / "valuation.json"
    call_command("evaluate_valuation", json=str(report))
    out = capsys.readouterr().out
    assert "| sale: model |" in out and "| rent: city median €/m² × area |" in out
    data = json.loads(report.read_text())
    assert {"mape", "median_ape", "rmsle", "coverage", "baseline"} <= set(data["sale"])


def test_train_valuation_command_promotes(market, capsys):
    call_command("train_valuation")
    assert "promoted" in capsys.readouterr().out
    assert ModelVersion.objects.filter(kind="valuation", promoted=True).count() == 1
