"""Where files live and the limits a user can change: environment variables with defaults."""
from pathlib import Path

from review import settings


def test_files_live_under_the_data_folder_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "d"))
    for name in ("REVIEW_DB", "REVIEW_MODEL_CACHE", "REVIEW_TILE_CACHE"):
        monkeypatch.delenv(name, raising=False)
    assert settings.db_path() == tmp_path / "d" / "review.db"
    assert settings.model_cache_dir() == tmp_path / "d" / "models"
    assert settings.tile_cache_dir() == tmp_path / "d" / "tiles"
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "elsewhere.db"))
    assert settings.db_path() == tmp_path / "elsewhere.db"


def test_limits_and_services_can_be_changed(monkeypatch):
    monkeypatch.delenv("REVIEW_DATA_DIR", raising=False)
    assert settings.data_dir() == Path(settings.REPO_ROOT) / "data"
    monkeypatch.setenv("REVIEW_FETCH_MAX_KM2", "25")
    monkeypatch.setenv("REVIEW_MAX_TILE_PIXELS", "1000")
    monkeypatch.setenv("REVIEW_STAC_COLLECTION", "sentinel-2-l1c")
    assert (settings.fetch_max_km2(), settings.max_tile_pixels(), settings.stac_collection()) == (
        25.0, 1000, "sentinel-2-l1c")
