"""WSGI entry point: HTTP at scale runs here (gunicorn); websockets run on the ASGI side."""

import os

from django.core.wsgi import get_wsgi_application

from realio import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realio.settings.base")
tracing.setup("web")  # before the handler is built: it adds a middleware when tracing is on
application = get_wsgi_application()
