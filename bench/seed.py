"""How fast `manage.py seed_demo` writes N listings, against baselines measured in the same run.

Creates a throwaway database (bench_seed) on the server of DATABASE_URL, migrates it, times
`seed_demo --listings N` there, then times two baselines on the same server:

- COPY of the same N listing rows, bare, into a plain table with the listing's columns and no
  index or constraint: the floor for moving the rows into PostgreSQL;
- `Listing.objects.bulk_create` of N identical listings (batches of 1,000, rolled back): the
  obvious ORM way, for comparison.

Usage (from the checkout): `.venv/bin/python bench/seed.py [--listings 100000] [--no-orm] [--keep]`.
DATABASE_URL comes from the environment, else from var/local.env. The database is dropped at
the end unless --keep.
"""

import argparse
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench_seed"


def database_url():
    url = os.environ.get("DATABASE_URL")
    if not url and (ROOT / "var" / "local.env").exists():
        for line in (ROOT / "var" / "local.env").read_text().splitlines():
            if line.startswith("DATABASE_URL="):
                url = line.split("=", 1)[1].strip().strip("'\"")
    if not url:
        sys.exit("DATABASE_URL is not set (and var/local.env has none): start the services with `make run` first.")
    return url


def with_database(url, name, scheme=None):
    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def libpq(url, name):
    return with_database(url, name, scheme="postgresql")


def recreate(url, name=BENCH_DB):
    """Drop and create the bench database `name` (from template1); returns the server version.
    Every bench in this folder starts from this."""
    import psycopg

    with psycopg.connect(libpq(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template1')
        version = conn.execute("SHOW server_version").fetchone()[0]
    return version


def drop(url, name=BENCH_DB):
    import psycopg

    with psycopg.connect(libpq(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env, *args):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,  # noqa: S603 (our own manage.py)
                            capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result.stdout


def copy_baseline(count):
    """COPY the seeded listing rows, bare, into a plain table; returns seconds."""
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.cursor
        cursor.execute("CREATE UNLOGGED TABLE IF NOT EXISTS bench_plain AS SELECT * FROM listings_listing LIMIT 0")
        buffer = io.BytesIO()
        query = f"COPY (SELECT * FROM listings_listing ORDER BY id LIMIT {int(count)}) TO STDOUT"  # noqa: S608 (an int)
        with raw.copy(query) as copy:
            for chunk in copy:
                buffer.write(chunk)
        data = buffer.getvalue()
        started = time.perf_counter()
        with raw.copy("COPY bench_plain FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start:start + (1 << 20)])
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_plain")
    return seconds


def orm_baseline(count):
    """bulk_create N copies of the seeded listings (rolled back); returns seconds."""
    from django.db import transaction

    from listings.models import Listing

    listings = list(Listing.objects.order_by("id")[:count])
    for number, listing in enumerate(listings):
        listing.pk = None
        listing.external_key = f"orm-{number}"
    started = time.perf_counter()
    with transaction.atomic():
        Listing.objects.bulk_create(listings, batch_size=1000)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--no-orm", action="store_true", help="skip the bulk_create baseline (slow)")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    options = parser.parse_args()
    count = options.listings

    url = database_url()
    version = recreate(url)
    env = dict(os.environ, DATABASE_URL=with_database(url, BENCH_DB),
               # Account events are published by the seed: keep their relay off the real broker.
               CELERY_BROKER_URL="memory://", DJANGO_SETTINGS_MODULE="realio.settings.base")
    try:
        migrate_seconds, _out = manage(env, "migrate", "--noinput")
        seed_seconds, output = manage(env, "seed_demo", "--listings", str(count), "--no-progress")
        created = re.search(r"Created ([\d,]+) listings .*?([\d,]+) photos, ([\d,]+) prices .* in ([\d.]+) s", output)
        if not created:
            sys.exit(f"unexpected seed_demo output:\n{output}")
        listings, photos, prices, write_seconds = (int(created.group(1).replace(",", "")),
                                                   created.group(2), created.group(3), float(created.group(4)))

        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        copy_seconds = copy_baseline(count)
        orm_seconds = None if options.no_orm else orm_baseline(count)
    finally:
        if not options.keep:
            drop(url)

    def figure(seconds, rows, unit, ratio=""):
        print(f"      {seconds:8.1f} s {rows / seconds:12,.0f} {unit}/s  {ratio}")

    print(f"seed_demo --listings {count:,} into a fresh database (PostgreSQL {version}, {os.cpu_count()} cores)")
    print(f"  migrate (not counted): {migrate_seconds:.1f} s")
    print("  seed_demo, the whole command (process start, accounts, photo pool, listings):")
    figure(seed_seconds, listings, "listings")
    print(f"  of which the listings with {photos} photos and {prices} prices in their history:")
    figure(write_seconds, listings, "listings")
    print(f"  baseline: COPY of {count:,} bare listing rows into a plain table (no index, no constraint):")
    figure(copy_seconds, count, "rows", f"ratio: whole seed_demo {seed_seconds / copy_seconds:.1f}x, "
           f"its listings part {write_seconds / copy_seconds:.1f}x")
    if orm_seconds is not None:
        print(f"  baseline: Listing.objects.bulk_create of {count:,} listings (no photos, no history):")
        figure(orm_seconds, count, "rows", f"ratio: whole seed_demo {seed_seconds / orm_seconds:.2f}x, "
               f"its listings part {write_seconds / orm_seconds:.2f}x")
    print(f"  target {count:,} listings in under 120 s: {'met' if seed_seconds < 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
