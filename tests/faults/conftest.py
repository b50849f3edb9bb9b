"""Fault tests' own world: each test gets a PostgreSQL cluster and a Redis server of its own
(temporary folder, free port), so stopping them disturbs no other test, and runs the site's
real processes against them (gunicorn, uvicorn, Celery worker and beat, started as
subprocesses with the URLs in their environment, as in production).

The cluster is initialised, migrated and given demo data once per session (a template data
folder); each test starts from a copy of it. Run with `pytest -m faults` (scripts/test does,
after the browser tests).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "realio-demo"  # the demo accounts' (accounts/management/commands/seed_demo.py)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_until(condition, *, timeout, interval=0.2, what="condition"):
    """Poll until `condition()` is truthy and return it; fail the test after `timeout` seconds
    (a bound on recovery, not a speed claim: generous on these shared machines)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout} s")
        time.sleep(interval)


def pg_bin():
    versions = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=lambda p: int(p.parts[-3]))
    if not versions:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql (make test installs them)")
    return versions[-1].parent


def as_postgres(args):
    """initdb and pg_ctl refuse root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *map(str, args)] if os.geteuid() == 0 else list(map(str, args))


def give_to_postgres(path):
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class Postgres:
    """A PostgreSQL cluster in `folder` (data/, sock/, log), on a port of its own."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.port = free_port()
        self.bin = pg_bin()

    @property
    def url(self):
        return f"postgis://postgres@127.0.0.1:{self.port}/realio"

    @property
    def dsn(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/realio"

    def init(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        give_to_postgres(self.folder)
        subprocess.run(as_postgres([self.bin / "initdb", "-D", self.data, "-A", "trust", "-E", "UTF8",
                                    "--locale=C.UTF-8", "-U", "postgres"]), check=True, capture_output=True)

    def start(self):
        sock = self.folder / "sock"
        sock.mkdir(exist_ok=True)
        give_to_postgres(sock)
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={sock} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run(as_postgres([self.bin / "pg_ctl", "-D", self.data, "-l", self.folder / "postgresql.log",
                                    "-w", "-t", "60", "-o", options, "start"]), check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_postgres([self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"]),
                       check=False, capture_output=True)

    def sql(self, query, params=()):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else None


class Redis:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        # No persistence: a restart loses every queued task and cached value, the harsh case.
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), timeout=20, what="redis-server")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Process:
    """One of the site's processes, in a session of its own (so its pool children die with it)."""

    def __init__(self, name, args, env, logs):
        self.name = name
        self.log_path = Path(logs) / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self):
        return self.process.pid

    def children(self):
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill_hard(self):
        """SIGKILL to the whole group: the main process and its pool children at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(20)

    def stop(self):
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill_hard()
        self.log.close()

    def tail(self, lines=40):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Stack:
    """The site's processes against one test's PostgreSQL and Redis."""

    def __init__(self, postgres, redis, folder):
        self.postgres, self.redis, self.folder = postgres, redis, Path(folder)
        self.processes = []
        self.web_port = self.asgi_port = None

    @property
    def env(self):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("REDIS_", "CELERY_", "TEST_", "DATABASE_", "PYTEST_"))}
        env.update(site_env(self.postgres.url, self.redis.url, self.folder))
        return env

    def start(self, name, args, ready_port=None):
        process = Process(name, args, self.env, self.folder)
        self.processes.append(process)
        if ready_port is not None:
            def up():
                if process.process.poll() is not None:
                    pytest.fail(f"{name} exited:\n{process.tail()}")
                return port_open(ready_port)

            wait_until(up, timeout=60, what=name)
        return process

    def web(self, workers=2):
        self.web_port = free_port()
        process = self.start("gunicorn", [BIN / "gunicorn", "--config", ROOT / "deploy" / "gunicorn.conf.py",
                                          "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers),
                                          "--worker-tmp-dir", tempfile.gettempdir(), "realio.wsgi"],
                             ready_port=self.web_port)
        # The port opens before the workers have loaded Django (slow on a busy machine): wait
        # for every worker to answer once (/healthz touches nothing).
        for _ in range(workers * 2):
            assert requests.get(self.url("/healthz"), timeout=180).status_code == 200
        return process

    def asgi(self):
        self.asgi_port = free_port()
        return self.start("uvicorn", [BIN / "uvicorn", "realio.asgi:application", "--host", "127.0.0.1",
                                      "--port", str(self.asgi_port), "--log-level", "warning"],
                          ready_port=self.asgi_port)

    def worker(self, concurrency=1):
        process = self.start("worker", [BIN / "celery", "-A", "realio", "worker", "-Q",
                                        "default,notifications,search,ml", "--concurrency", str(concurrency),
                                        "--without-mingle", "--without-gossip", "--loglevel", "INFO",
                                        "-n", f"faults-{uuid.uuid4().hex[:6]}@%h"])
        wait_until(lambda: b"ready." in process.log_path.read_bytes() or process.process.poll() is not None,
                   timeout=60, what="the Celery worker")
        if process.process.poll() is not None:
            pytest.fail(f"worker exited:\n{process.tail()}")
        return process

    def beat(self):
        return self.start("beat", [BIN / "celery", "-A", "realio", "beat", "--scheduler",
                                   "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile=",
                                   "--loglevel", "INFO"])

    def url(self, path):
        return f"http://127.0.0.1:{self.web_port}{path}"

    def token(self, email):
        response = requests.post(self.url("/api/v1/auth/token/"), json={"email": email, "password": PASSWORD},
                                 timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["access"]

    def stop(self):
        for process in reversed(self.processes):
            process.stop()

    def logs(self):
        return "\n\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes)


def free_slots(stack, token, *, count, listing_ids=None, per_listing_day=1):
    """`count` free (listing, start) viewing times, from the slots API, over the next days."""
    import datetime as dt

    headers = {"Authorization": f"Bearer {token}"}
    if listing_ids is None:
        listing_ids = [row["id"] for row in requests.get(stack.url("/api/v1/listings/?page_size=10"), headers=headers,
                                                         timeout=30).json()["results"]]
    found = []
    day = dt.date.today() + dt.timedelta(days=2)
    while len(found) < count and day < dt.date.today() + dt.timedelta(days=40):
        for listing in listing_ids:
            slots = requests.get(stack.url(f"/api/v1/listings/{listing}/slots/?date={day}"), headers=headers,
                                 timeout=30).json()["slots"]
            found += [(listing, slot["start"]) for slot in slots[:per_listing_day * 2:2]]
        day += dt.timedelta(days=1)
    assert len(found) >= count, "no free viewing times found"
    return found[:count]


def site_env(database_url, redis_url, folder):
    """What the processes read (README's configuration): these servers, throttles lifted, fast beats."""
    folder = Path(folder)
    return {
        "DJANGO_SETTINGS_MODULE": "realio.settings.base", "DEBUG": "false", "LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DATABASE_POOL_MAX": "4",
        "API_THROTTLE_USER": "1000000/min", "API_THROTTLE_ANON": "1000000/min", "AUTH_RATE": "1000000/m",
        "CHAT_RATE_MESSAGES": "100000",
        # The sweep every 2 s (it relays what is older than its 30 s grace).
        "EVENTS_SWEEP_SECONDS": "2",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend", "NOTIFICATIONS_OUTBOX_DIR": "",
        "MEDIA_ROOT": str(folder / "media"), "PRIVATE_MEDIA_ROOT": str(folder / "private"),
        "RECO_MODEL_DIR": str(folder / "models"), "GUNICORN_ACCESS_LOG": "-",
    }


@pytest.fixture(scope="session")
def template_cluster():
    """A migrated cluster with a little demo data, stopped: the data folder each test copies."""
    folder = Path(tempfile.mkdtemp(prefix="realio-faults-template-", dir="/var/tmp"))
    folder.chmod(0o755)
    postgres = Postgres(folder)
    postgres.init()
    postgres.start()
    redis = Redis(folder)
    redis.start()
    try:
        subprocess.run(as_postgres([postgres.bin / "createdb", "-h", "127.0.0.1", "-p", postgres.port, "-U",
                                    "postgres", "realio"]), check=True, capture_output=True)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("REDIS_", "CELERY_", "TEST_", "DATABASE_", "PYTEST_"))}
        env.update(site_env(postgres.url, redis.url, folder))
        env["CELERY_BROKER_URL"] = "memory://"  # events of the seed stay in the outbox (relayed later)
        for args in (["migrate", "--noinput"],
                     ["seed_demo", "--listings", "40", "--agents", "4", "--customers", "12", "--no-progress"]):
            result = subprocess.run([sys.executable, ROOT / "manage.py", *args], cwd=ROOT, env=env,
                                    capture_output=True, text=True, check=False)
            assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}"
        # The seed's own events (accounts created) count as handled: each test sees only its own.
        postgres.sql("UPDATE realio_outboxevent SET relayed_at = now(), delivered_at = now()")
    finally:
        redis.stop()
        postgres.stop()
    yield postgres.data
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stack(template_cluster):
    """This test's PostgreSQL (a copy of the template) and Redis, and a Stack to start the
    site's processes on them; everything is stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="realio-faults-", dir="/var/tmp"))
    folder.chmod(0o755)
    postgres = Postgres(folder)
    give_to_postgres(folder)
    subprocess.run(["cp", "-a", str(template_cluster), str(postgres.data)], check=True)
    postgres.start()
    redis = Redis(folder)
    redis.start()
    stack = Stack(postgres, redis, folder)
    try:
        yield stack
    finally:
        stack.stop()
        redis.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
