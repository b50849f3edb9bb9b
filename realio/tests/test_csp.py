"""A strict Content-Security-Policy on every HTML page (DESIGN.md section 6): script-src allows
the site itself and the request's nonce, never 'unsafe-inline'; every inline script carries that
nonce; no page and no template has inline event handlers or `javascript:` URLs."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from accounts.tests.factories import AgentFactory, StaffFactory, UserFactory
from bookings.tests.factories import ViewingFactory
from chat.tests.factories import ConversationFactory
from listings.tests.factories import ListingFactory

ROOT = Path(settings.BASE_DIR)
# The project's own templates (third-party ones are checked as served, below). Email templates
# are not pages: mail clients run no script, and their inline styles are the norm there.
TEMPLATES = sorted(
    path for folder in [ROOT / "templates", *ROOT.glob("*/templates")] for path in folder.rglob("*.html")
    if "node_modules" not in path.parts and ".venv" not in path.parts
)
EVENT_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=""", re.I | re.S)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.I)


class Scripts(HTMLParser):
    """The <script> tags, inline event handler attributes and javascript: URLs of a page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.js_urls, self.assets = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs)
            self.assets.append(attrs.get("src"))
        if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
            self.assets.append(attrs.get("href"))
        self.handlers += [f"<{tag} {name}=…>" for name in attrs if name.startswith("on")]
        self.js_urls += [f"<{tag} {name}={value}>" for name, value in attrs.items()
                         if name in ("href", "src", "action") and is_javascript_url(value)]


def is_javascript_url(value):
    return (value or "").strip().lower().startswith("javascript:")


# Types a browser runs as script; others (application/json, application/ld+json) are data blocks,
# which CSP does not govern.
SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module"}


def script_src(policy):
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip())
    return directives.get("script-src", directives.get("default-src", "")).split()


@pytest.fixture
def world(db):
    agent = AgentFactory()
    customer = UserFactory()
    listing = ListingFactory(agent=agent)
    viewing = ViewingFactory(listing=listing, customer=customer)
    conversation = ConversationFactory(listing=listing, customer=customer)
    return {"agent": agent, "customer": customer, "staff": StaffFactory(), "listing": listing,
            "viewing": viewing, "conversation": conversation}


# (who is signed in, path) for every kind of page; `{listing}` etc. come from the world.
PAGES = [
    (None, "/"),
    (None, "/search/"),
    (None, "/search/?q=flat&lat=48.86&lng=2.33&radius_km=5"),
    (None, "/listings/{listing}/"),
    (None, "/accounts/login/"),
    (None, "/accounts/signup/"),
    (None, "/accounts/password/reset/"),
    (None, "/admin/login/"),
    (None, "/api/docs/"),
    (None, "/api/redoc/"),
    ("customer", "/"),
    ("customer", "/listings/{listing}/"),
    ("customer", "/listings/{listing}/book/"),
    ("customer", "/favorites/"),
    ("customer", "/saved-searches/"),
    ("customer", "/bookings/"),
    ("customer", "/bookings/{viewing}/reschedule/"),
    ("customer", "/messages/"),
    ("customer", "/messages/{conversation}/"),
    ("customer", "/notifications/"),
    ("customer", "/notifications/preferences/"),
    ("customer", "/profile/"),
    ("customer", "/profile/delete/"),
    ("customer", "/accounts/email/"),
    ("customer", "/accounts/password/change/"),
    ("customer", "/accounts/2fa/"),
    ("customer", "/accounts/2fa/totp/activate/"),
    ("agent", "/bookings/"),
    ("agent", "/messages/{conversation}/"),
    ("agent", "/admin/"),
    ("agent", "/admin/listings/listing/"),
    ("agent", "/admin/listings/listing/{listing}/change/"),
    ("agent", "/admin/listings/listing/add/"),
    ("agent", "/admin/bookings/viewing/{viewing}/change/"),
    ("staff", "/admin/"),
]


@pytest.mark.parametrize(("who", "path"), PAGES, ids=[f"{who or 'anonymous'} {path}" for who, path in PAGES])
def test_page_has_a_strict_csp_and_no_inline_script_without_its_nonce(client, world, who, path):
    if who:
        client.force_login(world[who])
    url = path.format(listing=world["listing"].pk, viewing=world["viewing"].pk,
                      conversation=world["conversation"].pk)

    response = client.get(url, follow=True)  # the admin's login is allauth's; MFA set-up asks to reauthenticate

    assert response.status_code == 200, f"{url} → {response.status_code}"
    assert response["Content-Type"].startswith("text/html")
    policy = response.get("Content-Security-Policy", "")
    sources = script_src(policy)
    assert sources, f"no script-src in {policy!r}"
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    assert not any(source.startswith(("http:", "https:", "*")) or source == "data:" for source in sources), sources
    nonces = {source[len("'nonce-"):-1] for source in sources if source.startswith("'nonce-")}
    page = Scripts()
    page.feed(response.content.decode())
    for script in page.scripts:
        if "src" not in script and (script.get("type") or "").lower() in SCRIPT_TYPES:
            assert script.get("nonce") in nonces, f"inline <script {script}> without the page's nonce"
    assert page.handlers == [], "inline event handlers"
    assert page.js_urls == [], "javascript: URLs"
    # Scripts and stylesheets come from the site itself (no CDN at run time).
    assert [url for url in page.assets if url and not url.startswith("/")] == []


@pytest.mark.parametrize("path", TEMPLATES, ids=[str(path.relative_to(ROOT)) for path in TEMPLATES])
def test_template_has_no_inline_handlers_and_nonced_scripts(path):
    text = path.read_text()

    assert not EVENT_HANDLER.search(text), "inline event handler (on…=)"
    assert not JAVASCRIPT_URL.search(text), "javascript: URL"
    for tag in SCRIPT_TAG.findall(text):
        assert "nonce=" in tag, f"{tag} without nonce"


def test_the_template_checks_find_what_they_look_for():
    """The patterns above are not blind: they see the faults they are meant to find."""
    assert EVENT_HANDLER.search('<button class="x"\n onclick="go()">')
    assert JAVASCRIPT_URL.search('<a href="javascript:alert(1)">')
    assert SCRIPT_TAG.findall("<script>alert(1)</script>") == ["<script>"]
    assert TEMPLATES, "templates were found"
