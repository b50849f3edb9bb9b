"""Test fixtures shared by every app (see realio/testing.py and realio/live_server.py)."""

pytest_plugins = ["realio.testing", "realio.live_server"]
