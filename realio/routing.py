"""All websocket routes, gathered from each app's routing.py (under /ws/)."""

from django.urls import path

from notifications.routing import websocket_urlpatterns as notifications_routes
from realio.consumers import WhoAmIConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    *notifications_routes,
]
