"""Every message the issue listed reads as plain sentences for people: what went wrong and
what to do next, with no errno text, traceback, HTTP library text or command-line flag."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from review.detection import fetch, models, preflight, uploads
from review.errors import ReviewError, sentence
from review.detection.imagery import open_tile
from review.detection.importers import import_example, import_file
from review.detection.models import CARDS, ModelUnavailable

from tests.conftest import MODELS, REPO, needs_fixtures, write_tile

FORBIDDEN = ("Errno", "Traceback", "HTTPSConnectionPool", "--")
CLOSED = "http://127.0.0.1:9/"          # nothing listens: as offline


def assert_plain(message: str) -> None:
    for word in FORBIDDEN:
        assert word not in message, message
    assert message[0].isupper() and message.endswith("."), message


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
    assert message == ("Empty.geojson is not a file of detections this tool can read: import "
                       "GeoJSON, GeoPackage, a zipped shapefile or a lat/lon CSV.")
    assert_plain(message)


def _unnamed_tile(path, size):
    data = np.full((4, size, size), 1000, dtype=np.uint16)
    return write_tile(path, data, names=None)


def test_a_tile_without_band_names_points_to_the_band_box(tmp_path, tiny_model):
    tile = open_tile(_unnamed_tile(tmp_path / "unnamed.tif", 64))
    message = preflight.unnamed_bands(tile, tiny_model.card, None)
    assert "Type the band names in file order in the box 'Band names in file order'" in message
    assert_plain(sentence(message))
    assert preflight.unnamed_bands(tile, tiny_model.card, "B2,B3,B4,B8") is None


@needs_fixtures
def test_a_tile_smaller_than_a_patch_says_why_nothing_can_be_scored(tmp_path):
    card = CARDS["48px_v3.2"] if "48px_v3.2" in CARDS else next(c for c in CARDS.values() if c.patch_size == 48)
    tile = open_tile(write_tile(tmp_path / "small.tif", np.full((len(card.bands), 40, 40), 1000, np.uint16),
                                names=list(card.bands), origin=(500005.0, 5000005.0)))
    message = preflight.too_small(tile, card)
    assert message.startswith("small.tif is 40 × 40 pixels, so no 48-pixel patch")
    one_patch = open_tile(write_tile(tmp_path / "chip.tif", np.full((len(card.bands), 48, 48), 1000, np.uint16),
                                     names=list(card.bands), origin=(500005.0, 5000005.0)))
    assert preflight.too_small(one_patch, card) is None          # a 48-px chip is one patch
    assert "Use a larger tile or fetch a larger area." in message
    assert_plain(sentence(message))


@needs_fixtures
def test_a_local_copy_of_a_published_model_is_recognised_by_its_checksum():
    path = next(MODELS.glob("48px_v3.2_*.h5"))
    card = preflight.published_card(path)
    assert card is not None and card.filename == path.name
    assert preflight.published_card(path.with_name("missing.h5")) is None


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
