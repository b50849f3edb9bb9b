"""Production settings: no defaults for secrets, HTTPS everywhere, JSON logs.

Refuses to start when a required variable is missing, `DEBUG` is on or `SECRET_KEY` is the
local default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

# Checked before base.py runs: it would fill the URLs from the local set-up's var/local.env.
REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
missing = [name for name in REQUIRED if not os.environ.get(name)]
if missing:
    raise ImproperlyConfigured(f"Production settings need {', '.join(missing)} in the environment.")

from .base import *  # noqa: E402, F403
from .base import DEFAULT_STORAGE, LOGGING, SECRET_KEY, env  # noqa: E402

if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("DEBUG must be off in production.")
if SECRET_KEY.startswith("insecure-") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be a random value of 50 characters or more.")
# Key rotation: the previous keys, newest first. Signatures made with them (sessions, password
# reset and email links, unsubscribe tokens) still verify; everything new is signed with
# SECRET_KEY. Remove a key once what it signed has expired. JWTs are signed with JWT_SIGNING_KEY
# (SECRET_KEY when unset), which has no fallbacks: set it apart to rotate the two independently.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
if any(key.startswith("insecure-") or len(key) < 50 for key in SECRET_KEY_FALLBACKS):
    raise ImproperlyConfigured("Every SECRET_KEY_FALLBACKS key must be a random value of 50 characters or more.")

DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# HTTPS. X-Forwarded-Proto/-For are trusted only from TRUSTED_PROXIES (realio/middleware.py
# strips them from anyone else), so the redirect and the client address cannot be spoofed.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LANGUAGE_COOKIE_SECURE = True

SERVE_MEDIA = env.bool("SERVE_MEDIA", default=False)
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STORAGES["private"] = PRIVATE_STORAGE  # chat attachments (base.py)

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
LOG_JSON = env.bool("LOG_JSON", default=True)
if LOG_JSON:
    LOGGING["handlers"]["console"]["formatter"] = "json"
