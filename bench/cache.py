"""Listing detail with and without the listing cache, over HTTP, in the same run.

Builds a database `bench_cache` on the server of DATABASE_URL holding `seed_demo --listings N`
(default 20,000; the cost of one listing's detail does not grow with N), then starts two
gunicorn sync workers on it, identical but for LISTING_CACHE_SECONDS (600 and 0), and sends
both the same sequence of requests, alternating between them so that the machine's noise
falls on both alike:

- `GET /api/v1/listings/{id}/` (anonymous) over a hot set of published listings: the cached
  worker answers from Redis (the listing's version + the body), the other reads the listing,
  its photos and price history and serialises them;
- `GET /listings/{id}/` (the page, with a session cookie): the cached worker renders the
  gallery, facts and price history from cached fragments; the queries are the same.

Prints p50/p95 and requests per second for each, and the ratios. Usage:
`.venv/bin/python bench/cache.py [--listings 20000] [--hot 200] [--requests 2000] [--reuse] [--keep]`.
The cache lives on Redis database REDIS_CACHE_DB (default here 9), flushed at the start.
"""

import argparse
import http.client
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, libpq, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "bench_cache"


def database_exists(url):
    import psycopg

    with psycopg.connect(libpq(url, "postgres"), autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone())


def prepare(url, listings, reuse):
    env = {**os.environ, "DATABASE_URL": with_database(url, BENCH_DB), "DJANGO_SETTINGS_MODULE": "realio.settings.base",
           "REDIS_CACHE_DB": os.environ.get("REDIS_CACHE_DB", "9")}
    if reuse and database_exists(url):
        return env, "reused"
    recreate(url, BENCH_DB)
    manage(env, "migrate", "--noinput")
    seconds, _ = manage(env, "seed_demo", "--listings", str(listings), "--agents", "50", "--customers", "50")
    return env, f"seeded {listings:,} listings in {seconds:.0f} s"


class Server:
    """One gunicorn sync worker (the WSGI path production serves HTTP on), keep-alive."""

    def __init__(self, env):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.process = subprocess.Popen(  # noqa: S603 (our own app)
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "realio.wsgi", "-w", "1", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning"],
            # Throttles lifted; per second, so that their request history (a list in the cache) stays short.
            cwd=ROOT, env={**env, "API_THROTTLE_ANON": "1000000/s", "API_THROTTLE_USER": "1000000/s", "DEBUG": "false",
                           "LOG_LEVEL": "WARNING"})
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.cookie = ""

    def get(self, path):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}: {body[:300]!r}")
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith("sessionid="):  # one visitor: the page's first visit saves a session
                self.cookie = header.split(";", 1)[0]
        return body

    def stop(self):
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def measure(servers, paths):
    """{name: [ms]} for the same paths, alternating between the servers request by request."""
    samples = {name: [] for name in servers}
    for path in paths:
        for name, server in servers.items():
            started = time.perf_counter()
            server.get(path)
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def report(title, samples):
    (cached_p50, cached_p95), (plain_p50, plain_p95) = percentiles(samples["cached"]), percentiles(samples["plain"])
    rate = {name: 1000 * len(values) / sum(values) for name, values in samples.items()}
    print(f"\n{title}")
    print(f"  {'':<22}{'p50 ms':>10}{'p95 ms':>10}{'requests/s':>12}")
    print(f"  {'cache on':<22}{cached_p50:>10.2f}{cached_p95:>10.2f}{rate['cached']:>12.0f}")
    print(f"  {'cache off (baseline)':<22}{plain_p50:>10.2f}{plain_p95:>10.2f}{rate['plain']:>12.0f}")
    print(f"  ratio off/on: p50 {plain_p50 / cached_p50:.2f}x, p95 {plain_p95 / cached_p95:.2f}x, "
          f"throughput {rate['cached'] / rate['plain']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--hot", type=int, default=200, help="how many listings the requests go to")
    parser.add_argument("--requests", type=int, default=2000, help="requests per server and kind")
    parser.add_argument("--reuse", action="store_true", help="reuse bench_cache if it exists")
    parser.add_argument("--keep", action="store_true", help="keep bench_cache afterwards")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they come, even piped

    url = database_url()
    env, how = prepare(url, args.listings, args.reuse)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT id FROM listings_listing WHERE status = 'active' ORDER BY id")
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT avg(n) FROM (SELECT count(*) n FROM listings_listingphoto GROUP BY listing_id) c")
        photos = cursor.fetchone()[0]
    cache.clear()
    rng = random.Random(11)
    hot = rng.sample(ids, min(args.hot, len(ids)))
    print(f"bench_cache: {how}; {len(ids):,} active listings ({photos:.1f} photos each on average); "
          f"{len(hot)} hot listings; {args.requests} requests per server and kind")

    servers = {"cached": Server({**env, "LISTING_CACHE_SECONDS": "600"}),
               "plain": Server({**env, "LISTING_CACHE_SECONDS": "0"})}
    try:
        for kind, template in (("API", "/api/v1/listings/{}/"), ("page", "/listings/{}/")):
            measure(servers, [template.format(pk) for pk in hot])  # warm: the cache, the pools, the code
            paths = [template.format(rng.choice(hot)) for _ in range(args.requests)]
            samples = measure(servers, paths)
            report(f"{kind}: GET {template.format('{id}')}", samples)
    finally:
        for server in servers.values():
            server.stop()
    if not args.keep:
        connection.close()
        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
