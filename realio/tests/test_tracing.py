"""OpenTelemetry traces: a request's span with its SQL and Redis spans as children, a task queued
by a request in the same trace in the worker, spans really POSTed over OTLP/HTTP to
OTEL_EXPORTER_OTLP_ENDPOINT (a local collector stand-in that decodes them), and nothing of
OpenTelemetry loaded when no endpoint is set."""

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from accounts.tests.factories import AgentFactory, UserFactory
from listings.tests.factories import ListingFactory
from realio import tracing

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")


def fresh_connections():
    """Connections are traced from their connect on: drop this thread's and the pool's."""
    connection.close()
    connection.close_pool()


@pytest.fixture
def spans():
    """The SDK set up as in production, exporting to memory instead of OTLP."""
    exporter = InMemorySpanExporter()
    provider = tracing.provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fresh_connections()
    tracing.instrument(provider)
    yield exporter
    tracing.uninstrument()
    fresh_connections()
    provider.shutdown()


def db_system(span):
    return span.attributes.get("db.system") or span.attributes.get("db.system.name")


@pytest.mark.django_db(transaction=True)
def test_a_request_is_a_server_span_with_its_sql_and_redis_calls_as_children(spans):
    ListingFactory(title="Sunny house with a garden")
    spans.clear()

    assert Client().get("/api/v1/search/?q=garden").status_code == 200

    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert server.name == "GET api/v1/search/"
    assert server.resource.attributes["service.name"] and server.resource.attributes["realio.role"] == "test"
    children = [s for s in finished if s.parent is not None and s.parent.span_id == server.context.span_id]
    sql = [s for s in children if db_system(s) == "postgresql"]
    assert sql, [s.name for s in finished]
    assert any("garden" in str(s.attributes.get("db.statement", s.attributes.get("db.query.text", "")))
               or s.name.startswith("SELECT") for s in sql)
    assert any(db_system(s) == "redis" for s in children)  # the API's throttle counters
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}


@pytest.mark.django_db(transaction=True)
def test_redis_and_sql_outside_requests_and_tasks_are_not_traced(spans):
    from realio.redis import get_redis

    get_redis().ping()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    assert spans.get_finished_spans() == ()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_task_queued_by_a_request_runs_in_the_requests_trace(spans, celery_worker, auth_client):
    # given a listing open for viewings
    listing = ListingFactory(agent=AgentFactory(time_zone="Europe/Paris"))
    client = auth_client(UserFactory())
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=2)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    spans.clear()

    # when a customer books a viewing (the booking.requested event is relayed by a task)
    start = dt.datetime.combine(day, dt.time(10), tzinfo=PARIS).isoformat()
    response = client.post("/api/v1/bookings/", {"listing": listing.pk, "start": start}, format="json")
    assert response.status_code == 201

    # then the worker's run of the relay task belongs to the request's trace
    def worker_span():
        return [s for s in spans.get_finished_spans()
                if s.kind == SpanKind.CONSUMER and s.name == "run/realio.relay_event"]

    deadline = time.monotonic() + 30
    while not worker_span() and time.monotonic() < deadline:
        time.sleep(0.05)
    (run,) = worker_span()[:1]
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert run.context.trace_id == server.context.trace_id
    (published,) = [s for s in spans.get_finished_spans()
                    if s.kind == SpanKind.PRODUCER and s.name == "apply_async/realio.relay_event"]
    assert run.parent.span_id == published.context.span_id
    assert published.parent.span_id == server.context.span_id
    # and the worker's SQL is part of it too
    assert any(db_system(s) == "postgresql" and s.parent.span_id == run.context.span_id
               for s in spans.get_finished_spans() if s.parent)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector stand-in: keeps each POSTed export request, decoded."""

    received = []

    def do_POST(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.received.append((self.path, self.headers["Content-Type"], export))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def database_url_of_this_run():
    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgis://postgres@127.0.0.1:55432/realio")
    return urlunsplit((parts.scheme, parts.netloc, f"/{connection.settings_dict['NAME']}", parts.query, ""))


REQUEST_THROUGH_WSGI = """
import io, json, sys
from django.conf import settings
from realio.wsgi import application

def get(path, host):
    status = []
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": host,
               "SERVER_PORT": "8000", "HTTP_HOST": f"{host}:8000", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1"}
    b"".join(application(environ, lambda s, h, *a: status.append(s)))
    return status[0]

print(json.dumps({
    "probe": get("/readyz", "10.1.2.3"),  # kubelet probes by pod address: answered before any host check
    "search": get("/api/v1/search/?q=garden", "127.0.0.1"),
    "loaded": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter",
                                                              "opentelemetry.instrumentation"))),
    "middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
}))
"""


def run_web_process(extra_env):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realio.settings.test", "DATABASE_URL": database_url_of_this_run(),
           "DATABASE_POOL_MAX": "2", **extra_env}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        if name not in extra_env:
            env.pop(name, None)
    process = subprocess.run([sys.executable, "-c", REQUEST_THROUGH_WSGI], cwd=ROOT, env=env,  # noqa: S603
                             capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_spans_are_posted_over_otlp_http_when_an_endpoint_is_set():
    # given a collector listening locally
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # when a web process with OTEL_EXPORTER_OTLP_ENDPOINT answers /readyz, then exits
        result = run_web_process({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
                                  "OTEL_SERVICE_NAME": "realio-test"})
    finally:
        server.shutdown()
        server.server_close()
    assert result["probe"] == result["search"] == "200 OK"

    # then its spans were POSTed as OTLP protobuf to /v1/traces: the request, its SQL and Redis
    assert Collector.received
    assert {(path, kind) for path, kind, _ in Collector.received} == {("/v1/traces", "application/x-protobuf")}
    exported = []
    for _, _, export in Collector.received:
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "realio-test" and resource["realio.role"] == "web"
            exported += [span for scope in resource_spans.scope_spans for span in scope.spans]
    (request,) = [s for s in exported if s.kind == s.SPAN_KIND_SERVER]  # probes are not traced
    assert request.name == "GET api/v1/search/"
    systems = {a.value.string_value for s in exported for a in s.attributes if a.key in ("db.system", "db.system.name")}
    assert {"postgresql", "redis"} <= systems
    assert {s.trace_id for s in exported} == {request.trace_id}
    assert all(s.parent_span_id == request.span_id for s in exported if s is not request)


@pytest.mark.django_db(transaction=True)
def test_without_an_endpoint_no_tracing_is_loaded_or_installed():
    result = run_web_process({})
    assert result == {"probe": "200 OK", "search": "200 OK", "loaded": [], "middleware": []}
