"""Every page, driven through Streamlit's AppTest (no browser)."""
import pytest
from streamlit.testing.v1 import AppTest

from review.store import connect

from .conftest import REPO, mine_tile

TIMEOUT = 120


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    return path


def test_home_page_on_an_empty_database_says_what_to_do(db_path):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["0", "0", "0", "0"]
    assert "database is empty" in at.info[0].value
    assert any("detector device: CPU" in c.value or "detector device: GPU" in c.value
               for c in at.caption)


def test_detect_page_runs_an_uploaded_tile_and_stores_candidates(db_path, tmp_path, tiny_model_path):
    tile = mine_tile(tmp_path / "upload.tif")
    at = AppTest.from_file(str(REPO / "pages" / "1_Detect.py"), default_timeout=TIMEOUT).run()
    at.file_uploader[0].upload("upload.tif", tile.read_bytes(), "image/tiff")
    at.selectbox[0].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "1 candidates" in at.success[0].value
    db = connect(db_path)
    assert db["runs"].count == 1 and db["detections"].count == 1
    (scene,) = list(db["scenes"].rows)
    assert scene["name"].endswith("upload.tif")
    assert (tmp_path / "data" / "scenes").is_dir()     # kept for the review page
    # The home page now counts them.
    home = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert [m.value for m in home.metric][:3] == ["1", "1", "1"]


def test_detect_page_shows_bad_input_as_a_message(db_path, tmp_path, tiny_model_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    at = AppTest.from_file(str(REPO / "pages" / "1_Detect.py"), default_timeout=TIMEOUT).run()
    at.text_input(key="tile_path").input(str(bad))
    at.selectbox[0].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception
    assert "not a raster" in at.error[0].value
    assert connect(db_path)["runs"].count == 0


def test_detect_page_asks_for_a_tile(db_path):
    at = AppTest.from_file(str(REPO / "pages" / "1_Detect.py"), default_timeout=TIMEOUT).run()
    at.button[0].click().run()
    assert "Upload a GeoTIFF" in at.error[0].value
