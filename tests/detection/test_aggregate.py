"""Several looks at one place: per-patch scores combined across periods before post-processing."""
import json

import numpy as np
import pytest

from review.cli import main
from review.detection.aggregate import (AggregateError, aggregate_geojson, check_periods, combine,
                                        parse_periods, run_aggregate)
from review.detection.detect import score_tile
from review.detection.imagery import open_tile
from review.detection.models import load_model
from review.store import connect

from tests.conftest import SLOVENIA, mine_tile, needs_fixtures

PERIODS = [("2017-01-01", "2017-01-31"), ("2017-03-01", "2017-03-31"), ("2017-05-01", "2017-05-31"),
           ("2017-07-01", "2017-07-31"), ("2017-09-01", "2017-09-30")]


def _by_position(result):
    t = result.tile.transform
    return {(round(t.c + c * t.a, 3), round(t.f + r * t.e, 3)): s
            for r, c, s in zip(result.rows, result.cols, result.scores)}


@needs_fixtures
def test_the_combined_score_is_the_median_of_the_five_real_looks(real_model_cache):
    model = load_model("48px_v4.21")
    tiles = [open_tile(path, period=period) for path, period in zip(SLOVENIA, PERIODS)]
    single = [_by_position(score_tile(tile, model)) for tile in tiles]
    result = run_aggregate(tiles, model, how="median")
    combined = _by_position(result.scores)
    assert set(combined) == set(single[0]) and len(combined) == len(result.scores) > 0
    for position, score in combined.items():
        assert score == pytest.approx(np.median([looks[position] for looks in single]), abs=1e-6)
    assert result.per_period.shape == (len(combined), 5)
    assert (result.t_main, result.t_iso) == (0.55, 0.8)          # cumulative thresholds
    maxima = run_aggregate(tiles, model, how="max").scores.scores
    assert (maxima >= result.scores.scores - 1e-7).all()


def test_a_one_off_detection_is_dropped_and_a_lasting_one_kept(tmp_path, tiny_model):
    """A bright square in one look of three is a passing thing; in all three, a mine."""
    looks = []
    for n, (start, end) in enumerate(PERIODS[:3]):
        lasting = mine_tile(tmp_path / f"a{n}.tif", size=96, block=(16, 48), seed=n,
                            tags={"PERIOD_START": start, "PERIOD_END": end})
        looks.append(open_tile(lasting))
    once = open_tile(mine_tile(tmp_path / "once.tif", size=96, block=(48, 80), seed=9,
                               tags={"PERIOD_START": PERIODS[3][0], "PERIOD_END": PERIODS[3][1]}))
    # Three looks share the lasting square; the fourth shows a square elsewhere, once.
    result = run_aggregate(looks + [once], tiny_model, how="median", t_main=0.5, t_iso=0.5)
    assert len(result.candidates) == 1
    west, south, east, north = result.candidates[0].geometry.bounds
    t = looks[0].transform
    assert west >= t.c + 16 * 10 - 80 and east <= t.c + 48 * 10 + 80   # where the lasting one is
    (scores,) = result.candidate_period_scores()
    assert list(scores) == [f"{a}/{b}" for a, b in PERIODS[:4]]
    lasting, passing = list(scores.values())[:3], scores[f"{PERIODS[3][0]}/{PERIODS[3][1]}"]
    assert min(lasting) > passing + 0.3          # the looks that agreed are plain to see


def test_the_combined_geojson_carries_how_and_each_periods_score(tmp_path, tiny_model):
    looks = [open_tile(mine_tile(tmp_path / f"a{n}.tif", size=96, seed=n), period=PERIODS[n])
             for n in range(2)]
    result = run_aggregate(looks, tiny_model, how="max", t_main=0.5, t_iso=0.5)
    collection = aggregate_geojson(result)
    (feature,) = collection["features"]
    assert feature["properties"]["aggregate"] == "max"
    assert feature["properties"]["period_scores"] == result.candidate_period_scores()[0]
    assert list(feature["properties"]["period_scores"]) == [f"{a}/{b}" for a, b in PERIODS[:2]]
    patches = aggregate_geojson(result, raw=True)["features"]
    assert len(patches) == len(result.scores)
    assert "aggregate" not in patches[0]["properties"] and "score" in patches[0]["properties"]


@pytest.mark.parametrize("text, message", [
    ("2017-01-01/2017-06-30,2017-06-01/2017-12-31", "overlap"),
    ("2017-01-01/2017-12-31", "at least two periods"),
    ("2017-01-01/2017-12-31,last year", "is not a period START/END"),
    ("2017-12-31/2017-01-01,2018-01-01/2018-12-31", "is not a period START/END"),
])
def test_bad_periods_are_refused_with_one_sentence(text, message):
    with pytest.raises(AggregateError, match=message):
        parse_periods(text)


def test_tiles_without_periods_or_off_the_grid_are_refused(tmp_path, tiny_model):
    with pytest.raises(AggregateError, match="needs its period"):
        check_periods([("2017-01-01", "2017-01-31"), (None, None)])
    a = open_tile(mine_tile(tmp_path / "a.tif", size=64), period=PERIODS[0])
    b = open_tile(mine_tile(tmp_path / "b.tif", size=64, pixel=20.0), period=PERIODS[1])
    with pytest.raises(AggregateError, match="is not on the grid"):
        combine([score_tile(a, tiny_model), score_tile(b, tiny_model)], PERIODS[:2])


def test_cli_combines_tiles_and_stores_each_look_and_the_per_period_scores(tmp_path, tiny_model_path, capsys):
    paths = [mine_tile(tmp_path / f"t{n}.tif", size=96, seed=n) for n in range(3)]
    db_path, out = tmp_path / "review.db", tmp_path / "combined.geojson"
    periods = ",".join(f"{a}/{b}" for a, b in PERIODS[:3])
    assert main(["detect", *map(str, paths), "--model", str(tiny_model_path), "--periods", periods,
                 "--aggregate", "mean", "--t-main", "0.5", "--t-iso", "0.5", "--out", str(out),
                 "--db", str(db_path), "--quiet"]) == 0
    assert "combined by mean" in capsys.readouterr().out
    (feature,) = json.loads(out.read_text())["features"]
    assert feature["properties"]["aggregate"] == "mean"
    assert set(feature["properties"]["period_scores"]) == {f"{a}/{b}" for a, b in PERIODS[:3]}
    db = connect(db_path)
    assert db["scenes"].count == 3                      # every look can be shown in Review
    (detection,) = list(db["detections"].rows)
    assert (detection["period_start"], detection["period_end"]) == (PERIODS[0][0], PERIODS[2][1])
    assert json.loads(detection["properties"])["period_scores"] == feature["properties"]["period_scores"]
    assert main(["detect", str(paths[0]), str(paths[1]), "--model", str(tiny_model_path),
                 "--periods", periods, "--out", str(tmp_path / "x.geojson")]) == 2
    assert "one period per tile" in capsys.readouterr().err
    assert not (tmp_path / "x.geojson").exists()
