"""ASGI entry point: HTTP and websockets (uvicorn). Websockets authenticate by the session
cookie or an `Authorization: Bearer` JWT sent on the handshake."""

import os

from django.core.asgi import get_asgi_application

from realio import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realio.settings.base")
tracing.setup("asgi")  # before the handler is built: it adds a middleware when tracing is on
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realio.metrics import CountWebsockets  # noqa: E402
from realio.routing import websocket_urlpatterns  # noqa: E402
from realio.websocket_auth import SessionOrJWTAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": CountWebsockets(
            AllowedHostsOriginValidator(SessionOrJWTAuthMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)
