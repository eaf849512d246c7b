"""One detection run end to end: scores, candidates, the rows stored for review."""
import json

import pytest
import shapely

from review.detection.imagery import open_tile
from review.detection.runs import (check_inputs, detection_rows, output_files, product_mismatch,
                                   run_detection, save_run, store_result)
from review.errors import BandError, ImageryError
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


def test_inputs_that_cannot_run_are_refused_bands_first(tmp_path, tiny_model):
    card = tiny_model.card
    check_inputs(open_tile(mine_tile(tmp_path / "tile.tif")), card)        # fits: nothing said
    rgb = write_tile(tmp_path / "rgb.tif", random_reflectance(3, 12, 12), ["B4", "B3", "B2"])
    with pytest.raises(BandError, match="needs bands B8"):                  # before the size
        check_inputs(open_tile(rgb), card)
    chip = write_tile(tmp_path / "chip.tif", random_reflectance(4, 12, 40), TINY_BANDS)
    with pytest.raises(ImageryError, match="no 16-pixel patch") as raised:
        check_inputs(open_tile(chip), card)
    assert not isinstance(raised.value, BandError)


def test_output_files_are_the_candidates_or_every_patch(tmp_path, result):
    out, raw = tmp_path / "out.geojson", tmp_path / "raw.geojson"
    ((candidates, path),) = output_files(result, out)
    assert path == out and len(candidates["features"]) == 1
    ((patches, path),) = output_files(result, out, raw=True)
    assert path == out and len(patches["features"]) == 49
    ((patches, path),) = output_files(result, out, raw=str(tmp_path / "." / "out.geojson"))
    assert path == out and len(patches["features"]) == 49           # raw named --out: once
    both = output_files(result, out, raw=raw)
    assert [p for _, p in both] == [out, raw]
    assert [len(c["features"]) for c, _ in both] == [1, 49]


def test_a_run_is_saved_whole_or_not_at_all(tmp_path, result):
    db = connect(tmp_path / "review.db")
    out, raw = tmp_path / "out.geojson", tmp_path / "raw.geojson"
    out.write_text("earlier candidates")
    outputs = output_files(result, out, raw=raw)

    def failing_store():
        assert len([p for p in tmp_path.iterdir() if ".part" in p.name]) == 2    # both staged
        assert out.read_text() == "earlier candidates" and not raw.exists()
        raise ImageryError("the database write failed")

    with pytest.raises(ImageryError):
        save_run(outputs, store=failing_store)
    assert out.read_text() == "earlier candidates" and not raw.exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]        # nothing staged is left
    assert db["runs"].count == 0
    run_id = save_run(outputs, store=lambda: store_result(db, result))
    assert db["runs"].get(run_id)["candidates"] == 1
    assert json.loads(out.read_text()) == outputs[0][0] and json.loads(raw.read_text()) == outputs[1][0]
    assert save_run([(outputs[0][0], tmp_path / "again.geojson")]) is None
    assert json.loads((tmp_path / "again.geojson").read_text()) == outputs[0][0]
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
