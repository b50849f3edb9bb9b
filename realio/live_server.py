"""Placeholder: the ASGI live server fixture for browser and websocket tests."""
