"""Booking under contention: 50 clients compete over real HTTP for the 10 free viewing slots of
one agent's day; exactly 10 must win.

Builds a throwaway database `bench_bookings` on the server of DATABASE_URL (from template1,
migrated), seeds one agent (Europe/Paris, one day of 09:00–14:00 at 30-minute steps and no
buffer: 10 slots), one listing and 50 customers, and starts gunicorn (the WSGI path production
serves HTTP on; sync workers, throttles lifted, events to an in-memory broker). Then, for each
round (a new day):

- every client has its own thread, keep-alive connection and JWT; they wait at a barrier, then
  each POSTs `/api/v1/bookings/` for the day's slots in its own rotated order until one is
  201 or every slot has answered 409;
- the round passes when exactly 10 bookings were made (201s), every other answer was a 409,
  and the database holds exactly 10 active viewings that day, none overlapping.

Baseline, same run: one client alone books the 10 slots of another day one after the other.
Prints p50/p95 of the booking requests (all, 201s, 409s) and exits non-zero unless every
round had exactly 10 winners.

Usage: `.venv/bin/python bench/bookings.py [--clients 50] [--rounds 3] [--workers 4] [--keep]`
"""

import argparse
import datetime as dt
import http.client
import itertools
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "bench_bookings"
SLOTS = 10
ZONE = ZoneInfo("Europe/Paris")
HOURS = (dt.time(9), dt.time(14))  # 10 slots of 30 minutes


def prepare(url):
    env = {**os.environ, "DATABASE_URL": with_database(url, BENCH_DB), "DJANGO_SETTINGS_MODULE": "realio.settings.base",
           # Booking events are published: keep their relay off the real broker.
           "CELERY_BROKER_URL": "memory://localhost/", "DEBUG": "false", "LOG_LEVEL": "WARNING",
           "API_THROTTLE_USER": "1000000/min", "API_THROTTLE_ANON": "1000000/min"}
    recreate(url, BENCH_DB)
    manage(env, "migrate", "--noinput")
    return env


def drop(url):
    drop_database(url, BENCH_DB)


def bench_days(count):
    """`count` weekdays from three days ahead: clear of the notice period, inside the horizon."""
    day = dt.datetime.now(ZONE).date() + dt.timedelta(days=3)
    days = []
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def seed(clients):
    """The agent (10 slots a weekday), the listing, the customers and their access tokens."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from bookings import services
    from listings import services as listing_services

    agent = User.objects.create_user("bench-agent@example.com", "bench-password-0123", role=User.Role.AGENT,
                                     first_name="Bench", last_name="Agent", time_zone="Europe/Paris")
    services.availability_replace(
        agent=agent, time_zone="Europe/Paris", buffer_minutes=0, slot_minutes=30, min_notice_minutes=120,
        rules=[{"weekday": weekday, "start": HOURS[0], "end": HOURS[1]} for weekday in range(5)])
    listing = listing_services.listing_create(
        agent=agent, title="Bench flat", description="Contended.", listing_type="sale", property_type="apartment",
        price=Decimal("350000"), bedrooms=2, bathrooms=1, area_sqm=Decimal("60"), street="1 rue de Rivoli",
        city="Paris", postal_code="75001", country="FR", time_zone="Europe/Paris", latitude=48.8566, longitude=2.3522,
        status="active")
    customers = [User.objects.create_user(f"bench-customer-{i}@example.com", None, first_name="Customer",
                                          last_name=str(i)) for i in range(clients)]
    tokens = [str(AccessToken.for_user(customer)) for customer in customers]
    return agent, listing, tokens


class Server:
    """gunicorn serving realio.wsgi on a free port."""

    def __init__(self, env, workers):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        # Every lost race is a 409 that Django logs as a warning: the server's log goes to a
        # file, named at the end when something failed.
        self.log = tempfile.NamedTemporaryFile(prefix="bench-bookings-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 (our own app)
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "realio.wsgi", "-w", str(workers), "-b",
             f"127.0.0.1:{self.port}", "--backlog", "512", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    sys.exit("gunicorn did not start")
                time.sleep(0.1)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def request(connection, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, (time.perf_counter() - started) * 1000, data


def free_slots(server, listing, day, token):
    connection = server.connection()
    try:
        status, _ms, body = request(connection, "GET", f"/api/v1/listings/{listing.pk}/slots/?date={day}", token)
    finally:
        connection.close()
    if status != 200:
        sys.exit(f"slots: {status} {body[:300]!r}")
    return [slot["start"] for slot in json.loads(body)["slots"]]


def contend(server, listing, slots, tokens):
    """Every client at once: each tries the slots in its own rotated order until one is won.
    Returns [(status, ms)] of every booking request."""
    barrier = threading.Barrier(len(tokens))
    results, lock = [], threading.Lock()
    failures = []

    def client(index, token):
        connection = server.connection()
        connection.connect()  # connected before the start, so the race is the booking itself
        mine = []
        try:
            barrier.wait()
            for offset in range(len(slots)):
                start = slots[(index + offset) % len(slots)]
                status, ms, body = request(connection, "POST", "/api/v1/bookings/", token,
                                           {"listing": listing.pk, "start": start})
                mine.append((status, ms))
                if status != 409:
                    if status != 201:
                        failures.append(f"{status} {body[:200]!r}")
                    break
        except Exception as exc:  # reported below: the bench must not hide a failed client
            failures.append(repr(exc))
        finally:
            connection.close()
            with lock:
                results.extend(mine)

    threads = [threading.Thread(target=client, args=(i, token)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, failures


def warm_up(server, listing, day, tokens, workers):
    """Some requests on parallel connections, so that every worker has loaded the app and
    opened its database connection before anything is timed."""
    threads = [threading.Thread(target=free_slots, args=(server, listing, day, tokens[i % len(tokens)]))
               for i in range(workers * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def sequential(server, listing, slots, token):
    connection = server.connection()
    results = []
    try:
        for start in slots:
            status, ms, body = request(connection, "POST", "/api/v1/bookings/", token,
                                       {"listing": listing.pk, "start": start})
            if status != 201:
                sys.exit(f"baseline booking: {status} {body[:300]!r}")
            results.append((status, ms))
    finally:
        connection.close()
    return results


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def row(label, samples):
    if not samples:
        return f"  {label:<34}{'-':>8}"
    p50, p95 = percentiles(samples)
    return f"  {label:<34}{len(samples):>8}{p50:>10.1f}{p95:>10.1f}"


def check_database(agent, day):
    """Active viewings of the agent that day, and whether any two overlap."""
    from bookings.models import Viewing

    start = dt.datetime.combine(day, dt.time(0), tzinfo=ZONE)
    active = list(Viewing.objects.filter(agent=agent, status__in=Viewing.ACTIVE, start__gte=start,
                                         start__lt=start + dt.timedelta(days=1)).order_by("start")
                  .values_list("start", "blocked_until"))
    overlapping = any(later[0] < earlier[1] for earlier, later in itertools.pairwise(active))
    return len(active), overlapping


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--keep", action="store_true", help="keep bench_bookings afterwards")
    args = parser.parse_args()

    url = database_url()
    env = prepare(url)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    agent, listing, tokens = seed(args.clients)
    server = Server(env, args.workers)
    ok = True
    try:
        days = bench_days(args.rounds + 1)
        baseline_day, round_days = days[0], days[1:]
        baseline_slots = free_slots(server, listing, baseline_day, tokens[0])
        if len(baseline_slots) != SLOTS:
            sys.exit(f"expected {SLOTS} free slots on {baseline_day}, got {len(baseline_slots)}")
        warm_up(server, listing, baseline_day, tokens, args.workers)
        baseline = sequential(server, listing, baseline_slots, tokens[0])

        print(f"bench_bookings: {args.clients} clients, {SLOTS} slots a round, {args.rounds} rounds, "
              f"gunicorn with {args.workers} sync workers, throttles lifted")
        every, winners = [], []
        for number, day in enumerate(round_days, start=1):
            slots = free_slots(server, listing, day, tokens[0])
            if len(slots) != SLOTS:
                sys.exit(f"expected {SLOTS} free slots on {day}, got {len(slots)}")
            started = time.perf_counter()
            results, failures = contend(server, listing, slots, tokens)
            seconds = time.perf_counter() - started
            won = sum(1 for status, _ in results if status == 201)
            lost = sum(1 for status, _ in results if status == 409)
            stored, overlapping = check_database(agent, day)
            passed = won == SLOTS and stored == SLOTS and not overlapping and not failures
            ok = ok and passed
            winners.append(won)
            print(f"round {number} ({day}): {len(results)} booking requests in {seconds:.2f} s; "
                  f"succeeded {won} (must be {SLOTS}), 409 {lost}, other {len(failures)}; "
                  f"database: {stored} active viewings, overlapping: {'yes' if overlapping else 'no'}"
                  f" -> {'ok' if passed else 'FAILED'}")
            for failure in failures[:5]:
                print(f"  failure: {failure}")
            if failures:
                print(f"  the server's log: {server.log.name}")
            every += results

        print(f"\nbooking requests (POST /api/v1/bookings/)  {'count':>8}{'p50 ms':>10}{'p95 ms':>10}")
        print(row("contended, all answers", [ms for _, ms in every]))
        print(row("contended, 201 (won)", [ms for status, ms in every if status == 201]))
        print(row("contended, 409 (taken)", [ms for status, ms in every if status == 409]))
        print(row("baseline: one client alone, 201", [ms for _, ms in baseline]))
        print(f"\nsucceeded per round: {', '.join(map(str, winners))} (must be exactly {SLOTS} each, "
              f"with only 409s besides and {SLOTS} non-overlapping viewings stored): {'ok' if ok else 'FAILED'}")
    finally:
        server.stop()
        connection.close()
        if not args.keep:
            drop(url)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
