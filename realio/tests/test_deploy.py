"""The deployment artefacts (deploy/, compose.yaml) agree with the settings: every variable the
settings read is documented in deploy/env.example and provided by the Kubernetes ConfigMap or
Secret example; alert rules, dashboard and process roles are well formed (deploy/check_deploy.py,
also run by scripts/validate-deploy)."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "deploy" / "check_deploy.py"
spec = importlib.util.spec_from_file_location("check_deploy", PATH)
check_deploy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_deploy)


def test_settings_variables_are_found():
    names = check_deploy.settings_env_vars()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "ELASTICSEARCH_URL"} <= names
    assert not any(name.startswith("TEST_") for name in names)


@pytest.mark.parametrize("check", check_deploy.CHECKS, ids=lambda check: check.__name__)
def test_deploy_artefacts(check):
    assert check() == []
