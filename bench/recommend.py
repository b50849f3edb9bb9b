"""Recommendations at scale: training time and serving latency, each beside a baseline.

Builds (or reuses, with --reuse) a database `reco_bench` on the server of DATABASE_URL holding
`seed_demo --listings N --customers U` (default 100,000 listings, 20,000 customers) and
`seed_interactions --per-user P` (default 50: about 1,000,000 interactions from hidden tastes),
then:

- train: `training.train_recommender()` in this process (load, content vectors, similar-home
  neighbours, blend tuning on a validation split, hold-out evaluation, refit, artefact),
  beside the baseline "count the interactions per listing" (the popularity model);
- serve, in this process (`serving.recommend` / `serving.similar`, what the API calls):
  recommendations from the precomputed candidates (warm) beside the same request computing
  the person's candidates on the spot (cold: fold-in and scoring of every listing), and
  similar homes from the precomputed neighbours beside the SQL fallback (same city and deal,
  nearest price); the fold-in refresh after an interaction on its own;
- api: `GET /api/v1/recommendations/` (JWT, warm) and `GET /api/v1/listings/{id}/similar/` over
  HTTP to one gunicorn sync worker (the WSGI path production serves HTTP on), keep-alive,
  throttles lifted.

Redis: it uses REDIS_CACHE_DB from the environment (set one of your own: the bench writes the
promoted-model key and candidates there). Models go to a temporary RECO_MODEL_DIR.

Usage: `.venv/bin/python bench/recommend.py [--listings 100000] [--customers 20000] [--per-user 50]
[--requests 300] [--reuse] [--keep]`
"""

import argparse
import http.client
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, libpq, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "reco_bench"


def database_exists(url):
    import psycopg

    with psycopg.connect(libpq(url, "postgres"), autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone())


def prepare(url, args, env):
    if args.reuse and database_exists(url):
        return "reused"
    recreate(url, BENCH_DB)
    manage(env, "migrate", "--noinput")
    seed_seconds, _ = manage(env, "seed_demo", "--listings", str(args.listings), "--agents", "50",
                             "--customers", str(args.customers), "--no-progress")
    interaction_seconds, _ = manage(env, "seed_interactions", "--reset", "--per-user", str(args.per_user))
    return (f"seeded {args.listings:,} listings and {args.customers:,} customers in {seed_seconds:.0f} s, "
            f"interactions in {interaction_seconds:.0f} s")


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def timed(function, items):
    samples = []
    for item in items:
        started = time.perf_counter()
        function(item)
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


class Api:
    def __init__(self, env):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.process = subprocess.Popen(  # noqa: S603 (our own app)
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "realio.wsgi", "-w", "1", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning"],
            cwd=ROOT, env={**env, "API_THROTTLE_ANON": "1000000/min", "API_THROTTLE_USER": "1000000/min",
                           "DEBUG": "false", "LOG_LEVEL": "WARNING"})
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(self, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}: {body[:300]!r}")
        return json.loads(body)

    def stop(self):
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def popularity_baseline():
    """Training the popularity model: load the interactions and count them per listing."""
    import numpy as np

    from recommendations import recommender

    started = time.perf_counter()
    log = recommender.load_interactions()
    np.bincount(np.searchsorted(np.unique(log.listing), log.listing), weights=log.weight)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300, help="requests per measured kind (300)")
    parser.add_argument("--reuse", action="store_true", help="reuse reco_bench if it exists")
    parser.add_argument("--keep", action="store_true", help="keep reco_bench afterwards")
    args = parser.parse_args()

    url = database_url()
    models = tempfile.mkdtemp(prefix="reco-bench-models-")
    env = {**os.environ, "DATABASE_URL": with_database(url, BENCH_DB), "DJANGO_SETTINGS_MODULE": "realio.settings.base",
           "RECO_MODEL_DIR": models, "RECO_RELOAD_SECONDS": "5"}
    print(prepare(url, args, env), flush=True)
    os.environ.update(env)

    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from listings.models import Listing
    from realio.redis import get_redis
    from recommendations import serving, store, training
    from recommendations.models import Interaction

    cache.clear()
    cache_seconds = settings.RECO_LISTING_CACHE_SECONDS
    interactions = Interaction.objects.count()
    listings = Listing.objects.count()
    print(f"{listings:,} listings, {interactions:,} interactions; cores: {os.cpu_count()}", flush=True)

    # --- training
    baseline_seconds = popularity_baseline()
    started = time.perf_counter()
    row = training.train_recommender()
    train_seconds = time.perf_counter() - started
    if row.status == "failed":
        raise SystemExit(f"training failed: {row.error}")
    metrics = row.metrics
    print(f"trained {row.version}: {row.status}; blend {row.params.get('blend')}; hold-out NDCG@10 "
          f"{metrics['model']['ndcg@10']:.4f} vs popularity {metrics['popularity']['ndcg@10']:.4f}", flush=True)

    # --- serving in process
    rng = random.Random(7)
    people = list(User.objects.filter(interactions__isnull=False).distinct().values_list("pk", flat=True)[:20000])
    people = rng.sample(people, min(args.requests, len(people)))
    users = list(User.objects.filter(pk__in=people))
    active = list(Listing.objects.filter(status="active").values_list("pk", flat=True))
    homes = list(Listing.objects.filter(pk__in=rng.sample(active, min(args.requests, len(active)))))
    model = store.current("recommender")
    client = get_redis()
    client.delete(*[serving.candidates_key(user.pk) for user in users])

    def bodies(picked):
        serving.listing_bodies([pk for pk, _score in picked])

    # Baselines first, with the body cache off: what a request costs without precomputation.
    settings.RECO_LISTING_CACHE_SECONDS = 0
    cold = timed(lambda user: bodies(serving.pick(serving.compute_candidates(model, user.pk), user=user)), users)
    similar_sql = timed(lambda home: bodies([(pk, 0) for pk in serving._similar_without_model(home, 10)]), homes)
    settings.RECO_LISTING_CACHE_SECONDS = cache_seconds
    similar_first = timed(lambda home: bodies([(pk, 0) for pk in serving.similar(home)]), homes)
    similar_again = timed(lambda home: bodies([(pk, 0) for pk in serving.similar(home)]), homes)
    started = time.perf_counter()
    warmed = serving.warm_all_bodies()  # what the worker does after a promotion
    warm_seconds = time.perf_counter() - started
    fold_in = timed(lambda user: serving.refresh_user(user.pk), users)  # stores candidates, warms bodies
    warm = timed(lambda user: bodies(serving.recommend(user)), users)

    # --- over HTTP (warm candidates)
    api = Api(env)
    try:
        tokens = {user.pk: str(RefreshToken.for_user(user).access_token) for user in users}
        api.get("/api/v1/recommendations/", tokens[users[0].pk])  # the worker loads the model once
        api.get(f"/api/v1/listings/{homes[0].pk}/similar/")
        api_reco = timed(lambda user: api.get("/api/v1/recommendations/", tokens[user.pk]), users)
        api_similar = timed(lambda home: api.get(f"/api/v1/listings/{home.pk}/similar/"), homes)
        api_floor = timed(lambda user: api.get("/api/v1/me/", tokens[user.pk]), users)
        api_anonymous = timed(lambda _user: api.get("/api/v1/recommendations/"), users[:100])
    finally:
        api.stop()

    print()
    print(f"| training ({interactions:,} interactions, {listings:,} listings) | seconds |")
    print("| --- | ---: |")
    print(f"| `train_recommender` (hold-out fit + blend tuning + evaluation + final fit + artefact) "
          f"| {train_seconds:.1f} |")
    print(f"| baseline: popularity counts (load + count) | {baseline_seconds:.1f} |")
    print(f"| after promotion: cache the API bodies of {warmed:,} active listings | {warm_seconds:.1f} |")
    print()
    print("| serving (ms) | p50 | p95 |")
    print("| --- | ---: | ---: |")
    rows = [
        ("`recommendations/` over HTTP, precomputed candidates", api_reco),
        ("`recommendations/` over HTTP, anonymous (popular)", api_anonymous),
        ("`similar/` over HTTP, precomputed neighbours (bodies warmed after promotion)", api_similar),
        ("service: recommend + bodies, precomputed candidates", warm),
        ("baseline: recommend + bodies computing candidates on request, no cache", cold),
        ("service: fold-in refresh of one person (off the request path; warms bodies)", fold_in),
        ("floor: `me/` over HTTP (JWT, one row: the stack without our work)", api_floor),
        ("service: similar + bodies, bodies not cached", similar_first),
        ("service: similar + bodies, bodies cached", similar_again),
        ("baseline: similar by SQL (same city and deal, nearest price) + bodies, no cache", similar_sql),
    ]
    for name, (p50, p95) in rows:
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")
    print(f"\nmodel {model.version}: {len(model.item_ids):,} items, factors "
          f"{None if model.factors is None else model.factors.shape[1]}, content {model.content.shape[1]} dims")

    import shutil

    shutil.rmtree(models, ignore_errors=True)
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
