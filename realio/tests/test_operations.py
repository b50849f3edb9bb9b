"""Probes, metrics, security headers and the production settings."""

import contextlib
import os
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

ROOT = settings.BASE_DIR


def test_healthz_answers_on_any_host_over_plain_http(client, settings):
    settings.ALLOWED_HOSTS = ["realio.example"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_redis(client, settings):
    settings.ALLOWED_HOSTS = ["realio.example"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/readyz", HTTP_HOST="10.1.2.3")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_naming_redis_when_it_is_down(client, settings):
    from django.core.cache import caches

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.5}}}
    def reset_caches():  # let the cache handler re-read the setting
        caches._settings = None
        with contextlib.suppress(AttributeError, KeyError):
            del caches["default"]

    reset_caches()
    try:
        response = client.get("/readyz")
    finally:
        reset_caches()

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down")
    assert "redis" in body["detail"]


def test_other_pages_still_check_the_host(client, settings):
    settings.ALLOWED_HOSTS = ["realio.example"]

    assert client.get("/", HTTP_HOST="evil.example").status_code == 400


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/")

    policy = response.headers["Content-Security-Policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'self'" in script_src
    assert "default-src 'self'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Request-ID"]


def test_forwarded_proto_is_ignored_from_untrusted_clients(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    spoofed = client.get("/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="203.0.113.9")

    assert spoofed.status_code == 301  # still plain HTTP: redirected to https


def test_forwarded_proto_is_believed_from_a_trusted_proxy(client, settings):
    from realio.middleware import ProbeMiddleware

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # the middleware reads TRUSTED_PROXIES when built; the test client builds a fresh handler
    assert ProbeMiddleware(lambda r: None).trusted

    response = client.get("/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="10.0.0.5")

    assert response.status_code == 200


def _production_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="realio.settings.production",
        SECRET_KEY="k" * 20 + "-production-secret-that-is-long-enough-0123456789",
        ALLOWED_HOSTS="realio.example",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/realio"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"),
    )
    env.update(extra)
    return env


def _manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_with_production_settings_is_clean():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_required_variables(missing):
    env = _production_env()
    env.pop(missing)

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_production_refuses_debug_and_the_default_secret():
    assert _manage("check", env=_production_env(DEBUG="true")).returncode != 0
    weak = _manage("check", env=_production_env(SECRET_KEY="insecure-local-key-only-for-development-0123456789"))
    assert weak.returncode != 0


def test_api_docs_keep_scripts_strict(client):
    response = client.get("/api/docs/")

    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert "'unsafe-inline'" not in policy["script-src"]
    assert b"swagger-ui-bundle.js" in response.content and b"//cdn" not in response.content


def test_uploads_go_to_s3_compatible_storage_when_a_bucket_is_configured():
    env = _production_env(AWS_STORAGE_BUCKET_NAME="realio-media", AWS_S3_ENDPOINT_URL="http://minio.internal:9000")
    code = ("import django; django.setup(); from django.core.files.storage import storages; "
            "s = storages['default']; print(type(s).__name__, s.bucket_name, s.endpoint_url)")

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,  # noqa: S603
                            capture_output=True, text=True, timeout=60)

    assert result.stdout.split() == ["S3Storage", "realio-media", "http://minio.internal:9000"], result.stderr
