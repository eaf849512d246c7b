"""Every message the issue listed reads as plain sentences for people: what went wrong and
what to do next, with no errno text, traceback, HTTP library text or command-line flag."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from review.detection import fetch, models, preflight, uploads
from review.detection.importers import import_example, import_file
from review.detection.models import CARDS, ModelUnavailable
from review.errors import ReviewError, sentence

from tests.conftest import MODELS, REPO, assert_plain, needs_fixtures, write_tile

CLOSED = "http://127.0.0.1:9/"          # nothing listens: as offline


def test_offline_example_download_says_what_could_not_be_reached_and_what_still_works(db, tmp_path):
    with pytest.raises(ReviewError) as caught:
        import_example(db, CLOSED + "amazon_1.geojson", tmp_path / "examples")
    message = sentence(str(caught.value))
    assert message.startswith("Could not reach 127.0.0.1 to download amazon_1.geojson")
    assert "you can still import a file from this computer" in message
    assert_plain(message)
    assert caught.value.details                      # the underlying error, for the expander


def test_offline_model_download_offers_the_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", CLOSED)
    card = CARDS[models.DEFAULT_MODEL]
    with pytest.raises(ModelUnavailable) as caught:
        models.download(card, tmp_path / "cache" / card.filename, progress=lambda *a: None)
    message = sentence(str(caught.value))
    assert message.startswith("Could not reach 127.0.0.1")
    assert f"If you have {card.filename} on this computer, use that file instead" in message
    assert "'A file on this machine'" in message
    assert_plain(message)


def test_an_unreachable_catalogue_is_a_plain_sentence_with_what_works_offline():
    source = fetch.Source(url="http://127.0.0.1:9/v1")
    request = fetch.Request(bbox=(-56.3, -6.8, -56.2, -6.7), start="2023-01-01", end="2023-12-31")
    with pytest.raises(fetch.FetchError) as caught:
        fetch.search(source, request)
    message = sentence(str(caught.value))
    assert message.startswith("Could not reach the Sentinel-2 catalogue at http://127.0.0.1:9/v1")
    assert "Tiles already stored on this machine, uploads and reviewing still work" in message
    assert_plain(message)
    assert "HTTPConnectionPool" in caught.value.details or "Connection" in caught.value.details


def test_a_typed_area_that_is_not_four_numbers_names_no_flag():
    with pytest.raises(fetch.FetchError) as caught:
        fetch.parse_bbox("nonsense")
    assert_plain(sentence(str(caught.value)))


def test_an_import_of_an_empty_json_object_is_one_whole_sentence(db, tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text("{}")
    with pytest.raises(ReviewError) as caught:
        import_file(db, path)
    message = sentence(str(caught.value))
    assert message == ("empty.geojson is not a file of detections this tool can read: import "
                       "GeoJSON, GeoPackage, a zipped shapefile or a lat/lon CSV.")
    assert_plain(message)


@needs_fixtures
def test_the_detect_page_uses_a_recognised_files_card_thresholds(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    path = next(MODELS.glob("48px_v3.2_*.h5"))
    card = preflight.published_card(path)
    at = AppTest.from_file(str(REPO / "app_pages" / "1_Detect.py"), default_timeout=60).run()
    at.selectbox(key="model_choice").select("A file on this machine").run()
    at.text_input(key="model_path").input(str(path)).run()
    assert not at.exception
    assert any(f"published model {card.id}" in c.value for c in at.caption)
    assert at.number_input(key=f"t_main_{card.id}").value == card.t_main
    assert at.number_input(key=f"t_iso_{card.id}").value == card.t_iso


def test_the_detect_page_offers_the_local_file_when_the_model_cannot_be_downloaded(
        tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", CLOSED)
    tile = tmp_path / "tile.tif"
    card = CARDS[models.DEFAULT_MODEL]
    write_tile(tile, np.full((len(card.bands), 96, 96), 1000, np.uint16), names=list(card.bands))
    at = AppTest.from_file(str(REPO / "app_pages" / "1_Detect.py"), default_timeout=60).run()
    at.text_input(key="tile_path").input(str(tile))
    at.button[0].click().run()
    assert not at.exception
    message = at.error[0].value
    assert message.startswith("Could not reach 127.0.0.1")
    assert_plain(message)
    assert [e for e in at.expander if e.label == "Details"]
    at.button(key="use_local_model").click().run()
    assert at.selectbox(key="model_choice").value == "A file on this machine"
    assert not list((tmp_path / "data").glob("scenes/*"))       # nothing uploaded, nothing kept


def test_a_refused_upload_is_not_kept(db, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    path = uploads.save_import(b"{}", "bad.geojson")
    assert path.exists()
    assert uploads.discard(db, path)
    assert not path.exists() and not path.parent.exists()
    scene = uploads.save_scene(b"not a tiff", "tile.tif")
    assert uploads.discard(db, scene) and not scene.exists()
    assert not uploads.discard(db, tmp_path / "elsewhere.tif")      # only what it kept
