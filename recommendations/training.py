"""Training runs: fit on the past, measure on a later hold-out, keep the artefact, promote it only
when it trained and is not worse than the model that serves now on that same hold-out."""

import json
import logging
import time
import traceback

import numpy as np
from django.conf import settings
from threadpoolctl import threadpool_limits

from listings.models import Listing
from recommendations import recommender, store
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)
Kind = ModelVersion.Kind
Status = ModelVersion.Status
HOLDOUT_SHARE = 0.1
MIN_COMPARE_USERS = 20


class TrainingError(RuntimeError):
    pass


def plain(value):
    """Metrics as plain JSON types (numpy scalars and arrays become numbers and lists)."""
    def convert(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.loads(json.dumps(value, default=convert))


def threads():
    """Limit BLAS/OpenMP threads while training: on the shared 2-core machines, OpenMP
    oversubscription made a gradient-boosting fit 7× slower than one thread."""
    return threadpool_limits(limits=settings.RECO_TRAIN_THREADS)


def recommender_holdout(*, holdout=HOLDOUT_SHARE, factors=None, blend=None, random_state=0):
    """(candidate model, (train, test), metrics, base, full log, factors): the shared first half
    of training and evaluation. The candidate is fitted on interactions before the split time."""
    with threads():
        return _recommender_holdout(holdout=holdout, factors=factors, blend=blend, random_state=random_state)


def _recommender_holdout(*, holdout, factors, blend, random_state):
    frame = recommender.load_listings()
    if not len(frame):
        raise TrainingError("There are no listings to learn from.")
    log = recommender.load_interactions()
    base = recommender.content_base(frame, random_state=random_state)
    train, test = recommender.time_split(log, holdout)
    factors = factors or settings.RECO_FACTORS
    candidate = recommender.fit(base, train, factors=factors, blend=blend, random_state=random_state)
    cases = recommender.test_cases(candidate, train, test)
    catalogue = int(frame.active.sum()) or len(frame)
    metrics = {
        "interactions": len(log), "listings": len(frame), "train_interactions": len(train),
        "holdout_interactions": len(test), "blend": list(candidate.blend),
        "model": recommender.evaluate(candidate, cases, catalogue=catalogue),
        "popularity": recommender.evaluate(candidate, cases, popularity_only=True, catalogue=catalogue),
        "validation": candidate.metrics.get("validation", {}),
    }
    base_ndcg = metrics["popularity"]["ndcg@10"]
    metrics["ndcg_ratio"] = metrics["model"]["ndcg@10"] / base_ndcg if base_ndcg else None
    return candidate, (train, test), metrics, base, log, factors


def train_recommender(*, promote=True, factors=None, blend=None, holdout=HOLDOUT_SHARE):
    """Train, record and (if good enough) promote a recommender. Returns its ModelVersion.

    A failure leaves a `failed` row with the error and the serving model untouched.
    """
    version = store.new_version(Kind.RECOMMENDER)
    row = ModelVersion.objects.create(kind=Kind.RECOMMENDER, version=version,
                                      params={"factors": factors or settings.RECO_FACTORS, "holdout": holdout,
                                              "blend": list(blend) if blend else None})
    started = time.monotonic()
    try:
        candidate, (train, test), metrics, base, log, factors = recommender_holdout(
            holdout=holdout, factors=factors, blend=blend)
        with threads():
            final = recommender.fit(base, log, factors=factors, blend=candidate.blend, version=version)
        final.metrics = metrics
        store.save_artefact(Kind.RECOMMENDER, version, final)
    except Exception as exc:
        return _failed(row, exc, started)
    row.metrics = plain(metrics)
    row.train_seconds = time.monotonic() - started
    row.params["blend"] = plain(list(final.blend))
    row.save(update_fields=["metrics", "train_seconds", "params"])

    def compare(current):
        # Only hold-out interactions after the current model was trained are news to it: on
        # those, both are measured; without enough of them, the recorded hold-out scores are.
        fresh = test.subset(test.time >= current.trained_at)
        cases_new = recommender.test_cases(candidate, train, fresh)
        cases_current = recommender.test_cases(current, train, fresh)
        if min(len(cases_new), len(cases_current)) < MIN_COMPARE_USERS:
            return None
        return (recommender.evaluate(candidate, cases_new)["ndcg@10"],
                recommender.evaluate(current, cases_current)["ndcg@10"])

    with threads():
        _decide(row, metrics["model"]["ndcg@10"], compare, promote=promote, higher_is_better=True)
    return row


def _failed(row, exc, started):
    logger.exception("training %s failed", row.version)
    row.status = Status.FAILED
    row.error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
    row.train_seconds = time.monotonic() - started
    row.save(update_fields=["status", "error", "train_seconds"])
    return row


def _decide(row, score, compare, *, promote, higher_is_better):
    """Promote `row` (hold-out score `score`) unless the promoted model does better.

    `compare(current model)` returns (new score, current score) measured on hold-out data the
    current model never saw, or None when there is too little of it: then the current model's
    recorded hold-out score is the reference.
    """
    current = store.promoted_row(row.kind)
    new_score, current_score, basis = score, None, None
    if current is not None:
        try:
            measured = compare(store.load_artefact(row.kind, current.version))
        except Exception:  # an unreadable current model is no reason to keep it
            logger.warning("could not score the current %s %s", row.kind, current.version, exc_info=True)
            measured, current = None, None
        if measured is not None:
            (new_score, current_score), basis = measured, "same unseen hold-out"
        elif current is not None and current.metrics.get("score") is not None:
            current_score, basis = current.metrics["score"], "recorded hold-out scores"
    tolerance = settings.RECO_PROMOTE_TOLERANCE
    if current_score is None or new_score is None:
        better = new_score is not None or current_score is None
    elif higher_is_better:
        better = new_score >= current_score * (1 - tolerance)
    else:
        better = new_score <= current_score * (1 + tolerance)
    row.metrics = plain({**row.metrics, "score": score, "comparison": {
        "current_version": current.version if current else None, "basis": basis,
        "new": new_score, "current": current_score, "better_or_equal": bool(better)}})
    if promote and better:
        row.save(update_fields=["metrics"])
        store.promote(row)
    else:
        row.status = Status.TRAINED if better else Status.REJECTED
        row.save(update_fields=["metrics", "status"])


def active_listing_count():
    return Listing.objects.filter(status=Listing.Status.ACTIVE).count()
