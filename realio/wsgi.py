"""WSGI entry point: HTTP at scale runs here (gunicorn); websockets run on the ASGI side."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realio.settings.base")
application = get_wsgi_application()
