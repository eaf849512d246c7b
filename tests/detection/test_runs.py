"""One detection run end to end: scores, candidates, the rows stored for review."""
import json

import pytest
import shapely

from review.errors import BandError
from review.detection.imagery import open_tile
from review.detection.runs import detection_rows, product_mismatch, run_detection, store_result
from review.store import connect

from tests.conftest import TINY_BANDS, mine_tile, random_reflectance, write_tile

PERIOD = {"PERIOD_START": "2024-01-01", "PERIOD_END": "2024-12-31"}


@pytest.fixture
def result(tmp_path, tiny_model):
    return run_detection(open_tile(mine_tile(tmp_path / "tile.tif", tags=PERIOD)), tiny_model)


def test_a_run_finds_the_bright_square_with_the_cards_thresholds(result):
    assert len(result.scores) == 49 and (result.t_main, result.t_iso) == (0.5, 0.8)
    (found,) = result.candidates
    assert found.patches == 25 and found.area_ha == pytest.approx(23.04, rel=1e-3)
    assert result.started_at <= result.finished_at
    said = result.summary()
    assert "49 patches of tile.tif scored by tiny" in said and "1 candidates, 23.0 ha" in said


def test_thresholds_given_to_a_run_replace_the_cards(tmp_path, tiny_model):
    tile = open_tile(mine_tile(tmp_path / "tile.tif"))
    strict = run_detection(tile, tiny_model, t_main=0.9999, t_iso=0.9999)
    assert (strict.t_main, strict.t_iso) == (0.9999, 0.9999)
    (core,) = strict.candidates                      # only the patches well inside the square
    assert core.patches == 9 and core.area_ha == pytest.approx(10.24, rel=1e-3)
    assert run_detection(tile, tiny_model, t_main=1.0, t_iso=1.0).candidates == []


def test_a_tile_without_the_models_bands_is_refused_before_scoring(tmp_path, tiny_model):
    rgb = write_tile(tmp_path / "rgb.tif", random_reflectance(3, 32, 32), ["B4", "B3", "B2"])
    with pytest.raises(BandError, match="needs bands B8"):
        run_detection(open_tile(rgb), tiny_model)


def test_stored_run_carries_scene_run_and_reviewable_candidates(tmp_path, result):
    db = connect(tmp_path / "review.db")
    run_id = store_result(db, result)
    (scene,) = list(db["scenes"].rows)
    assert scene["name"] == "tile.tif" and scene["period_start"] == "2024-01-01"
    assert scene["bands"] == ",".join(TINY_BANDS)
    run = db["runs"].get(run_id)
    assert (run["model_id"], run["patches"], run["candidates"]) == ("tiny", 49, 1)
    assert run["model_sha256"] == result.scores.model_sha256 and run["notes"] is None
    (row,) = list(db["detections"].rows)
    assert row["source"] == "run:tiny" and row["status"] == "pending" and row["threshold"] == 0.5
    assert row["period_end"] == "2024-12-31" and row["area_source"] == "footprint"
    footprint = shapely.geometry.shape(json.loads(row["geometry"]))
    assert footprint.contains(shapely.Point(row["lon"], row["lat"]))
    assert footprint.bounds == pytest.approx((row["west"], row["south"], row["east"], row["north"]))
    assert json.loads(row["properties"]) == {"score_max": pytest.approx(result.candidates[0].score_max),
                                             "patches": 25, "tile": "tile.tif", "t_iso": 0.8}


def test_the_same_tile_stored_twice_is_two_runs_on_one_scene(tmp_path, result):
    db = connect(tmp_path / "review.db")
    first, second = store_result(db, result), store_result(db, result)
    assert first != second and db["scenes"].count == 1 and db["detections"].count == 2


def test_detection_rows_are_lon_lat_rfc7946_with_the_given_source(result):
    crs = result.scores.tile.crs
    (row,) = detection_rows(result.candidates, crs, source="region:7", model_id="tiny", t_main=0.5,
                            period=("2024-01-01", "2024-12-31"), properties={"region_run": 7},
                            content_ids=True)
    geometry = json.loads(row["geometry"])
    ring = geometry["coordinates"][0]
    assert geometry["type"] == "Polygon" and shapely.Polygon(ring).exterior.is_ccw
    assert all(14 < lon < 16 and 44 < lat < 46 for lon, lat in ring)     # UTM 33N near 45°N
    assert all(len(repr(v).split(".")[-1]) <= 7 for point in ring for v in point)
    assert row["source"] == "region:7" and row["properties"]["region_run"] == 7
    # A footprint's id is its content: the same candidate gets the same id every time.
    (again,) = detection_rows(result.candidates, crs, source="region:7", model_id="tiny", t_main=0.5,
                              period=(None, None), content_ids=True)
    assert again["external_id"] == row["external_id"] and row["external_id"].startswith("sha1:")
    (plain,) = detection_rows(result.candidates, crs, source="x", model_id="tiny", t_main=0.5,
                              period=(None, None))
    assert "external_id" not in plain                    # the store numbers them per run


@pytest.mark.parametrize("product, expected", [
    ("S2 L2A median composite", "trained on Sentinel-2 L1C imagery; this tile is L2A"),
    ("S2 L1C median composite", None),
    (None, None),
])
def test_a_model_meeting_another_products_imagery_is_flagged(tmp_path, tiny_model, product, expected):
    tags = {"PRODUCT": product} if product else {}
    tile = open_tile(mine_tile(tmp_path / "tile.tif", tags=tags))
    warning = product_mismatch(tile, tiny_model.card)
    if expected is None:
        assert warning is None
    else:
        assert expected in warning and "scores may be off" in warning


def test_a_flagged_run_keeps_the_warning_in_its_notes(tmp_path, tiny_model):
    tile = open_tile(mine_tile(tmp_path / "tile.tif", tags={"PRODUCT": "S2 L2A median composite"}))
    db = connect(tmp_path / "review.db")
    run_id = store_result(db, run_detection(tile, tiny_model))
    assert "this tile is L2A" in db["runs"].get(run_id)["notes"]
