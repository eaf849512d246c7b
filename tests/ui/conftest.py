"""What the page tests share: a database path set for the app, with the online basemap
pointed at a closed local port (tests reach nothing beyond 127.0.0.1). Modules that need
another database setup define their own `db_path`."""
import pytest


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    monkeypatch.setenv("REVIEW_BASEMAP_URL", "http://127.0.0.1:9/{z}/{x}/{y}.png")
    return path
