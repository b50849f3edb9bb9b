"""Realio: the project package (settings, URLs, ASGI/WSGI, Celery) and shared infrastructure."""

from .celery import app as celery_app

__all__ = ("celery_app",)
