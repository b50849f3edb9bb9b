"""pytest plugin: the ASGI site (HTTP and websockets) served by uvicorn for browser tests, and
pytest-playwright pointed at Debian's Chromium.

`live_asgi_server` gives a test the base URL of `realio.asgi.application` running in a thread
of the test process against the test database. Like pytest-django's `live_server`, one server
lives for the session and each test using it gets the transactional database (committed rows
the server can see, flushed after the test).
"""

import socket
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
START_TIMEOUT = 20


class AsgiServer:
    """uvicorn serving an ASGI application from a daemon thread, on a port the OS picks."""

    def __init__(self, app, host="127.0.0.1"):
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.host, self.port = self.socket.getsockname()[:2]
        # lifespan off: Django's ASGI handler has none; log_config None: leave the test
        # process's logging as Django configured it.
        config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="live-asgi-server", daemon=True)
        self.error = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def _run(self):
        try:
            self.server.run(sockets=[self.socket])
        except BaseException as exc:  # reported to the test process by start()
            self.error = exc

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The live ASGI server did not start: {self.error!r}")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup):
    """The session's server, started once the test database exists (so its connections go to
    the test database). Tests reach it through `live_asgi_server`, which opens the database."""
    from realio.asgi import application

    server = AsgiServer(application)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_asgi_server(transactional_db, asgi_server):
    """The base URL (http://127.0.0.1:port) of the site served over HTTP and websockets.

    The database is transactional: what the test creates is committed, hence visible to the
    server, and everything is flushed afterwards.
    """
    return asgi_server.url


@pytest.fixture(scope="session")
def _django_beside_playwright():
    """Playwright's sync API leaves its event loop running in the main thread, where Django's
    async-safety check would then refuse the test's own database work (factories, the flush
    of the transactional database): "SynchronousOnlyOperation". No Django code runs on that
    loop, so the check is lifted for the main thread only; the live server's threads keep it.
    (Calling `async_to_sync` from a browser test still fails: do such work through the site.)
    """
    import django.utils.asyncio as django_asyncio

    original = django_asyncio.get_running_loop
    main_thread = threading.main_thread()

    def get_running_loop():
        if threading.current_thread() is main_thread:
            raise RuntimeError("Playwright's loop in the main thread runs no Django code")
        return original()

    django_asyncio.get_running_loop = get_running_loop
    yield
    django_asyncio.get_running_loop = original


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, _django_beside_playwright):
    """pytest-playwright's launch options: Debian's Chromium (`playwright install` cannot
    download here), with what it needs to run as root in a container."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def _plain_tile():
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 220, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def console_errors(page):
    """Errors the page reports: console errors, uncaught exceptions and CSP violation events."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " console.error('CSP violation: ' + e.effectiveDirective + ' ' + e.blockedURI))"
    )
    return errors


@pytest.fixture
def tiles(page):
    """Answers map tile requests (MAP_TILE_URL's host: the machine is offline) with a plain
    tile; returns the URLs the page asked for."""
    import re
    from urllib.parse import urlsplit

    from django.conf import settings

    parts = urlsplit(settings.MAP_TILE_URL)
    origin = re.escape(f"{parts.scheme}://{parts.netloc}/").replace(re.escape("{s}"), "[^./]+")
    body, requested = _plain_tile(), []

    def answer(route):
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=body)

    page.route(re.compile(f"^{origin}"), answer)
    return requested
