"""`manage.py check --deploy` is clean with the production settings, and key rotation
(SECRET_KEY_FALLBACKS) keeps old signatures valid.

The only silenced check is gis.W001 (realio/settings/base.py: Debian 12's GDAL 3.6 is older than
Django recommends); anything else, warning or error, fails here.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import signing

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra):
    """The variables production.py requires, with values no local default could supply."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "realio.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "realio.example",
        # Never connected to: `check` without --database touches no database.
        "DATABASE_URL": "postgis://realio:secret@db.realio.example:5432/realio",
        "REDIS_URL": "redis://redis.realio.example:6379",
    }
    return env | extra


def manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,  # noqa: S603
                          text=True, timeout=120, check=False)


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env=production_env(SECRET_KEY_FALLBACKS=secrets.token_urlsafe(50)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout


def test_check_deploy_would_catch_an_insecure_setting():
    """The test above can fail: the same run with HSTS off reports security.W004."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(SECURE_HSTS_SECONDS="0"))

    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.parametrize("fallbacks", ["short-key", f"{secrets.token_urlsafe(50)},insecure-{'x' * 50}"])
def test_production_refuses_weak_fallback_keys(fallbacks):
    result = manage("check", env=production_env(SECRET_KEY_FALLBACKS=fallbacks))

    assert result.returncode != 0
    assert "SECRET_KEY_FALLBACKS" in result.stderr


def test_a_value_signed_with_the_previous_key_still_verifies(settings):
    old_key, new_key = secrets.token_urlsafe(50), secrets.token_urlsafe(50)
    settings.SECRET_KEY = old_key
    token = signing.dumps({"user": 1}, salt="realio.test")

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = new_key, [old_key]
    assert signing.loads(token, salt="realio.test") == {"user": 1}

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt="realio.test")
