"""Search speed at scale: the search service, the HTTP API, hand-written SQL and the naive ORM.

Builds (or reuses, with --reuse) a database `bench_search` on the server of DATABASE_URL
holding `seed_demo --listings N` (default 100,000), then runs a fixed, seeded mix of queries
four ways and prints p50/p95 per kind and overall:

- service: `search.services.search(SearchQuery)` in this process (backend + hydration);
- api: `GET /api/v1/search/` over HTTP to one gunicorn sync worker (the WSGI path production
  serves HTTP on), keep-alive, throttles lifted;
- sql: the same page + count + facets as hand-written SQL statements (the floor);
- naive: the obvious Django way: `icontains` keyword filters, price filters in the ORM, the
  radius and distance computed in Python over the candidates, `count()` and facets by
  `values().annotate(Count)` (run on fewer repetitions: it is slow).

Usage: `.venv/bin/python bench/search.py [--listings 100000] [--repeat 40] [--reuse] [--keep] [--cache]`
(the cache is off unless --cache: the figures are for computing every query).
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
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, libpq, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "bench_search"
CITIES = {  # centres used by seed_demo (listings/demo.py)
    "Paris": (48.8566, 2.3522), "Lyon": (45.7640, 4.8357), "Berlin": (52.5200, 13.4050),
    "Madrid": (40.4168, -3.7038), "London": (51.5074, -0.1278), "Lisbon": (38.7223, -9.1393),
}
WORDS = ["garden", "balcony", "apartment", "house", "quiet", "bright", "terrace", "renovated", "view", "garage"]


def database_exists(url):
    import psycopg

    with psycopg.connect(libpq(url, "postgres"), autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone())


def prepare(url, listings, reuse):
    env = {**os.environ, "DATABASE_URL": with_database(url, BENCH_DB), "DJANGO_SETTINGS_MODULE": "realio.settings.base"}
    if reuse and database_exists(url):
        return env, "reused"
    recreate(url, BENCH_DB)
    manage(env, "migrate", "--noinput")
    seconds, _ = manage(env, "seed_demo", "--listings", str(listings), "--agents", "50", "--customers", "50")
    return env, f"seeded {listings:,} listings in {seconds:.0f} s"


def query_mix(repeat, seed=7):
    """(kind, params) pairs: the typical mix of the issue, deterministic for a seed."""
    rng = random.Random(seed)
    mix = []
    for _ in range(repeat):
        lat, lng = rng.choice(list(CITIES.values()))
        low = rng.choice([100_000, 200_000, 300_000])
        mix.append(("keyword+price+radius", {"q": rng.choice(WORDS), "min_price": low, "max_price": low * 3,
                                             "lat": lat, "lng": lng, "radius_km": 5}))
        mix.append(("bbox+type, newest", {"bbox": f"{lng - 0.15:.4f},{lat - 0.1:.4f},{lng + 0.15:.4f},{lat + 0.1:.4f}",
                                          "property_type": rng.choice(["apartment", "house", "apartment,condo"])}))
        mix.append(("keyword alone, ranked", {"q": rng.choice(WORDS)}))
        mix.append(("filters, facets", {"listing_type": rng.choice(["sale", "rent"]), "min_beds": rng.choice([1, 2, 3]),
                                        "features": rng.choice(["balcony", "garden", "parking"])}))
    return mix


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def timed(function, items):
    by_kind = {}
    for kind, params in items:
        started = time.perf_counter()
        function(params)
        by_kind.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
    return by_kind


# --- the four ways ------------------------------------------------------------------------------

def run_service(params):
    from search import services
    from search.query import SearchQuery

    page = services.search(SearchQuery.from_params({k: str(v) for k, v in params.items()}))
    return page.listings  # hydrated, as the search page shows them


class Api:
    def __init__(self, env):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.process = subprocess.Popen(  # noqa: S603 (our own app)
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "realio.wsgi", "-w", "1", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning"],
            cwd=ROOT, env={**env, "API_THROTTLE_ANON": "1000000/min", "DEBUG": "false", "LOG_LEVEL": "WARNING"})
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def __call__(self, params):
        self.connection.request("GET", f"/api/v1/search/?{urlencode(params)}")
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:300]!r}")
        return json.loads(body)

    def stop(self):
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def run_sql(params):
    """The floor: one page statement and one count+facets statement, written by hand."""
    from django.db import connection

    where, args = ["status = 'active'"], []
    if "q" in params:
        where.append("search_vector @@ websearch_to_tsquery('english', %s)")
        args.append(params["q"])
    if "min_price" in params:
        where += ["price >= %s", "price <= %s"]
        args += [params["min_price"], params["max_price"]]
    if "radius_km" in params:
        where.append("ST_DWithin(location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)")
        args += [params["lng"], params["lat"], params["radius_km"] * 1000]
    if "bbox" in params:
        w, s, e, n = map(float, params["bbox"].split(","))
        where.append("location && ST_MakeEnvelope(%s, %s, %s, %s, 4326)::geography")
        args += [w, s, e, n]
    if "property_type" in params:
        where.append("property_type = ANY(%s)")
        args.append(params["property_type"].split(","))
    if "listing_type" in params:
        where += ["listing_type = %s", "bedrooms >= %s", "features @> %s::varchar[]"]
        args += [params["listing_type"], params["min_beds"], [params["features"]]]
    clause = " AND ".join(where)
    order = "published_at DESC"
    if "q" in params and "radius_km" not in params:
        order = "ts_rank_cd(search_vector, websearch_to_tsquery('english', %s)) DESC"
    with connection.cursor() as cursor:
        page_args = args + ([params["q"]] if order.startswith("ts_rank") else [])
        cursor.execute(f"SELECT id FROM listings_listing WHERE {clause} ORDER BY {order} LIMIT 20", page_args)  # noqa: S608
        cursor.fetchall()
        cursor.execute(f"SELECT property_type, count(*) FROM listings_listing WHERE {clause} GROUP BY 1", args)  # noqa: S608
        cursor.fetchall()


def run_naive(params):
    """What a first version would do with the ORM and Python."""
    from django.db.models import Count, Q

    from listings.models import Listing

    queryset = Listing.objects.filter(status="active")
    if "q" in params:
        queryset = queryset.filter(Q(title__icontains=params["q"]) | Q(description__icontains=params["q"]))
    if "min_price" in params:
        queryset = queryset.filter(price__gte=params["min_price"], price__lte=params["max_price"])
    if "property_type" in params:
        queryset = queryset.filter(property_type__in=params["property_type"].split(","))
    if "listing_type" in params:
        queryset = queryset.filter(listing_type=params["listing_type"], bedrooms__gte=params["min_beds"],
                                   features__contains=[params["features"]])
    rows = list(queryset.order_by("-published_at"))
    if "radius_km" in params:
        rows = [r for r in rows if _haversine_km(params["lat"], params["lng"], r.location.y, r.location.x)
                <= params["radius_km"]]
    if "bbox" in params:
        w, s, e, n = map(float, params["bbox"].split(","))
        rows = [r for r in rows if w <= r.location.x <= e and s <= r.location.y <= n]
    page = rows[:20]
    assert len(page) <= 20
    dict(queryset.values_list("property_type").annotate(Count("id")))


def _haversine_km(lat1, lng1, lat2, lng2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371 * 2 * math.asin(math.sqrt(a))


def report(title, results):
    print(f"\n{title}")
    print(f"  {'kind':<24}{'service':>16}{'api':>16}{'sql':>16}{'naive':>16}   (p50 / p95 ms)")
    for kind in results["service"]:
        cells = []
        for way in ("service", "api", "sql", "naive"):
            samples = results[way].get(kind)
            cells.append(f"{percentiles(samples)[0]:7.1f} /{percentiles(samples)[1]:7.1f}" if samples else "-")
        print(f"  {kind:<24}" + "".join(f"{c:>16}" for c in cells))
    overall = {way: [s for samples in results[way].values() for s in samples] for way in results}
    p = {way: percentiles(samples) for way, samples in overall.items() if samples}
    ways = ("service", "api", "sql", "naive")
    print(f"  {'all':<24}" + "".join(f"{p[w][0]:7.1f} /{p[w][1]:7.1f}".rjust(16) for w in ways))
    print("\nratios (p95):")
    print(f"  api / sql      = {p['api'][1] / p['sql'][1]:.1f}x   (goal: within 3x)")
    print(f"  api p95        = {p['api'][1]:.1f} ms (goal: under 50 ms)")
    print(f"  naive / service = {p['naive'][1] / p['service'][1]:.1f}x  (goal: at least 10x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="reuse bench_search if it exists")
    parser.add_argument("--keep", action="store_true", help="keep bench_search afterwards")
    parser.add_argument("--cache", action="store_true",
                        help="leave the search cache on (default: off, every query computed)")
    args = parser.parse_args()

    url = database_url()
    env, how = prepare(url, args.listings, args.reuse)
    env["SEARCH_CACHE_SECONDS"] = "60" if args.cache else "0"
    # A Redis database of the bench's own (emptied): listing bodies are cached by listing id,
    # and the bench database's ids are not the site's.
    env["REDIS_CACHE_DB"] = os.environ.get("BENCH_REDIS_CACHE_DB", "11")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection

    cache.clear()  # the bench's own Redis database (above)

    from search import services

    services.vocabulary_refresh()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load (index-only scans)
        cursor.execute("SELECT count(*) FROM listings_listing WHERE status = 'active'")
        active = cursor.fetchone()[0]
    mix = query_mix(args.repeat)
    print(f"bench_search: {how}; {active:,} active listings; {len(mix)} queries per way; "
          f"search cache {'on (repeated queries are served from Redis)' if args.cache else 'off'}")

    # Warm up on other queries of the same kinds (another seed): a process that has served for a
    # while holds its snapshot, the common keywords' match sets, and some listing bodies in Redis.
    warm = query_mix(10, seed=8)
    for _kind, params in warm:
        run_service(params)
    api = Api(env)
    try:
        for _kind, params in warm:
            api(params)
        results = {
            "service": timed(run_service, mix),
            "api": timed(api, mix),
            "sql": timed(run_sql, mix),
            "naive": timed(run_naive, mix[: max(8, len(mix) // 5)]),
        }
    finally:
        api.stop()
    report(f"PostgreSQL backend, {active:,} active listings", results)
    if not args.keep:
        connection.close()

        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
