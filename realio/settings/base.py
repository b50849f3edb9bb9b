"""Settings shared by every environment; the defaults are the local ones `make run` uses.

Every knob is read from the environment (README lists them). `var/local.env`, written by the
set-up scripts, supplies the URLs of the project-local PostgreSQL and Redis to a `manage.py`
run by hand; a variable already in the environment wins.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / "var" / "local.env").exists():
    environ.Env.read_env(BASE_DIR / "var" / "local.env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="insecure-local-key-only-for-development-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
SITE_NAME = "Realio"
CURRENCY = env("CURRENCY", default="EUR")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django.contrib.gis",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "phonenumber_field",
    "csp",
    "django_filters",
    "django_elasticsearch_dsl",
    "leaflet",
    "realio.apps.RealioConfig",
    "accounts",
    "listings",
    "search",
    "bookings",
    "chat",
    "notifications",
    "recommendations",
]

MIDDLEWARE = [
    "realio.middleware.ProbeMiddleware",
    "realio.middleware.RequestIdMiddleware",
    "realio.db_router.PrimaryReplicaMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "realio.urls"
WSGI_APPLICATION = "realio.wsgi.application"
ASGI_APPLICATION = "realio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "realio.context_processors.site",
            ],
        },
    },
]

# --- Database: PostgreSQL + PostGIS through psycopg 3 and its pool ---------------------------
# Under ASGI persistent connections are not reaped around database_sync_to_async, so
# connections are pooled by psycopg and returned after every request (CONN_MAX_AGE=0).
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgis://postgres@127.0.0.1:55432/realio"),
}
# django-prometheus's PostGIS backend: Django's, counting queries, their time and errors
# (django_db_*); it passes its cursor class to psycopg, so it works with the pool.
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgis"
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env.int("DATABASE_POOL_MIN", default=1),
    "max_size": env.int("DATABASE_POOL_MAX", default=10),
    "timeout": 10,
}
# A read replica (optional; unset: one database). Safe requests read from it; writes, and
# reads after a write, go to the primary (realio/db_router.py).
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_ROUTERS = []
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {**env.db_url_config(DATABASE_REPLICA_URL), "ENGINE": DATABASES["default"]["ENGINE"],
                            "CONN_MAX_AGE": 0, "OPTIONS": {**DATABASES["default"]["OPTIONS"],
                                                           "pool": dict(DATABASES["default"]["OPTIONS"]["pool"])}}
    DATABASE_ROUTERS = ["realio.db_router.PrimaryReplicaRouter"]
# After a write, a client's requests read from the primary for this long (the replica's lag).
DATABASE_REPLICA_PIN_SECONDS = 15
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer and Celery broker, each on its own database number -----------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:56379").rstrip("/")
REDIS_CACHE_DB = env.int("REDIS_CACHE_DB", default=0)
REDIS_CHANNELS_DB = env.int("REDIS_CHANNELS_DB", default=1)
REDIS_BROKER_DB = env.int("REDIS_BROKER_DB", default=2)


def redis_db(number):
    """REDIS_URL with its database number replaced (a URL may carry one already)."""
    base = REDIS_URL
    tail = base.rsplit("/", 1)
    if len(tail) == 2 and tail[1].isdigit() and "://" in tail[0]:
        base = tail[0]
    return f"{base}/{number}"


CACHES = {
    "default": {
        "BACKEND": "realio.cache_backend.RedisCache",
        "LOCATION": redis_db(REDIS_CACHE_DB),
        "KEY_PREFIX": "realio",
        "TIMEOUT": 300,
    },
    # Where template fragments go when their cache is switched off (LISTING_CACHE_SECONDS=0).
    "none": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [redis_db(REDIS_CHANNELS_DB)],
            "capacity": 1500,
            "expiry": 10,
            "prefix": "realio:ws:",
        },
    }
}

# --- Celery (read by realio/celery.py with the CELERY_ namespace) -------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=redis_db(REDIS_BROKER_DB))
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per kind of work, so a long training run never delays a notification.
CELERY_TASK_ROUTES = {
    "notifications.*": {"queue": "notifications"},
    "search.*": {"queue": "search"},
    "recommendations.*": {"queue": "ml"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A worker serves its processes' task metrics on this port (0: off; realio/metrics.py).
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
# Task modules beyond each app's tasks.py (autodiscovery imports only those).
CELERY_IMPORTS = ["search.alert_tasks"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False

# --- Authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# "none" | "optional" | "mandatory": a new account can sign in at once unless configured.
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Failed sign-ins per account (`key` is the email) and per client address, shared by the web
# login, the admin login (it goes through the same view) and the API token endpoint.
LOGIN_FAILED_RATE = env("LOGIN_FAILED_RATE", default="10/15m")
AUTH_RATE = env("AUTH_RATE", default="60/m")
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{AUTH_RATE}/ip,{LOGIN_FAILED_RATE}/key",
    "login": f"{AUTH_RATE}/ip",
    "signup": f"{AUTH_RATE}/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Realio"
# When on, staff (role staff or superuser) must have set up TOTP before using the site.
MFA_REQUIRED_FOR_STAFF = env.bool("MFA_REQUIRED_FOR_STAFF", default=False)
AGENT_VERIFICATION_REQUIRED = env.bool("AGENT_VERIFICATION_REQUIRED", default=False)

# --- REST API ---------------------------------------------------------------------------------
API_THROTTLE_USER = env("API_THROTTLE_USER", default="1000/min")
API_THROTTLE_ANON = env("API_THROTTLE_ANON", default="300/min")
REST_FRAMEWORK = {
    # JWT first, so an anonymous API call is answered 401 (with WWW-Authenticate), not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "realio.throttling.AnonRateThrottle",
        "realio.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": API_THROTTLE_ANON,
        "user": API_THROTTLE_USER,
        "auth": AUTH_RATE,
    },
    "DEFAULT_PAGINATION_CLASS": "realio.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "realio.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default=SECRET_KEY),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Realio API",
    "DESCRIPTION": "Homes to buy or rent, viewings, chat, notifications and recommendations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation's error answers ({"detail", "errors"?}) beside its success (realio/api.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "realio.api.document_error_responses"],
    # Several resources have a `status`: name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "ListingStatusEnum": "listings.models.Listing.Status",
        "ViewingStatusEnum": "bookings.models.Viewing.Status",
    },
}

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Front-end packages come from npm (package-lock.json) and are served from node_modules.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/leaflet", BASE_DIR / "node_modules" / "leaflet" / "dist"),
]
# Uploads go to local media, or to S3-compatible object storage when a bucket is configured.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "custom_domain": env("AWS_S3_CUSTOM_DOMAIN", default=None),
            "file_overwrite": False,
            "querystring_auth": False,
        },
    }
else:
    DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Public uploads (avatars, listing photos) served by Django itself; production serves them from
# object storage or the ingress instead. Private files never go through this.
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Uploads: images are checked by content (realio/images.py).
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", default=40_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Email -------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = BASE_DIR / "var" / "mail"
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Realio <no-reply@realio.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Maps: tiles are map data fetched by the browser (the scripts are the site's own) ---------
MAP_TILE_URL = env("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", default="© OpenStreetMap contributors")


def _tile_origin(url):
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


# --- Security ----------------------------------------------------------------------------------
# A strict Content-Security-Policy: no inline script, every asset from the site itself.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *filter(None, [_tile_origin(MAP_TILE_URL)])],
        "connect-src": ["'self'", "ws:", "wss:"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Probes must answer over plain HTTP, whatever SECURE_SSL_REDIRECT says.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SILENCED_SYSTEM_CHECKS = ["gis.W001"]  # Debian 12's GDAL 3.6 is older than Django recommends.

# --- Logging: readable locally, JSON in production (production.py) -------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "realio.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Search and other services (used by later capabilities) ---------------------------------------
SEARCH_BACKEND = env("SEARCH_BACKEND", default="postgres")
ELASTICSEARCH_URL = env("ELASTICSEARCH_URL", default="")
ELASTICSEARCH_DSL_AUTOSYNC = False  # the index follows the listing events, not model signals
ELASTICSEARCH_DSL_AUTO_REFRESH = False
ELASTICSEARCH_DSL = {"default": {"hosts": ELASTICSEARCH_URL or "http://127.0.0.1:9200",
                                 "request_timeout": env.float("ELASTICSEARCH_TIMEOUT", default=5)}}
ELASTICSEARCH_INDEX = env("ELASTICSEARCH_INDEX", default="realio-listings")
# No model signals: the index follows the listing events (search/indexing.py) and a reconcile.
ELASTICSEARCH_DSL_SIGNAL_PROCESSOR = "django_elasticsearch_dsl.signals.BaseSignalProcessor"
SEARCH_RECONCILE_SECONDS = env.int("SEARCH_RECONCILE_SECONDS", default=600)
# Identical searches are answered from Redis for this long (0: off); any listing write
# invalidates them at once (realio/cache.py versions).
SEARCH_CACHE_SECONDS = env.int("SEARCH_CACHE_SECONDS", default=60)
# Facet counts from each process's in-memory columns of the active listings, kept current from
# a trigger-written change log (search/snapshot.py); off: counted in SQL on every search.
SEARCH_SNAPSHOT = env.bool("SEARCH_SNAPSHOT", default=True)
# A published listing's API body and its page's fragments, kept under the listing's own cache
# version (its writes bump it after commit): never stale, so they can be kept a while. 0 = off.
LISTING_CACHE_SECONDS = env.int("LISTING_CACHE_SECONDS", default=600)

# Bookings (bookings/): viewing length, how long a request waits for the agent, the beat.
BOOKING_DEFAULT_MINUTES = env.int("BOOKING_DEFAULT_MINUTES", default=30)
BOOKING_MAX_MINUTES = env.int("BOOKING_MAX_MINUTES", default=180)
BOOKING_REVIEW_HOURS = env.int("BOOKING_REVIEW_HOURS", default=24)
BOOKING_SWEEP_SECONDS = env.int("BOOKING_SWEEP_SECONDS", default=60)

# Events (realio/events.py): how often the sweep re-relays what a broker outage left behind.
EVENTS_SWEEP_SECONDS = env.int("EVENTS_SWEEP_SECONDS", default=60)
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=8)
EVENTS_BACKOFF_BASE_SECONDS = env.float("EVENTS_BACKOFF_BASE_SECONDS", default=1)
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=14)

# Reverse proxies whose X-Forwarded-* headers are believed (addresses or CIDR ranges).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
ALLAUTH_TRUSTED_PROXY_COUNT = REST_FRAMEWORK["NUM_PROXIES"]
LISTING_VIEWS_FLUSH_SECONDS = env.int("LISTING_VIEWS_FLUSH_SECONDS", default=30)
CELERY_BEAT_SCHEDULE = {
    "sweep-events": {"task": "realio.sweep_events", "schedule": float(EVENTS_SWEEP_SECONDS)},
    "purge-events": {"task": "realio.purge_events", "schedule": 3600.0},
    "search-reconcile": {"task": "search.reconcile", "schedule": float(SEARCH_RECONCILE_SECONDS)},
    "search-refresh-vocabulary": {"task": "search.refresh_vocabulary", "schedule": 3600.0},
    "search-prune-listing-changes": {"task": "search.prune_listing_changes", "schedule": 3600.0},
    "search-alert-digests": {"task": "search.send_alert_digests", "schedule": 900.0},
    "flush-listing-views": {"task": "listings.flush_views", "schedule": float(LISTING_VIEWS_FLUSH_SECONDS)},
    "bookings-sweep": {"task": "bookings.sweep", "schedule": float(BOOKING_SWEEP_SECONDS)},
}

# Recommendations and valuation (recommendations/): where trained models are kept, the weight
# of each kind of interaction, the recommender's size, and the retraining beat.
RECO_MODEL_DIR = Path(env("RECO_MODEL_DIR", default=str(BASE_DIR / "var" / "models")))
RECO_WEIGHTS = {
    kind: env.float(f"RECO_WEIGHT_{kind.upper()}", default=default)
    for kind, default in (("view", 1.0), ("gallery_opened", 2.0), ("search_click", 1.0), ("share", 3.0),
                          ("favorite", 5.0), ("unfavorite", -5.0), ("contact", 6.0), ("booking", 8.0),
                          ("saved_search", 1.0))
}
RECO_FACTORS = env.int("RECO_FACTORS", default=48)
RECO_CANDIDATES = env.int("RECO_CANDIDATES", default=200)
RECO_CACHE_SECONDS = env.int("RECO_CACHE_SECONDS", default=24 * 3600)
# The API bodies of recommended and similar homes are cached this long per listing and change
# (0: off; view counts in them may lag this long); being active, favorited or booked is checked
# on every request.
RECO_LISTING_CACHE_SECONDS = env.int("RECO_LISTING_CACHE_SECONDS", default=6 * 3600)
# How often a serving process checks which model version is promoted (seconds; 0: every request).
RECO_RELOAD_SECONDS = env.float("RECO_RELOAD_SECONDS", default=2.0)
# A new model is promoted only if its hold-out score is at least (1 - this) × the current one's.
RECO_PROMOTE_TOLERANCE = env.float("RECO_PROMOTE_TOLERANCE", default=0.0)
RECO_TRAIN_SECONDS = env.int("RECO_TRAIN_SECONDS", default=24 * 3600)
# Threads for BLAS/OpenMP while training (1: on shared cores, more threads measured slower here).
RECO_TRAIN_THREADS = env.int("RECO_TRAIN_THREADS", default=1)
VALUATION_TRAIN_SECONDS = env.int("VALUATION_TRAIN_SECONDS", default=7 * 24 * 3600)
CELERY_BEAT_SCHEDULE |= {
    "recommendations-train": {"task": "recommendations.train", "schedule": float(RECO_TRAIN_SECONDS)},
    "valuation-train": {"task": "recommendations.train_valuation", "schedule": float(VALUATION_TRAIN_SECONDS)},
}

# --- Notifications (notifications/): channel backends, retries, quiet hours, digests ------------
NOTIFICATIONS_IN_APP_BACKEND = "notifications.backends.in_app.InAppBackend"
NOTIFICATIONS_EMAIL_BACKEND = "notifications.backends.email.EmailBackend"  # sends through EMAIL_BACKEND
NOTIFICATIONS_SMS_BACKEND = env("NOTIFICATIONS_SMS_BACKEND", default="notifications.backends.sms.ConsoleSMSBackend")
NOTIFICATIONS_PUSH_BACKEND = env("NOTIFICATIONS_PUSH_BACKEND",
                                 default="notifications.backends.push.ConsolePushBackend")
# Where the console SMS and push backends append what they would send (JSON lines); "" = log only.
NOTIFICATIONS_OUTBOX_DIR = env("NOTIFICATIONS_OUTBOX_DIR", default=str(BASE_DIR / "var" / "notifications"))
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
NOTIFICATIONS_BACKOFF_BASE_SECONDS = env.float("NOTIFICATIONS_BACKOFF_BASE_SECONDS", default=10)
NOTIFICATIONS_BACKOFF_MAX_SECONDS = env.float("NOTIFICATIONS_BACKOFF_MAX_SECONDS", default=3600)
# Retries waiting longer than this are left to the dispatcher (no long countdowns on the broker).
NOTIFICATIONS_COUNTDOWN_MAX_SECONDS = env.float("NOTIFICATIONS_COUNTDOWN_MAX_SECONDS", default=120)
NOTIFICATIONS_DISPATCH_SECONDS = env.int("NOTIFICATIONS_DISPATCH_SECONDS", default=30)
NOTIFICATIONS_REQUEUE_AFTER_SECONDS = env.int("NOTIFICATIONS_REQUEUE_AFTER_SECONDS", default=300)
NOTIFICATIONS_DIGEST_DELAY_SECONDS = env.int("NOTIFICATIONS_DIGEST_DELAY_SECONDS", default=600)
NOTIFICATIONS_QUIET_CHANNELS = env.list("NOTIFICATIONS_QUIET_CHANNELS", default=["sms", "push"])
NOTIFICATIONS_PROVIDER_TIMEOUT = env.float("NOTIFICATIONS_PROVIDER_TIMEOUT", default=10)
TWILIO_API_URL = env("TWILIO_API_URL", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env("TWILIO_MESSAGING_SERVICE_SID", default="")
NOTIFICATIONS_SMS_STATUS_CALLBACK_URL = env("NOTIFICATIONS_SMS_STATUS_CALLBACK_URL",
                                            default=f"{SITE_URL.rstrip('/')}/notifications/sms/status/")
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE", default="")
FCM_CREDENTIALS_JSON = env("FCM_CREDENTIALS_JSON", default="")
# Delivery.status beside Listing.status in the API schema: both named (Listing's keeps its name), not hashed.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["DeliveryStatusEnum"] = "notifications.models.Delivery.Status"
CELERY_BEAT_SCHEDULE["notifications-dispatch-due"] = {
    "task": "notifications.dispatch_due", "schedule": float(NOTIFICATIONS_DISPATCH_SECONDS)}
# --- Chat (chat/) ------------------------------------------------------------------------------
# Messages per user: at most CHAT_RATE_MESSAGES in any CHAT_RATE_SECONDS (socket and API alike).
CHAT_RATE_MESSAGES = env.int("CHAT_RATE_MESSAGES", default=20)
CHAT_RATE_SECONDS = env.int("CHAT_RATE_SECONDS", default=10)
CHAT_ATTACHMENT_MAX_BYTES = env.int("CHAT_ATTACHMENT_MAX_BYTES", default=5 * 1024 * 1024)
# A socket refreshes its presence every third of this; a crashed process's sockets stop
# counting as "online" after it.
CHAT_PRESENCE_TTL_SECONDS = env.int("CHAT_PRESENCE_TTL_SECONDS", default=30)
# Private files (chat attachments): a folder outside MEDIA_ROOT locally, a private bucket (or a
# private prefix of the public one) with signed access when object storage is configured.
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))
if AWS_STORAGE_BUCKET_NAME:
    PRIVATE_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        **DEFAULT_STORAGE["OPTIONS"],
        "bucket_name": env("AWS_PRIVATE_BUCKET_NAME", default=AWS_STORAGE_BUCKET_NAME),
        "location": "private", "default_acl": "private", "querystring_auth": True, "custom_domain": None,
    }}
else:
    PRIVATE_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                       "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT)}}
STORAGES["private"] = PRIVATE_STORAGE  # settings modules that redefine STORAGES add it again
# channels_redis takes a Redis connection per layer call in flight, and redis-py refuses beyond
# its pool (100 by default): a websocket process with hundreds of sockets needs more. Its
# receive loop blocks on Redis for 5 s (BZPOPMIN), exactly redis-py 8's default socket timeout:
# the read must be allowed longer, or a busy process loses the race and every socket drops.
CHANNEL_LAYER_MAX_CONNECTIONS = env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000)
CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=30)
# As query arguments of the layer's Redis URL (redis-py reads them), so hosts stay URLs.
CHANNEL_LAYER_URL_OPTIONS = (f"?max_connections={CHANNEL_LAYER_MAX_CONNECTIONS}"
                             f"&socket_timeout={CHANNEL_LAYER_SOCKET_TIMEOUT}")
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
    f"{host}{CHANNEL_LAYER_URL_OPTIONS}" if isinstance(host, str) and "?" not in host else host
    for host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
]
