"""Load on the production layout: requests per second and p50/p95/p99 per endpoint, beside a
hello-world Django view served by the same gunicorn in the same run (the floor).

Builds a database `bench_load` on the server of DATABASE_URL (from template1, migrated,
`seed_demo --listings N`, dropped at the end unless --keep), writes the load's data (listing
ids, customers' access tokens, conversations), then serves it with `scripts/serve-prod
--no-setup`: Caddy in front, gunicorn (WSGI, deploy/gunicorn.conf.py) for HTTP, uvicorn (ASGI)
for /ws/, Celery worker and beat; throttles lifted (API_THROTTLE_USER/ANON, CHAT_RATE_*), the
settings bench/load_settings.py (the site's, plus `/bench/hello/` in a bench-only URLconf).
Locust (headless, one process, bench/load_locustfile.py) then runs, each phase with the same
number of users, no think time:

1. floor: `GET /bench/hello/` only;
2. detail: `GET /api/v1/listings/{id}/` only, over the 500 most viewed homes, read once before
   the first round so that their bodies are cached: its rate against the floor's (goal: at
   least 50%). Floor and detail alternate for --rounds rounds, so that the drift of these shared
   cores falls on both alike;
3. mix: anonymous search, listing detail (API) and pages, signed-in favorites and bookings,
   and chat messages over websockets (each timed until it comes back stored).

Redis: the bench uses databases 11-13 of REDIS_URL (cache, channel layer, broker; flushed).
Usage: `.venv/bin/python bench/load.py [--listings 20000] [--users 20] [--phase-seconds 15]
[--rounds 3] [--mix-seconds 60] [--workers 2] [--keep]`
"""

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "bench_load"
REDIS_DBS = ("11", "12", "13")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url and (ROOT / "var" / "local.env").exists():
        for line in (ROOT / "var" / "local.env").read_text().splitlines():
            if line.startswith("REDIS_URL="):
                url = line.split("=", 1)[1].strip()
    if not url:
        sys.exit("REDIS_URL is not set (and var/local.env has none): start the services with `make run` first.")
    return url.rstrip("/")


def server_env(url, redis):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "TEST_"))}
    env.update({
        "DATABASE_URL": with_database(url, BENCH_DB), "REDIS_URL": redis,
        "REDIS_CACHE_DB": REDIS_DBS[0], "REDIS_CHANNELS_DB": REDIS_DBS[1], "REDIS_BROKER_DB": REDIS_DBS[2],
        "DJANGO_SETTINGS_MODULE": "bench.load_settings", "DEBUG": "false", "LOG_LEVEL": "WARNING",
        "API_THROTTLE_USER": "100000000/min", "API_THROTTLE_ANON": "100000000/min", "AUTH_RATE": "100000000/m",
        "CHAT_RATE_MESSAGES": "100000000", "JWT_ACCESS_MINUTES": "600",
    })
    return env


def flush_redis(redis):
    import redis as redis_client

    for number in REDIS_DBS:
        client = redis_client.Redis.from_url(f"{redis}/{number}")
        client.flushdb()
        client.close()


def prepare(url, env, listings):
    recreate(url, BENCH_DB)
    seeding = {**env, "CELERY_BROKER_URL": "memory://", "DJANGO_SETTINGS_MODULE": "realio.settings.base"}
    manage(seeding, "migrate", "--noinput")
    seconds, _ = manage(seeding, "seed_demo", "--listings", str(listings), "--agents", "50", "--customers", "200",
                        "--no-progress")
    return seconds


HOT_LISTINGS = 500


def warm(url, path):
    """Read each hot listing once, so the detail phase serves them from the cache."""
    import urllib.request

    for listing in json.loads(path.read_text())["hot"]:
        with urllib.request.urlopen(f"{url}/api/v1/listings/{listing}/", timeout=30) as response:  # noqa: S310
            response.read()


def load_data(env, path):
    """Active listings, customers' tokens, a conversation per chatting customer: as JSON."""
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "realio.settings.base", "CELERY_BROKER_URL": "memory://"})
    import django

    django.setup()
    from django.db import connection
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from chat import services as chat_services
    from listings.models import Listing

    listings = list(Listing.objects.filter(status="active").order_by("?").values_list("id", flat=True)[:5000])
    customers = list(User.objects.filter(role=User.Role.CUSTOMER, email__endswith="@demo.realio"))
    tokens = [str(AccessToken.for_user(customer)) for customer in customers]
    conversations = []
    for customer, token, listing in zip(customers[:50], tokens, listings, strict=False):
        conversation, _created = chat_services.conversation_start(user=customer, listing_id=listing)
        conversations.append((conversation.pk, token))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    # The detail phase measures cached listing detail (the figure): the most viewed homes,
    # their bodies in the cache (warmed before the phase), as on a live site.
    path.write_text(json.dumps({"listings": listings, "hot": listings[:HOT_LISTINGS], "tokens": tokens,
                                "conversations": conversations}))
    return len(listings)


class Layout:
    """scripts/serve-prod --no-setup on free ports; stopped with SIGTERM (its Ctrl-C path)."""

    def __init__(self, env, workers):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-load-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**env, "PORT": str(self.port), "WEB_PORT": str(free_port()), "ASGI_PORT": str(free_port()),
               "WEB_CONCURRENCY": str(workers)}
        self.process = subprocess.Popen(["bash", str(ROOT / "scripts" / "serve-prod"), "--no-setup"],  # noqa: S603, S607
                                        cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                sys.exit(f"the layout did not start: see {self.log.name}")
            time.sleep(0.5)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        self.log.close()


def run_locust(host, data_path, users, seconds, classes, folder, name):
    prefix = Path(folder) / name
    subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "bench" / "load_locustfile.py"), "--headless",
         "--host", host, "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
         "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10", *classes],
        cwd=ROOT, env={**os.environ, "LOAD_DATA": str(data_path)}, check=False,
        stdout=subprocess.DEVNULL, stderr=(Path(folder) / f"{name}.log").open("w"))
    rows = {}
    with open(f"{prefix}_stats.csv") as file:
        for row in csv.DictReader(file):
            rows[row["Name"]] = row
    failures = []
    with open(f"{prefix}_failures.csv") as file:
        failures = list(csv.DictReader(file))
    return rows, failures


def figure(row):
    return (int(row["Request Count"]), int(row["Failure Count"]), float(row["Requests/s"]),
            float(row["50%"]), float(row["95%"]), float(row["99%"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20, help="locust users in every phase")
    parser.add_argument("--phase-seconds", type=int, default=15, help="length of each floor and detail phase")
    parser.add_argument("--rounds", type=int, default=3, help="floor and detail phases, alternating")
    parser.add_argument("--mix-seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (WEB_CONCURRENCY)")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = parser.parse_args()

    url, redis = database_url(), redis_url()
    env = server_env(url, redis)
    flush_redis(redis)
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    seed_seconds = prepare(url, env, args.listings)
    active = load_data(env, folder / "data.json")
    layout = Layout(env, args.workers)
    try:
        # The floor and the detail alternate, round by round, so that the machine's drift (these
        # cores are shared) falls on both alike.
        rounds = {"floor": [], "detail": []}
        for number in range(1, args.rounds + 1):
            if number == 1:
                warm(layout.url, folder / "data.json")
            for name, classes in (("floor", ["HelloUser"]), ("detail", ["DetailUser"])):
                rounds[name].append(run_locust(layout.url, folder / "data.json", args.users, args.phase_seconds,
                                               classes, folder, f"{name}-{number}"))
        mix = run_locust(layout.url, folder / "data.json", args.users, args.mix_seconds,
                         ["Visitor", "Customer", "Chatter"], folder, "mix")
    finally:
        layout.stop()
        flush_redis(redis)
        if not args.keep:
            drop_database(url, BENCH_DB)

    print(f"bench_load: {args.listings:,} listings seeded in {seed_seconds:.0f} s ({active:,} active used); "
          f"{os.cpu_count()} cores shared with PostgreSQL, Redis, the five server processes and locust")
    print(f"layout: Caddy -> gunicorn ({args.workers} sync workers) and uvicorn (1); Celery worker (2) and beat; "
          f"locust: {args.users} users, no think time (chat: 0.5-1.5 s)\n")
    print(f"  {'phase':<9}{'endpoint':<50}{'requests':>9}{'fail':>6}{'req/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}  (ms)")
    fives = 0
    phases = [(f"{name}-{number}", result) for number in range(1, args.rounds + 1)
              for name, result in (("floor", rounds["floor"][number - 1]), ("detail", rounds["detail"][number - 1]))]
    for phase, (rows, failures) in [*phases, ("mix", mix)]:
        for name, row in rows.items():
            if name == "Aggregated" and phase != "mix":
                continue
            count, failed, rps, p50, p95, p99 = figure(row)
            print(f"  {phase:<9}{name[:49]:<50}{count:>9,}{failed:>6}{rps:>9.1f}{p50:>7.0f}{p95:>7.0f}{p99:>7.0f}")
        for failure in failures:
            if "5xx" in failure["Error"] or "no answer" in failure["Error"]:
                fives += int(failure["Occurrences"])
            print(f"         failure: {failure['Method']} {failure['Name']}: {failure['Error']} "
                  f"x{failure['Occurrences']}")
    floor = [figure(rows["floor: /bench/hello/"])[2] for rows, _failures in rounds["floor"]]
    detail = [figure(rows["/api/v1/listings/[id]/"])[2] for rows, _failures in rounds["detail"]]
    ratio = sum(detail) / sum(floor)
    print(f"\n  listing detail / floor, {args.rounds} alternating rounds of {args.phase_seconds} s: "
          f"{sum(detail) / args.rounds:.0f} / {sum(floor) / args.rounds:.0f} req/s = {ratio:.0%} "
          f"(rounds: {', '.join(f'{d / f:.0%}' for d, f in zip(detail, floor, strict=True))}; "
          f"goal: at least 50%: {'met' if ratio >= 0.5 else 'NOT met'})")
    print(f"  5xx or no answer: {fives} (goal: none)")
    print(f"  locust's CSV files and logs: {folder}")


if __name__ == "__main__":
    main()
