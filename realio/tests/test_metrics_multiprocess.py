"""prometheus_client's multiprocess mode: separate processes writing to one PROMETHEUS_MULTIPROC_DIR
are added up by one `/metrics`, a dead process's live gauges go with gunicorn's child_exit hook,
and gunicorn with two workers answers the total of both."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.test import Client
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
from realio import metrics
for _ in range(int(sys.argv[1])):
    metrics.BOOKING_CONFLICTS.labels("request").inc()
metrics.WEBSOCKETS_OPEN.labels("chat").inc()
metrics.SEARCH_SECONDS.labels("postgres").observe(0.02)
"""


def samples_of(text):
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def write_in_a_process(directory, conflicts):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    process = subprocess.run([sys.executable, "-c", WRITER, str(conflicts)], cwd=ROOT, env=env,  # noqa: S603
                             capture_output=True, text=True, timeout=60, check=False)
    assert process.returncode == 0, process.stderr
    return process


def gunicorn_config():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "deploy" / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_two_processes_add_up_in_one_scrape_and_a_dead_ones_live_gauges_go(tmp_path, monkeypatch):
    # given two processes that counted conflicts, each with an open chat socket, then ended
    write_in_a_process(tmp_path, 2)
    write_in_a_process(tmp_path, 3)
    pids = sorted({int(path.stem.rsplit("_", 1)[1]) for path in tmp_path.glob("counter_*.db")})
    assert len(pids) == 2

    # when /metrics is read in multiprocess mode on that directory
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = samples_of(Client().get("/metrics").content.decode())

    # then it answers the sums of both
    assert samples[("realio_booking_conflicts_total", frozenset({("operation", "request")}))] == 5
    assert samples[("realio_search_seconds_count", frozenset({("backend", "postgres")}))] == 2
    assert samples[("realio_websockets_open", frozenset({("route", "chat")}))] == 2

    # and once gunicorn's child_exit hook reports one gone, its sockets no longer count (its
    # counters still do: a counter never goes down)
    gunicorn_config().child_exit(None, SimpleNamespace(pid=pids[0]))
    samples = samples_of(Client().get("/metrics").content.decode())
    assert samples[("realio_websockets_open", frozenset({("route", "chat")}))] == 1
    assert samples[("realio_booking_conflicts_total", frozenset({("operation", "request")}))] == 5


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_of_this_run():
    from django.db import connection

    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgis://postgres@127.0.0.1:55432/realio")
    return urlunsplit((parts.scheme, parts.netloc, f"/{connection.settings_dict['NAME']}", parts.query, ""))


@pytest.mark.django_db(transaction=True)
def test_gunicorn_with_two_workers_answers_the_total_of_both(tmp_path):
    # given gunicorn with the deployment's configuration, two workers and a metrics directory
    port = free_port()
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realio.settings.test", "DATABASE_URL": database_url_of_this_run(),
           "DATABASE_POOL_MAX": "4", "PORT": str(port), "WEB_CONCURRENCY": "2",
           "PROMETHEUS_MULTIPROC_DIR": str(directory), "GUNICORN_ACCESS_LOG": "/dev/null",
           "API_THROTTLE_ANON": "100000/min"}
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "deploy" / "gunicorn.conf.py"),  # noqa: S603
                               "--bind", f"127.0.0.1:{port}", "realio.wsgi"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.seek(0) or log.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

        # when searches arrive in parallel until both workers have served some
        def search(_):
            with httpx.Client(timeout=30) as client:  # a connection of its own: any worker may take it
                assert client.get(f"{base}/api/v1/search/?q=garden").status_code == 200

        sent = 0

        def workers_that_counted():
            """The processes whose histogram file holds a search (every worker has the file)."""
            return {path.stem.rsplit("_", 1)[1] for path in directory.glob("histogram_*.db")
                    if any("realio_search_seconds_sum" in key and value > 0
                           for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)))}

        with ThreadPoolExecutor(8) as pool:
            while len(workers_that_counted()) < 2 and sent < 400:
                list(pool.map(search, range(16)))
                sent += 16
        assert len(workers_that_counted()) == 2

        # then any worker's /metrics counts every search of both
        for _ in range(4):
            samples = samples_of(httpx.get(f"{base}/metrics", timeout=30).text)
            assert samples[("realio_search_seconds_count", frozenset({("backend", "postgres")}))] == sent
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
