"""Price estimates: gradient boosting on the platform's own prices, one model for sales and one
for rents, with a low–high range from quantile models.

Training rows are closed listings (their `close_price`) and listings on the market (their
asking price); rents are compared per month. Features: property type, bedrooms, bathrooms,
log area, year built, the listing's features, latitude/longitude, and two neighbourhood price
levels learned from the data: the target encoding (scikit-learn's `TargetEncoder`, cross-fitted
so a home never sees its own price) of log price per m² over a ~1 km grid cell and the city.
The models learn log price as corrections to a first guess, area × the city's learned level.
Three `HistGradientBoostingRegressor`s: squared error (the estimate), quantile 0.1 (low) and
0.9 (high), the range then widened by conformal calibration to a measured 80 % coverage.

Each training run holds out 20 % of the rows at random, measures MAPE, median APE, RMSLE and
the share of true prices inside the range there, beside the baseline "median price per m² of
the city × area", and keeps the models fitted on the other 80 % (the figures shown are the
figures of the model that serves). Which features matter is measured by permutation
importance on the hold-out: how much the error grows when a feature's values are shuffled.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext_lazy as _
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder

from listings.models import Feature, Listing
from recommendations import store
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)
Kind = ModelVersion.Kind
PROPERTY_TYPES = list(Listing.PropertyType.values)
FEATURES = list(Feature.values)
LOW_QUANTILE, HIGH_QUANTILE = 0.1, 0.9
MIN_ROWS = 30
FEATURE_LABELS = {
    "property_type": _("Property type"), "bedrooms": _("Bedrooms"), "bathrooms": _("Bathrooms"),
    "area": _("Living area"), "year_built": _("Year built"), "latitude": _("Location (north–south)"),
    "longitude": _("Location (east–west)"), "street_level": _("Prices in the immediate area"),
    "district_level": _("Prices in the city"), "features": _("Features (garden, pool, view…)"),
}
COLUMNS = ["property_type", "bedrooms", "bathrooms", "area", "year_built", "latitude", "longitude",
           "street_level", "district_level", *[f"feature:{slug}" for slug in FEATURES]]

ROWS_SQL = """
    SELECT id, listing_type, property_type, bedrooms, bathrooms, area_sqm, year_built,
           ST_Y(location::geometry), ST_X(location::geometry), features, lower(city),
           CASE WHEN rent_period = 'week' THEN 52.0 / 12 ELSE 1 END,
           COALESCE(close_price, price)
      FROM listings_listing
"""


@dataclass
class Rows:
    ids: np.ndarray
    listing_type: np.ndarray
    property_type: np.ndarray
    numbers: np.ndarray  # bedrooms, bathrooms, area, year, lat, lng
    features: np.ndarray
    city: np.ndarray
    to_monthly: np.ndarray
    price: np.ndarray  # monthly for rents

    def __len__(self):
        return len(self.ids)

    def take(self, index):
        return Rows(self.ids[index], self.listing_type[index], self.property_type[index], self.numbers[index],
                    self.features[index], self.city[index], self.to_monthly[index], self.price[index])


def _rows(records):
    def floats(values):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)

    if not records:
        records = []
    columns = list(zip(*records, strict=True)) if records else [[] for _ in range(13)]
    numbers = np.column_stack([floats(columns[i]) for i in (3, 4, 5, 6, 7, 8)]) if records else np.zeros((0, 6))
    features = np.array([[slug in (chosen or []) for slug in FEATURES] for chosen in columns[9]],
                        dtype=np.float64).reshape(len(records), len(FEATURES))
    to_monthly = floats(columns[11])
    return Rows(ids=np.array(columns[0], dtype=np.int64), listing_type=np.array(columns[1], dtype=object),
                property_type=np.array(columns[2], dtype=object), numbers=numbers, features=features,
                city=np.array(columns[10], dtype=object), to_monthly=to_monthly,
                price=floats(columns[12]) * to_monthly)


def load_training_rows():
    """Closed listings at their close price and listings on the market at their asking price."""
    with connection.cursor() as cursor:
        cursor.execute(ROWS_SQL + " WHERE (status IN ('sold', 'rented') AND close_price > 0)"
                                  " OR (status IN ('active', 'pending') AND price > 0) ORDER BY id")
        return _rows(cursor.fetchall())


def load_rows(ids):
    with connection.cursor() as cursor:
        cursor.execute(ROWS_SQL + " WHERE id = ANY(%s) ORDER BY id", [list(ids)])
        return _rows(cursor.fetchall())


def _cells(rows):
    """The two places a home's price level is learned for: its ~1 km grid cell and its city."""
    lat, lng = rows.numbers[:, 4], rows.numbers[:, 5]
    fine = [f"{round(a / 0.01)}:{round(b / 0.01)}" for a, b in zip(lat.tolist(), lng.tolist(), strict=True)]
    return np.column_stack([np.array(fine, dtype=object), rows.city.astype(object)])


def _log_price_per_sqm(rows, area_fill):
    area = np.where(np.isnan(rows.numbers[:, 2]), area_fill, rows.numbers[:, 2])
    return np.log(rows.price / np.maximum(area, 1.0))


@dataclass
class PriceModel:
    """The estimate, low and high models of one listing type, with what they need to predict."""

    listing_type: str
    encoder: TargetEncoder
    area_fill: float
    median: HistGradientBoostingRegressor
    low: HistGradientBoostingRegressor
    high: HistGradientBoostingRegressor
    city_price_per_sqm: dict
    global_price_per_sqm: float
    metrics: dict = field(default_factory=dict)
    importance: list = field(default_factory=list)
    widen: float = 0.0  # log-space widening of the range (conformal calibration)
    train_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def features(self, rows, *, levels=None):
        if levels is None:
            levels = self.encoder.transform(_cells(rows))
        property_type = np.array([PROPERTY_TYPES.index(t) if t in PROPERTY_TYPES else -1
                                  for t in rows.property_type.tolist()], dtype=np.float64)
        numbers = rows.numbers.copy()
        numbers[:, 2] = np.log(numbers[:, 2])
        return np.column_stack([property_type, numbers, levels, rows.features])

    def offset(self, rows, levels):
        """log(area × the learned price per m² of the city): the models learn corrections
        to this first guess (type, age, features, the street's own level) rather than the whole
        price, which needs far fewer homes to get right."""
        area = np.where(np.isnan(rows.numbers[:, 2]), self.area_fill, rows.numbers[:, 2])
        return np.log(np.maximum(area, 1.0)) + levels[:, 1]

    def predict(self, rows):
        """(value, low, high) arrays, monthly for rents; low ≤ value ≤ high."""
        levels = self.encoder.transform(_cells(rows))
        x, offset = self.features(rows, levels=levels), self.offset(rows, levels)
        value = np.exp(self.median.predict(x) + offset)
        low = np.minimum(np.exp(self.low.predict(x) + offset - self.widen), value)
        high = np.maximum(np.exp(self.high.predict(x) + offset + self.widen), value)
        return value, low, high

    def area_level(self, rows):
        """The learned typical price per m² of the ~1 km cell around each home."""
        return np.exp(self.encoder.transform(_cells(rows))[:, 0])

    def baseline(self, rows):
        area = np.where(np.isnan(rows.numbers[:, 2]), self.area_fill, rows.numbers[:, 2])
        level = np.array([self.city_price_per_sqm.get(city, self.global_price_per_sqm)
                          for city in rows.city.tolist()])
        return level * area


@dataclass
class Valuation:
    """The artefact: one PriceModel per listing type that had enough data."""

    version: str
    trained_at: float
    models: dict

    def estimate(self, listing_id):
        rows = load_rows([listing_id])
        if not len(rows):
            return None
        model = self.models.get(rows.listing_type[0])
        if model is None:
            return None
        value, low, high = (float(v[0]) / rows.to_monthly[0] for v in model.predict(rows))
        return {"value": value, "low": low, "high": high, "model": model,
                "area_price_per_sqm": float(model.area_level(rows)[0]) / rows.to_monthly[0],
                "area": None if math.isnan(rows.numbers[0, 2]) else float(rows.numbers[0, 2])}


def _hgb(loss, quantile=None, n=1000, random_state=0):
    return HistGradientBoostingRegressor(
        loss=loss, quantile=quantile, max_iter=150, learning_rate=0.12, max_leaf_nodes=31,
        min_samples_leaf=max(5, min(20, n // 20)), categorical_features=[0], early_stopping=n >= 100,
        validation_fraction=0.15, n_iter_no_change=15, random_state=random_state)


def error_metrics(true, predicted):
    ape = np.abs(predicted - true) / true
    return {"mape": float(ape.mean()), "median_ape": float(np.median(ape)),
            "rmsle": float(np.sqrt(np.mean((np.log1p(predicted) - np.log1p(true)) ** 2)))}


def fit_price_model(rows, listing_type, *, random_state=0):
    area_fill = float(np.nanmedian(rows.numbers[:, 2])) if np.isfinite(rows.numbers[:, 2]).any() else 50.0
    target_level = _log_price_per_sqm(rows, area_fill)
    encoder = TargetEncoder(target_type="continuous", cv=KFold(5, shuffle=True, random_state=random_state))
    levels = encoder.fit_transform(_cells(rows), target_level)  # cross-fitted: no home sees its own price
    per_sqm = np.exp(target_level)
    cities = {}
    for city, value in zip(rows.city.tolist(), per_sqm.tolist(), strict=True):
        cities.setdefault(city, []).append(value)
    model = PriceModel(listing_type=listing_type, encoder=encoder, area_fill=area_fill, median=None, low=None,
                       high=None, city_price_per_sqm={c: float(np.median(v)) for c, v in cities.items()},
                       global_price_per_sqm=float(np.median(per_sqm)), train_ids=rows.ids.copy())
    x = model.features(rows, levels=levels)
    y = np.log(rows.price) - model.offset(rows, levels)
    model.median = _hgb("squared_error", n=len(rows), random_state=random_state).fit(x, y)
    # Quantile boosting under-covers on homes it has not seen, so the range is conformalised
    # (conformalized quantile regression): the quantile models learn on 75 % of the rows, and
    # the other 25 % measure how far outside [low, high] true prices fall; the range is widened
    # (in log space) by the quantile of those gaps that gives the nominal coverage.
    order = np.random.default_rng(random_state + 1).permutation(len(rows))
    cut = max(1, int(len(rows) * 0.75))
    learn, calibrate = np.sort(order[:cut]), np.sort(order[cut:])
    model.low = _hgb("quantile", LOW_QUANTILE, n=cut, random_state=random_state).fit(x[learn], y[learn])
    model.high = _hgb("quantile", HIGH_QUANTILE, n=cut, random_state=random_state).fit(x[learn], y[learn])
    if len(calibrate):
        xc, yc = x[calibrate], y[calibrate]
        gaps = np.maximum(model.low.predict(xc) - yc, yc - model.high.predict(xc))
        level = min(1.0, (HIGH_QUANTILE - LOW_QUANTILE) * (1 + 1 / len(calibrate)))
        model.widen = float(np.quantile(gaps, level))
    return model


def holdout_metrics(model, test):
    value, low, high = model.predict(test)
    metrics = error_metrics(test.price, value)
    metrics["coverage"] = float(np.mean((test.price >= low) & (test.price <= high)))
    metrics["nominal_coverage"] = HIGH_QUANTILE - LOW_QUANTILE
    metrics["rows"] = len(test)
    metrics["baseline"] = error_metrics(test.price, model.baseline(test))
    return metrics


class _EstimateWithOffset(RegressorMixin, BaseEstimator):
    """The estimate model seen from its feature columns alone, first guess included."""

    def __init__(self, model=None):
        self.model = model

    def fit(self, x=None, y=None):
        return self

    def predict(self, x):
        area = np.exp(x[:, COLUMNS.index("area")])
        area = np.where(np.isnan(area), self.model.area_fill, area)
        return (self.model.median.predict(x) + np.log(np.maximum(area, 1.0))
                + x[:, COLUMNS.index("district_level")])


def _importance(model, test, random_state=0):
    """Permutation importance of the estimate model on the hold-out: the rise of the mean absolute
    log error when one feature's values are shuffled (area and the area levels also move the
    first guess the model corrects, so they are shuffled there too)."""
    levels = model.encoder.transform(_cells(test))
    x = model.features(test, levels=levels)
    result = permutation_importance(_EstimateWithOffset(model=model), x, np.log(test.price), n_repeats=3,
                                    random_state=random_state, max_samples=min(len(test), 2000), n_jobs=1,
                                    scoring="neg_mean_absolute_error")
    grouped = {}
    for column, value in zip(COLUMNS, result.importances_mean.tolist(), strict=True):
        name = "features" if column.startswith("feature:") else column
        grouped[name] = grouped.get(name, 0.0) + value
    return sorted(([name, round(value, 5)] for name, value in grouped.items()), key=lambda pair: -pair[1])


def split(rows, share=0.2, random_state=0):
    order = np.random.default_rng(random_state).permutation(len(rows))
    cut = round(len(rows) * (1 - share))
    return rows.take(np.sort(order[:cut])), rows.take(np.sort(order[cut:]))


def fit_and_measure(rows=None, *, random_state=0):
    """(Valuation without a version, hold-out test rows per type, metrics per type)."""
    from recommendations.training import threads

    with threads():
        return _fit_and_measure(rows, random_state=random_state)


def _fit_and_measure(rows, *, random_state):
    rows = load_training_rows() if rows is None else rows
    models, tests, metrics = {}, {}, {}
    for listing_type in Listing.ListingType.values:
        subset = rows.take(np.flatnonzero(rows.listing_type == listing_type))
        if len(subset) < MIN_ROWS:
            metrics[listing_type] = {"rows": len(subset), "skipped": f"fewer than {MIN_ROWS} prices"}
            continue
        train, test = split(subset, random_state=random_state)
        model = fit_price_model(train, listing_type, random_state=random_state)
        model.metrics = {**holdout_metrics(model, test), "train_rows": len(train)}
        model.importance = _importance(model, test, random_state)
        model.metrics["importance"] = model.importance
        models[listing_type], tests[listing_type], metrics[listing_type] = model, test, model.metrics
    return Valuation(version="", trained_at=time.time(), models=models), tests, metrics


def combined_mape(valuation, tests, *, exclude=None):
    """Mean of the per-type MAPE over the hold-outs (lower is better); None without any.

    `exclude` {listing type: ids} leaves out rows a model was trained on."""
    values = []
    for listing_type, test in tests.items():
        model = valuation.models.get(listing_type)
        if model is None:
            return None
        if exclude is not None:
            test = test.take(np.flatnonzero(~np.isin(test.ids, exclude.get(listing_type, []))))
            if len(test) < MIN_ROWS:
                return None
        values.append(error_metrics(test.price, model.predict(test)[0])["mape"])
    return sum(values) / len(values) if values else None


def train_valuation(*, promote=True):
    """Train, record and (unless worse than the serving one on this hold-out) promote a valuation.

    Returns [ModelVersion] (one row: sale and rent models live in one artefact)."""
    from recommendations import training

    version = store.new_version(Kind.VALUATION)
    row = ModelVersion.objects.create(kind=Kind.VALUATION, version=version,
                                      params={"low": LOW_QUANTILE, "high": HIGH_QUANTILE, "holdout": 0.2})
    started = time.monotonic()
    try:
        valuation, tests, metrics = fit_and_measure()
        if not valuation.models:
            raise training.TrainingError("Not enough prices to learn from.")
        valuation.version = version
        store.save_artefact(Kind.VALUATION, version, valuation)
    except Exception as exc:
        return [training._failed(row, exc, started)]
    row.metrics = training.plain(metrics)
    row.train_seconds = time.monotonic() - started
    row.save(update_fields=["metrics", "train_seconds"])

    def compare(current):
        # Hold-out homes the current models were not trained on: both are measured on those.
        seen = {kind: model.train_ids for kind, model in current.models.items()}
        new, old = combined_mape(valuation, tests, exclude=seen), combined_mape(current, tests, exclude=seen)
        return None if new is None or old is None else (new, old)

    with training.threads():
        training._decide(row, combined_mape(valuation, tests), compare, promote=promote, higher_is_better=False)
    return [row]


def money(value):
    return Decimal(str(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP).quantize(Decimal("0.01"))


def estimate_for(listing):
    """{value, low, high, currency, model_version, …} for a listing, or None before any model
    (or without a model for its listing type). Cached per listing and model version."""
    from django.core.cache import cache

    valuation = store.current(Kind.VALUATION)
    if valuation is None:
        return None
    key = f"reco:estimate:{valuation.version}:{listing.pk}:{listing.updated_at.timestamp()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    found = valuation.estimate(listing.pk)
    if found is None:
        return None
    model = found["model"]
    explanation = [{"feature": name, "label": str(FEATURE_LABELS.get(name, name)), "importance": value}
                   for name, value in model.importance[:3] if value > 0]
    result = {
        "value": money(found["value"]), "low": money(found["low"]), "high": money(found["high"]),
        "currency": listing.currency or settings.CURRENCY, "model_version": valuation.version,
        "median_error": model.metrics.get("median_ape"), "coverage": model.metrics.get("coverage"),
        "holdout_rows": model.metrics.get("rows"), "top_features": explanation,
        "area_price_per_sqm": money(found["area_price_per_sqm"]),
        "estimate_per_sqm": money(found["value"] / found["area"]) if found["area"] else None,
    }
    cache.set(key, result, 3600)
    return result
