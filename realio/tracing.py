"""OpenTelemetry traces of requests, SQL (psycopg), Redis and Celery tasks, exported over OTLP/HTTP.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then
nothing of OpenTelemetry is even imported. `setup(role)` is called by realio/wsgi.py,
realio/asgi.py and each Celery pool process (realio/celery.py). The trace context travels with
every task in its `traceparent` header (the Celery instrumentation), so a task queued by a
request belongs to that request's trace. The SDK reads the standard variables: OTEL_SERVICE_NAME
(default "realio"), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG,
OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_* (batching).

Redis and SQL calls made outside any request or task (the channel layer's receive loop, beat's
polling) would each become a trace of one span: those are not sampled.
"""

import logging
import os

logger = logging.getLogger(__name__)

_provider = None
_instrumented = []


def enabled():
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                ) and os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"


def setup(role):
    """Trace this process when an OTLP endpoint is configured; returns whether it does."""
    global _provider
    if _provider is not None or not enabled():
        return _provider is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _provider = provider(role)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    instrument(_provider)
    logger.info("tracing on (%s): spans exported over OTLP/HTTP", role)
    return True


def shutdown():
    """Export what is still buffered (a Celery pool process ends without running atexit)."""
    if _provider is not None:
        _provider.shutdown()


def provider(role):
    """A TracerProvider for this service and role, sampling as OTEL_TRACES_SAMPLER says (every
    trace by default) but never a lone client span."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "realio",
                                "realio.role": role})
    return TracerProvider(resource=resource, sampler=NoLoneClientSpans(_get_from_env_or_default()))


def _sampler_base():
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind, get_current_span

    class Base(Sampler):
        def __init__(self, delegate):
            self.delegate = delegate

        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            parent = get_current_span(parent_context).get_span_context()
            if kind == SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                               trace_state)

        def get_description(self):
            return f"NoLoneClientSpans{{{self.delegate.get_description()}}}"

    return Base


def NoLoneClientSpans(delegate):  # noqa: N802 (builds the class on first use: no import when off)
    return _sampler_base()(delegate)


def instrument(tracer_provider):
    """Instrument Django, psycopg, Redis and Celery with `tracer_provider` (before the WSGI/ASGI
    handler is built: the Django instrumentation adds a middleware)."""
    from django.conf import settings
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # After the probes' middleware: /healthz and /readyz answer on any host (the tracing
    # middleware asks for the host first, which refuses a kubelet's pod address), untraced.
    probe = "realio.middleware.ProbeMiddleware"
    position = settings.MIDDLEWARE.index(probe) + 1 if probe in settings.MIDDLEWARE else 0
    for instrumentor, options in ((DjangoInstrumentor(), {"middleware_position": position}),
                                  (RedisInstrumentor(), {}), (CeleryInstrumentor(), {})):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider, **options)
            _instrumented.append(instrumentor)
    _instrument_psycopg(tracer_provider)


def uninstrument():
    """Undo instrument() (tests)."""
    import psycopg
    from opentelemetry.instrumentation import dbapi

    while _instrumented:
        _instrumented.pop().uninstrument()
    for target in (psycopg, psycopg.Connection):
        if getattr(target.connect, "__wrapped__", None):
            dbapi.unwrap_connect(target, "connect")


def _instrument_psycopg(tracer_provider):
    """Spans for every statement on connections opened from now on (Django's pool opens them with
    `psycopg.Connection.connect`). The psycopg instrumentation package of this release requires an
    older instrumentation core than the SDK, so this is its cursor-factory technique on the DB-API
    integration itself."""
    import psycopg
    from opentelemetry.instrumentation import dbapi

    if getattr(psycopg.Connection.connect, "__wrapped__", None):
        return

    class Integration(dbapi.DatabaseApiIntegration):
        def wrapped_connection(self, connect_method, args, kwargs):
            kwargs["cursor_factory"] = _traced_cursor_class(self, kwargs.pop("cursor_factory", None) or psycopg.Cursor)
            connection = connect_method(*args, **kwargs)
            self.get_connection_attributes(connection)
            return connection

    attributes = {"database": "info.dbname", "port": "info.port", "host": "info.host", "user": "info.user"}
    for target in (psycopg, psycopg.Connection):  # psycopg.connect, and the pool's Connection.connect
        dbapi.wrap_connect(__name__, target, "connect", "postgresql", attributes, tracer_provider=tracer_provider,
                           db_api_integration_factory=Integration)


def _traced_cursor_class(integration, base):
    from opentelemetry.instrumentation import dbapi

    tracer = dbapi.CursorTracer(integration)

    class TracedCursor(base):
        def execute(self, *args, **kwargs):
            return tracer.traced_execution(self, super().execute, *args, **kwargs)

        def executemany(self, *args, **kwargs):
            return tracer.traced_execution(self, super().executemany, *args, **kwargs)

    return TracedCursor
