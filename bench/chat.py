"""Chat delivery at 200 concurrent websockets on one server process, against a bare relay.

Builds a database `bench_chat` on the server of DATABASE_URL (N conversations between N
customers and their agents, default 100: 2N = 200 sockets), starts ONE uvicorn process serving
bench/chat_asgi.py (the site plus a bare relay consumer), and measures two ways, one after the
other, each with its own 2N connections:

- relay (the floor): `/ws/relay/{id}/` relays each frame through the same Redis channel-layer
  group as the chat, with the same handshake authentication, and stores nothing;
- chat: `/ws/chat/{id}/`, the real consumer: each message is validated, rate-limited (the
  limit lifted), stored in PostgreSQL with its events in the outbox, then delivered after
  commit through the group to both parties.

Each way runs two phases: `load`, where every customer sends at a fixed rate (--rate messages
per second in total, default 20), and `saturation`, where every customer sends its next
message as soon as the agent received the previous one (100 senders in a closed loop). The
latency of a message is from the sender's send() to the agent's socket receiving it. Each
sender's first message is a warm-up, not measured. The client is one asyncio process on the
same machine (the server, PostgreSQL and Redis share the cores with it).

Usage: `.venv/bin/python bench/chat.py [--conversations 100] [--rate 20] [--seconds 30]
[--saturation-seconds 10] [--redis-dbs 8,9,10] [--keep]`. The three Redis databases are the
bench's own: flushed before and after.
"""

import argparse
import asyncio
import contextlib
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed import database_url, manage, recreate, with_database  # noqa: E402
from seed import drop as drop_database  # noqa: E402

BENCH_DB = "bench_chat"


def prepare(url, redis_dbs):
    cache_db, channels_db, broker_db = redis_dbs
    env = {**os.environ, "DATABASE_URL": with_database(url, BENCH_DB), "DJANGO_SETTINGS_MODULE": "realio.settings.base",
           "REDIS_CACHE_DB": str(cache_db), "REDIS_CHANNELS_DB": str(channels_db), "REDIS_BROKER_DB": str(broker_db),
           "DEBUG": "false", "LOG_LEVEL": "WARNING", "CHAT_RATE_MESSAGES": "1000000000",
           "SECRET_KEY": "bench-chat-secret-key-0123456789-abcdefghijklmnop", "ALLOWED_HOSTS": "127.0.0.1"}
    recreate(url, BENCH_DB)
    manage(env, "migrate", "--noinput")
    return env


def flush_redis(env):
    import redis

    base = env.get("REDIS_URL", "redis://127.0.0.1:56379").rstrip("/")
    for name in ("REDIS_CACHE_DB", "REDIS_CHANNELS_DB", "REDIS_BROKER_DB"):
        client = redis.Redis.from_url(f"{base}/{env[name]}")
        client.flushdb()
        client.close()


def populate(count):
    """`count` conversations, each between its own customer and one of count/10 agents."""
    from django.contrib.gis.geos import Point
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from chat.models import Conversation, ReadPosition
    from listings.models import Listing

    agents = User.objects.bulk_create([User(email=f"agent{i}@bench.invalid", role="agent", first_name=f"Agent{i}")
                                       for i in range(max(1, count // 10))])
    customers = User.objects.bulk_create([User(email=f"customer{i}@bench.invalid", role="customer",
                                               first_name=f"Customer{i}") for i in range(count)])
    now = timezone.now()
    listings = Listing.objects.bulk_create([
        Listing(agent=agents[i % len(agents)], title=f"Bench home {i}", listing_type="sale", property_type="house",
                status="active", price=300000, city="Paris", country="FR", location=Point(2.35, 48.85, srid=4326),
                time_zone="Europe/Paris", published_at=now) for i in range(count)])
    conversations = Conversation.objects.bulk_create([
        Conversation(customer=customers[i], agent=listings[i].agent, listing=listings[i]) for i in range(count)])
    ReadPosition.objects.bulk_create([ReadPosition(conversation=c, user_id=uid) for c in conversations
                                      for uid in c.party_ids()])
    return [(c.pk, str(AccessToken.for_user(c.customer)), str(AccessToken.for_user(c.agent)))
            for c in conversations]


class Server:
    def __init__(self, env):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.process = subprocess.Popen(  # noqa: S603 (our own application)
            [sys.executable, "-m", "uvicorn", "chat_asgi:application", "--app-dir", str(ROOT / "bench"),
             "--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "off", "--log-level", "warning",
             "--no-access-log", "--ws-max-queue", "1024", "--timeout-graceful-shutdown", "3"],
            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.1)
        sys.exit("the server did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def percentile(samples, share):
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def run_way(port, path, conversations, rate, seconds, saturation_seconds):
    """Open 2N sockets, run the load and saturation phases; {phase: (latencies ms, msgs/s, lost)}."""
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{port}"
    sent_at = {}
    arrivals = {}  # client_id -> (latency ms, arrived event)
    waiters = {}

    async def open_socket(conversation_id, token):
        return await connect(f"ws://127.0.0.1:{port}{path}{conversation_id}/", max_queue=None,
                             additional_headers={"Authorization": f"Bearer {token}", "Origin": origin},
                             open_timeout=30, ping_interval=None)

    async def reader(ws):
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "message":
                continue
            client_id = frame["message"]["client_id"]
            started = sent_at.get(client_id)
            if started is not None and client_id not in arrivals:
                arrivals[client_id] = (time.perf_counter() - started) * 1000
                waiter = waiters.pop(client_id, None)
                if waiter is not None:
                    waiter.set()

    pairs = []
    for index in range(0, len(conversations), 20):  # connect in batches: a handshake storm is not the point
        batch = conversations[index:index + 20]
        opened = await asyncio.gather(*[asyncio.gather(open_socket(cid, ctok), open_socket(cid, atok))
                                        for cid, ctok, atok in batch])
        pairs += opened
    readers = [asyncio.create_task(reader(agent)) for _customer, agent in pairs]
    drains = [asyncio.create_task(drain(customer)) for customer, _agent in pairs]
    await asyncio.sleep(1)
    results = {}

    async def send(customer, client_id):
        sent_at[client_id] = time.perf_counter()
        await customer.send(json.dumps({"type": "message", "body": f"Bench message {client_id}",
                                        "client_id": client_id}))

    # Warm-up, not measured: every sender's first message (the server opens its pooled database
    # connections and threads then).
    async def warm(n, customer):
        client_id = f"{path[4:8]}-warm-{n}"
        event = waiters[client_id] = asyncio.Event()
        await send(customer, client_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 30)

    await asyncio.gather(*[warm(n, customer) for n, (customer, _agent) in enumerate(pairs)])
    await asyncio.sleep(1)

    # Load: a fixed total rate, each sender on its own schedule with a random phase.
    interval = len(pairs) / rate
    keys = []

    async def paced(n, customer):
        await asyncio.sleep(random.uniform(0, interval))
        deadline = time.perf_counter() + seconds
        k = 0
        while time.perf_counter() < deadline:
            client_id = f"{path[4:8]}-load-{n}-{k}"
            keys.append(client_id)
            await send(customer, client_id)
            k += 1
            await asyncio.sleep(interval)

    await asyncio.gather(*[paced(n, customer) for n, (customer, _agent) in enumerate(pairs)])
    await asyncio.sleep(2)
    sent_times = [sent_at[k] for k in keys]
    got = [arrivals[k] for k in keys if k in arrivals]
    # Delivered per second over the span of the sends (the senders start at random phases).
    results["load"] = (got, len(got) / max(1e-9, max(sent_times) - min(sent_times)), len(keys) - len(got))

    # Saturation: each sender waits for its previous message to arrive.
    keys = []

    async def closed_loop(n, customer):
        deadline = time.perf_counter() + saturation_seconds
        k = 0
        while time.perf_counter() < deadline:
            client_id = f"{path[4:8]}-sat-{n}-{k}"
            keys.append(client_id)
            event = waiters[client_id] = asyncio.Event()
            await send(customer, client_id)
            with contextlib.suppress(TimeoutError):  # counted as lost
                await asyncio.wait_for(event.wait(), 10)
            k += 1

    started = time.perf_counter()
    await asyncio.gather(*[closed_loop(n, customer) for n, (customer, _agent) in enumerate(pairs)])
    elapsed = time.perf_counter() - started
    got = [arrivals[k] for k in keys if k in arrivals]
    results["saturation"] = (got, len(got) / elapsed, len(keys) - len(got))

    for task in readers + drains:
        task.cancel()
    await asyncio.gather(*[ws.close() for pair in pairs for ws in pair], return_exceptions=True)
    return results


async def drain(ws):
    async for _raw in ws:
        pass


def report(results, conversations, rate, seconds, saturation_seconds, stored):
    print(f"\n{2 * conversations} sockets ({conversations} conversations), one uvicorn process; "
          f"load: {rate} msg/s offered for {seconds} s; saturation: {conversations} senders, closed loop, "
          f"for {saturation_seconds} s")
    print(f"  {'way':<8}{'phase':<12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'msg/s':>9}{'lost':>6}")
    for way in ("relay", "chat"):
        for phase in ("load", "saturation"):
            latencies, per_second, lost = results[way][phase]
            if not latencies:
                print(f"  {way:<8}{phase:<12}{'nothing arrived':>36}{lost:6d}")
                continue
            print(f"  {way:<8}{phase:<12}{statistics.median(latencies):9.1f}{percentile(latencies, 0.99):9.1f}"
                  f"{max(latencies):9.1f}{per_second:9.0f}{lost:6d}")
    load_chat, load_relay = results["chat"]["load"][0], results["relay"]["load"][0]
    sat_chat, sat_relay = results["chat"]["saturation"], results["relay"]["saturation"]
    print("\nratios (chat / relay):")
    print(f"  load p99        = {percentile(load_chat, 0.99) / percentile(load_relay, 0.99):.1f}x   "
          f"(goal: p99 under 100 ms and within 2x; chat p99 {percentile(load_chat, 0.99):.1f} ms)")
    print(f"  load p50        = {statistics.median(load_chat) / statistics.median(load_relay):.1f}x")
    print(f"  saturation p99  = {percentile(sat_chat[0], 0.99) / percentile(sat_relay[0], 0.99):.1f}x")
    print(f"  saturation msg/s = {sat_chat[1] / sat_relay[1]:.2f}x  (chat {sat_chat[1]:.0f}, relay {sat_relay[1]:.0f})")
    print(f"\nmessages stored by the chat: {stored:,}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20, help="messages per second offered in the load phase")
    parser.add_argument("--seconds", type=float, default=30,
                        help="length of the load phase (30 s at 20 msg/s: 600 latencies, the p99 is the 6th worst)")
    parser.add_argument("--saturation-seconds", type=float, default=10, help="length of the saturation phase")
    parser.add_argument("--redis-dbs", default="8,9,10", help="cache,channels,broker database numbers (flushed)")
    parser.add_argument("--keep", action="store_true", help="keep bench_chat afterwards")
    args = parser.parse_args()

    url = database_url()
    env = prepare(url, [int(n) for n in args.redis_dbs.split(",")])
    flush_redis(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from chat.models import Message

    conversations = populate(args.conversations)
    connection.close()
    server = Server(env)
    results = {}
    try:
        for way, path in (("relay", "/ws/relay/"), ("chat", "/ws/chat/")):
            results[way] = asyncio.run(run_way(server.port, path, conversations, args.rate, args.seconds,
                                               args.saturation_seconds))
            time.sleep(1)
    finally:
        server.stop()
    stored = Message.objects.count()
    report(results, args.conversations, args.rate, args.seconds, args.saturation_seconds, stored)
    connection.close()
    flush_redis(env)
    if not args.keep:

        drop_database(url, BENCH_DB)


if __name__ == "__main__":
    main()
