"""Settings for the test suite: the real PostgreSQL and Redis, on Redis databases of their own."""

from .base import *  # noqa: F403
from .base import BASE_DIR, CHANNEL_LAYER_URL_OPTIONS, env, redis_db

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = BASE_DIR / "var" / "test-media"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Kept apart from the databases `make run` uses, so a test run never touches the demo site.
TEST_REDIS_DBS = (env.int("TEST_REDIS_CACHE_DB", default=5),
                  env.int("TEST_REDIS_CHANNELS_DB", default=6),
                  env.int("TEST_REDIS_BROKER_DB", default=7))
CACHES["default"]["LOCATION"] = redis_db(TEST_REDIS_DBS[0])
# The same pool size and read timeout as base.py gives the layer.
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [redis_db(TEST_REDIS_DBS[1]) + CHANNEL_LAYER_URL_OPTIONS]
CELERY_BROKER_URL = redis_db(TEST_REDIS_DBS[2])
TEST_REDIS_URLS = [redis_db(number) for number in TEST_REDIS_DBS]
# Two test runs on one machine (two checkouts share nothing, but one checkout may run twice)
# can be kept apart with these.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_realio")}
# Race tests send ~25 requests at once, each on its own connection.
DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = env.int("DATABASE_POOL_MAX", default=30)
# A replica alias on the test database itself, for the router's tests (realio/tests/
# test_db_router.py turn the router on); the rest of the suite runs on one database.
DATABASES["replica"] = {**DATABASES["default"], "OPTIONS": {**DATABASES["default"]["OPTIONS"], "pool": {
    **DATABASES["default"]["OPTIONS"]["pool"], "min_size": 0, "max_size": 4}}, "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = []
# Tests create listings with factories (no service, no cache version bump) between searches;
# the search cache has its own test (search/tests/test_search_cache.py).
SEARCH_CACHE_SECONDS = 0
# The console SMS and push backends log only (tests replace the real providers at their client).
NOTIFICATIONS_OUTBOX_DIR = ""
# Chat attachments (the "private" storage) in a test folder of their own.
STORAGES["private"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                       "OPTIONS": {"location": str(BASE_DIR / "var" / "test-private")}}
