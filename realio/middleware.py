"""Cross-cutting middleware: probes that answer on any host, proxy-header trust, request ids."""

import ipaddress
import uuid

from django.conf import settings

from realio import health, metrics
from realio.logging import request_context


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before host validation, HTTPS redirect or
    sessions, so load balancers, Kubernetes probes and Prometheus reach them by pod IP over
    plain HTTP. First in the list.
    """

    routes = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics.metrics_view}

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in settings.TRUSTED_PROXIES]

    def __call__(self, request):
        view = self.routes.get(request.path_info.rstrip("/") or "/")
        if view is not None:
            return view(request)
        self._strip_untrusted_forwarding(request)
        return self.get_response(request)

    def _strip_untrusted_forwarding(self, request):
        # X-Forwarded-Proto/-For are believed only from configured proxies.
        try:
            remote = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            remote = None
        if remote is not None and any(remote in net for net in self.trusted):
            return
        for header in ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST"):
            request.META.pop(header, None)


class RequestIdMiddleware:
    """Gives each request an id (or keeps a proxy's X-Request-ID) for logs and the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        with request_context(request_id=request_id, request=request):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
