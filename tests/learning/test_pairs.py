"""Pairs: the 111 real Amazon before/after pairs come in as scenes, points and verdicts; the
chips of a verdict are cut from the imagery it was based on, as detect --before cuts them;
verdicts without imagery, or too few of either label, are refused by name."""
import json
import sqlite3

import pytest

from review.cli import main
from review.store import connect

from tests.conftest import needs_fixtures
from tests.learning.conftest import PAIRS, copy_db, pair_rows

pytestmark = needs_fixtures


def test_pairs_come_in_as_scenes_points_and_verdicts(pairs_db):
    con = sqlite3.connect(pairs_db)
    assert con.execute("select count(*) from scenes").fetchone()[0] == 222
    statuses = dict(con.execute("select status, count(*) from detections group by status"))
    labels = [r["label"] for r in pair_rows()]
    assert statuses == {"verified": labels.count("1"), "false_positive": labels.count("0")}


def test_too_few_reviewed_is_refused_and_nothing_written(tmp_path, capsys):
    from tests.conftest import add_detections

    path = tmp_path / "few.db"
    db = connect(path)
    ids = add_detections(db, 14)
    for n, detection in enumerate(ids):
        verdict = ["verified"] if n < 12 else ["false_positive", "--reason", "other"]
        assert main(["verdict", str(detection), *verdict, "--reviewer", "x", "--db", str(path)]) == 0
    out = tmp_path / "m.keras"
    assert main(["train", "--db", str(path), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "at least 10 verified and 10 false-positive" in error and "12 verified and 2" in error
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_verdicts_whose_imagery_is_missing_are_named(pairs_db, tmp_path, capsys):
    path = copy_db(pairs_db, tmp_path)
    db = connect(path)
    gone = db.execute("select id from detections where external_id = ?",
                      ["sample_id:" + pair_rows()[0]["sample_id"]]).fetchone()[0]
    scene_ids = [r[0] for r in db.execute(
        "select id from scenes where name like ?",
        [pair_rows()[0]["sample_id"] + "_t%"])]
    db.execute(f"delete from scenes where id in ({','.join('?' * len(scene_ids))})", scene_ids)
    out = tmp_path / "m.keras"
    assert main(["train", "--db", str(path), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"detections {gone} have no before and after imagery" in error
    assert "no stored scene covers it" in error
    assert not out.exists()


def test_detect_before_scores_the_pair_as_training_did(trained, pairs_db, tmp_path, capsys):
    row = next(r for r in pair_rows() if r["label"] == "1")
    out = tmp_path / "raw.geojson"
    code = main(["detect", str(PAIRS / row["t1"]), "--before", str(PAIRS / row["t0"]),
                 "--model", str(trained), "--raw", "--out", str(out), "--quiet"])
    assert code == 0
    features = json.loads(out.read_text())["features"]
    assert len(features) == 1                            # a 48-px pair is one 48-px patch
    from review.detection.models import load_model
    from review.learning.pairs import cut_pair, imagery_of, reviewed

    db = connect(pairs_db)
    detection = db.execute("select id from detections where external_id = ?",
                           ["sample_id:" + row["sample_id"]]).fetchone()[0]

    chosen = next(r for r in reviewed(db) if r["id"] == detection)
    before, after, _ = imagery_of(db, chosen, chosen)
    model = load_model(str(trained))
    chip = cut_pair(before, after, chosen["lon"], chosen["lat"])
    expected = model.scores(model.card.scale(chip[None]))[0]
    assert features[0]["properties"]["score"] == pytest.approx(float(expected), abs=1e-4)


def test_single_image_model_says_it_ignores_before(tiny_model_path, tmp_path, capsys):
    from tests.conftest import mine_tile

    after = mine_tile(tmp_path / "after.tif")
    before = mine_tile(tmp_path / "before.tif", seed=9)
    out = tmp_path / "c.geojson"
    assert main(["detect", str(after), "--before", str(before), "--model", str(tiny_model_path),
                 "--out", str(out), "--quiet"]) == 0
    assert "is not used" in capsys.readouterr().err
