"""Versioned model artefacts: files under RECO_MODEL_DIR, a ModelVersion row each, and the
promoted version that every serving process follows without a restart.

A trained model is written to `<RECO_MODEL_DIR>/<kind>/<version>.joblib` (to a temporary name,
then renamed: a reader never sees half a file) and recorded as a ModelVersion. Promotion flips
the `promoted` flag in one transaction and, after commit, sets the Redis key
`realio:ml:promoted:<kind>`. Each process keeps the model it serves in memory with its version;
at most every RECO_RELOAD_SECONDS it reads that key (one Redis GET; the database when the key
is missing) and, when the version changed, loads the new file and swaps it in with a single
assignment. A request takes the model once and uses that object throughout, so it never mixes
two versions.
"""

import contextlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import joblib
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realio.redis import get_redis
from realio.redis import key as redis_key
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)

_loaded: dict[str, tuple[str, object]] = {}
_checked: dict[str, float] = {}
_failed: dict[tuple[str, str], float] = {}
FAILED_RETRY_SECONDS = 60.0
_lock = threading.Lock()


def new_version(kind):
    return f"{kind}-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def artefact_path(kind, version):
    return Path(settings.RECO_MODEL_DIR) / kind / f"{version}.joblib"


def save_artefact(kind, version, model):
    path = artefact_path(kind, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp-{os.getpid()}")
    joblib.dump(model, temporary)
    temporary.replace(path)
    return path


def load_artefact(kind, version):
    return joblib.load(artefact_path(kind, version))


def promoted_key(kind):
    return redis_key("ml", "promoted", kind)


def promote(row):
    """Make `row` the version of its kind that serves (every process, within RECO_RELOAD_SECONDS)."""
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(kind=row.kind, promoted=True).exclude(pk=row.pk).update(
            promoted=False, status=ModelVersion.Status.TRAINED)
        row.promoted = True
        row.status = ModelVersion.Status.PROMOTED
        row.promoted_at = timezone.now()
        row.save(update_fields=["promoted", "status", "promoted_at"])
        transaction.on_commit(lambda: get_redis().set(promoted_key(row.kind), row.version))
    logger.info("promoted %s", row.version)


def promoted_row(kind):
    return ModelVersion.objects.filter(kind=kind, promoted=True).first()


def promoted_version(kind):
    """The promoted version of `kind` (Redis first, the database when the key is missing)."""
    try:
        value = get_redis().get(promoted_key(kind))
    except Exception:  # Redis down: the database still knows
        logger.warning("could not read the promoted %s version from Redis", kind, exc_info=True)
        value = None
    if value is not None:
        return value.decode()
    row = promoted_row(kind)
    if row is None:
        return None
    with contextlib.suppress(Exception):  # a cache refill; the database answered
        get_redis().set(promoted_key(kind), row.version, nx=True)
    return row.version


def current(kind):
    """The promoted model of `kind` in this process (loaded lazily), or None if none is promoted.

    A version whose file cannot be read is not retried for a minute (the previous model, if any,
    keeps serving), and the database's promoted version is tried instead of Redis's.
    """
    now = time.monotonic()
    entry = _loaded.get(kind)
    if entry is not None and now - _checked.get(kind, 0.0) < settings.RECO_RELOAD_SECONDS:
        return entry[1]
    version = promoted_version(kind)
    _checked[kind] = now
    if version is None or (entry is not None and entry[0] == version):
        return entry[1] if entry else None
    failed = _failed.get((kind, version))
    if failed is not None and now - failed < FAILED_RETRY_SECONDS:
        return entry[1] if entry else None
    with _lock:
        entry = _loaded.get(kind)
        if entry is not None and entry[0] == version:
            return entry[1]
        try:
            model = load_artefact(kind, version)
        except (OSError, EOFError, ValueError) as exc:
            _failed[(kind, version)] = now
            logger.error("could not load %s (%s); serving %s", version, exc, entry[0] if entry else "nothing")
            row = promoted_row(kind)
            if row is None or row.version == version or (entry is not None and entry[0] == row.version):
                return entry[1] if entry else None
            try:
                model, version = load_artefact(kind, row.version), row.version
            except (OSError, EOFError, ValueError):
                _failed[(kind, row.version)] = now
                return entry[1] if entry else None
        _loaded[kind] = entry = (version, model)
    return entry[1]


def forget():
    """Drop this process's loaded models (tests)."""
    _loaded.clear()
    _checked.clear()
    _failed.clear()
