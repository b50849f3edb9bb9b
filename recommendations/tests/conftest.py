import pytest

from recommendations import serving, store


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    """Each test trains into its own folder and every process-local model is forgotten, so a
    test sees exactly the versions it promoted."""
    settings.RECO_MODEL_DIR = tmp_path / "models"
    settings.RECO_RELOAD_SECONDS = 0
    settings.RECO_LISTING_CACHE_SECONDS = 0  # factories change listings without bumping the cache version
    store.forget()
    serving._fresh_vectors.clear()
    yield
    store.forget()
