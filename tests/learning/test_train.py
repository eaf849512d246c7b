"""Learning from verdicts on the 111 real Amazon before/after pairs, brought in through the
product's own commands (scenes add, import, verdict), then train, detect --before,
evaluate and rescore. The full train + cross-validation is bench/train.py; here a small
model is trained for a few epochs and its behaviour checked."""
import csv
import json
import shutil
import sqlite3

import numpy as np
import pytest

from review.cli import main
from review.store import connect
from tests.conftest import FIXTURES, MODELS, needs_fixtures

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
pytestmark = needs_fixtures


def _rows():
    return list(csv.DictReader(open(PAIRS / "pairs.csv")))


@pytest.fixture(scope="module")
def pairs_db(tmp_path_factory):
    """A review database holding the 111 pairs: 222 scenes, 111 points, 111 verdicts."""
    from bench.train import load_pairs

    folder = tmp_path_factory.mktemp("pairs")
    path = folder / "review.db"
    load_pairs(folder, str(path))
    return path


@pytest.fixture(scope="module")
def trained(pairs_db, tmp_path_factory):
    """A small features model trained for a few steps through the CLI, with the published
    detector's view from the fixture models; the model the validation figures describe
    (--no-refit), so evaluate has detections it never saw."""
    out = tmp_path_factory.mktemp("model") / "change.keras"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REVIEW_MODEL_CACHE", str(MODELS))
        code = main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                     "--epochs", "100", "--seed", "3", "--no-refit", "--quiet"])
    assert code == 0
    return out


def _copy_db(pairs_db, tmp_path):
    """A consistent copy (the live database is in WAL mode: copying the file is not enough)."""
    from review.store import backup

    return backup(connect(pairs_db), tmp_path / "copy.db")


def test_pairs_come_in_as_scenes_points_and_verdicts(pairs_db):
    con = sqlite3.connect(pairs_db)
    assert con.execute("select count(*) from scenes").fetchone()[0] == 222
    statuses = dict(con.execute("select status, count(*) from detections group by status"))
    labels = [r["label"] for r in _rows()]
    assert statuses == {"verified": labels.count("1"), "false_positive": labels.count("0")}


def test_train_writes_a_pair_model_with_its_card(trained, capsys):
    card = json.loads(trained.with_suffix(".json").read_text())
    assert card["input"] == "pair"
    assert card["bands"] == ["B2", "B3", "B4", "B8", "B11", "B12"]
    assert card["patch_size"] == 48 and card["scaling"] == "reflectance"
    assert card["threshold_precision"] == 0.9 and 0 < card["t_main"] < 1
    assert card["training_set"]["size"] == 111
    assert len(card["training_set"]["sha256"]) == 64
    assert card["training_set"]["train"] + card["training_set"]["validation"] == 111
    auc, low, high = card["validation"]["roc_auc"]
    assert low <= auc <= high
    assert card["date"] and card["kind"] == "features" and card["centres"] == [16]
    # The published detector's view of the after image is part of it, and the card says how
    # the bands the pairs lack were made.
    assert card["parent"] == "48px_v3.2" and card["detector"]["model"] == "48px_v3.2"
    assert card["detector"]["bands_made"]["B5"] == "0.75 x B4 + 0.25 x B8"
    assert card["detector_unused"] is None
    from review.detection.models import sha256_of

    assert card["sha256"] == sha256_of(trained)


def test_same_seed_same_model(pairs_db, trained, tmp_path, real_model_cache):
    from review.detection.models import load_model

    again = tmp_path / "again.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(again), "--kinds", "features",
                 "--epochs", "100", "--seed", "3", "--no-refit", "--quiet"]) == 0
    first, second = load_model(str(trained)), load_model(str(again))
    for a, b in zip(first.keras_model.get_weights(), second.keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    card1 = json.loads(trained.with_suffix(".json").read_text())
    card2 = json.loads(again.with_suffix(".json").read_text())
    assert card1["validation"] == card2["validation"]
    assert card1["training_set"]["sha256"] == card2["training_set"]["sha256"]


def test_split_keeps_sites_within_3_km_together(pairs_db):
    from review.learning.train import site_groups, split_by_site, training_set

    ts = training_set(connect(pairs_db))
    groups = site_groups(ts.lon, ts.lat)
    assert len(np.unique(groups)) < len(ts)          # some pairs are neighbours
    validation = split_by_site(ts.labels, groups, 0.25, seed=1)
    for group in np.unique(groups):
        assert len(set(validation[groups == group])) == 1
    assert 0.15 < validation.mean() < 0.4
    assert set(ts.labels[validation]) == {0, 1}


def test_detect_before_scores_the_pair_as_training_did(trained, pairs_db, tmp_path, capsys):
    row = next(r for r in _rows() if r["label"] == "1")
    out = tmp_path / "raw.geojson"
    code = main(["detect", str(PAIRS / row["t1"]), "--before", str(PAIRS / row["t0"]),
                 "--model", str(trained), "--raw", "--out", str(out), "--quiet"])
    assert code == 0
    features = json.loads(out.read_text())["features"]
    assert len(features) == 1                            # a 48-px pair is one 48-px patch
    from review.detection.models import load_model
    from review.learning.train import cut_pair, imagery_of, reviewed

    db = connect(pairs_db)
    detection = db.execute("select id from detections where external_id = ?",
                           ["sample_id:" + row["sample_id"]]).fetchone()[0]

    chosen = next(r for r in reviewed(db) if r["id"] == detection)
    before, after, _ = imagery_of(db, chosen, chosen)
    model = load_model(str(trained))
    chip = cut_pair(before, after, chosen["lon"], chosen["lat"])
    expected = model.scores(model.card.scale(chip[None]))[0]
    assert features[0]["properties"]["score"] == pytest.approx(float(expected), abs=1e-4)


def test_pair_model_given_one_tile_is_refused(trained, tmp_path, capsys):
    row = _rows()[0]
    out = tmp_path / "raw.geojson"
    code = main(["detect", str(PAIRS / row["t1"]), "--model", str(trained), "--raw",
                 "--out", str(out), "--quiet"])
    assert code == 2 and not out.exists()
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "earlier tile" in error and len(error.splitlines()) == 1


def test_single_image_model_says_it_ignores_before(tiny_model_path, tmp_path, capsys):
    from tests.conftest import mine_tile

    after = mine_tile(tmp_path / "after.tif")
    before = mine_tile(tmp_path / "before.tif", seed=9)
    out = tmp_path / "c.geojson"
    assert main(["detect", str(after), "--before", str(before), "--model", str(tiny_model_path),
                 "--out", str(out), "--quiet"]) == 0
    assert "is not used" in capsys.readouterr().err


def test_evaluate_prints_auc_precision_recall_with_intervals(trained, pairs_db, capsys):
    assert main(["evaluate", "--model", str(trained), "--db", str(pairs_db), "--format", "json",
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    card = json.loads(trained.with_suffix(".json").read_text())
    assert result["left_out_trained"] == card["training_set"]["train"]
    assert result["detections"] == card["training_set"]["validation"]
    for name in ("roc_auc", "precision", "recall"):
        value, low, high = result[name]
        assert low <= value <= high
    assert result["roc_auc"][0] > 0.6


def test_cross_validated_auc_on_the_real_pairs(pairs_db):
    from review.learning.train import cross_validate, training_set

    ts = training_set(connect(pairs_db))
    result = cross_validate(ts, folds=3, seed=1, kinds=("features",), epochs=100)
    auc, low, high = result["roc_auc"]
    print(f"cross-validated ROC AUC (3 folds, 100 steps): {auc:.3f} ({low:.3f} to {high:.3f})")
    assert low <= auc <= high
    assert auc > 0.7


def test_rescore_stores_scores_beside_the_source_and_orders_the_queue(trained, pairs_db, tmp_path, capsys):
    from review.judging.queue import listing

    path = _copy_db(pairs_db, tmp_path)
    db = connect(path)
    ids = [r[0] for r in db.execute("select id from detections order by id limit 12")]
    for detection in ids:
        assert main(["verdict", str(detection), "undo", "--reviewer", "labels", "--db", str(path)]) == 0
    scores_before = dict(db.execute("select id, score from detections"))
    capsys.readouterr()
    assert main(["rescore", "--model", str(trained), "--db", str(path), "--quiet"]) == 0
    assert "12 of 12 pending detections scored" in capsys.readouterr().out
    assert dict(db.execute("select id, score from detections")) == scores_before
    stored = dict(db.execute("select detection_id, score from model_scores"))
    assert set(stored) == set(ids)
    threshold = json.loads(trained.with_suffix(".json").read_text())["t_main"]
    order = [r["id"] for r in listing(db, order="uncertain", limit=20)]
    distances = [abs(stored[i] - threshold) for i in order]
    assert distances == sorted(distances)


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
    path = _copy_db(pairs_db, tmp_path)
    db = connect(path)
    gone = db.execute("select id from detections where external_id = ?",
                      ["sample_id:" + _rows()[0]["sample_id"]]).fetchone()[0]
    scene_ids = [r[0] for r in db.execute(
        "select id from scenes where name like ?",
        [_rows()[0]["sample_id"] + "_t%"])]
    db.execute(f"delete from scenes where id in ({','.join('?' * len(scene_ids))})", scene_ids)
    out = tmp_path / "m.keras"
    assert main(["train", "--db", str(path), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"detections {gone} have no before and after imagery" in error
    assert "no stored scene covers it" in error
    assert not out.exists()


def test_card_bands_the_tile_lacks_are_refused(trained, tmp_path, capsys):
    from tests.conftest import mine_tile

    after, before = mine_tile(tmp_path / "a.tif", size=48), mine_tile(tmp_path / "b.tif", size=48)
    assert main(["detect", str(after), "--before", str(before), "--model", str(trained),
                 "--out", str(tmp_path / "o.geojson"), "--quiet"]) == 2
    assert "needs bands B11, B12 which the tile lacks" in capsys.readouterr().err


def test_model_without_card_is_refused(trained, tmp_path, capsys):
    bare = tmp_path / "bare.keras"
    shutil.copy(trained, bare)
    row = _rows()[0]
    assert main(["detect", str(PAIRS / row["t1"]), "--before", str(PAIRS / row["t0"]),
                 "--model", str(bare), "--out", str(tmp_path / "o.geojson"), "--quiet"]) == 2
    assert "has no model card" in capsys.readouterr().err


def test_models_lists_trained_cards_in_the_models_folder(trained, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(trained, folder / "change.keras")
    shutil.copy(trained.with_suffix(".json"), folder / "change.json")
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(folder))
    assert main(["models", "--json"]) == 0
    cards = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mine = [c for c in cards if c["id"] == "change"]
    assert mine and mine[0]["input"] == "pair" and mine[0]["training_set"]["size"] == 111


def test_any_batch_size_scores_the_same(trained, pairs_db):
    from review.detection.models import load_model
    from review.learning.train import training_set

    ts = training_set(connect(pairs_db))
    model = load_model(str(trained))
    x = model.card.scale(ts.pairs[:7])
    whole = model.scores(x)
    parts = np.concatenate([model.scores(x[:3]), model.scores(x[3:5]), model.scores(x[5:])])
    np.testing.assert_allclose(whole, parts, atol=1e-5)


def test_a_kind_replaces_the_first_only_when_clearly_better_on_validation():
    from review.learning.train import clearly_better, roc_auc

    rng = np.random.default_rng(0)
    y = np.array([0] * 15 + [1] * 15)
    first = rng.random(30) + 0.4 * y
    about_the_same = first + rng.normal(0, 0.05, 30)
    much_better = y + 0.5 * rng.random(30)
    assert roc_auc(y, first) < roc_auc(y, much_better) == 1.0
    assert not clearly_better(y, about_the_same, first, seed=1)
    assert clearly_better(y, much_better, first, seed=1)
    assert not clearly_better(y, first, much_better, seed=1)


def test_by_default_the_kept_kind_is_trained_again_on_every_detection(pairs_db, trained, tmp_path,
                                                                     capsys, real_model_cache):
    from review.detection.models import load_model
    from review.learning.train import predict, scaled, training_set

    out = tmp_path / "all.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                 "--epochs", "100", "--seed", "3", "--quiet"]) == 0
    assert "then trained again on all 111" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".json").read_text())
    held_out = json.loads(trained.with_suffix(".json").read_text())
    assert card["training_set"]["refit_on_all"] is True
    assert sorted(card["training_set"]["train_ids"]) == sorted(
        held_out["training_set"]["train_ids"] + held_out["training_set"]["validation_ids"])
    assert card["validation"] == held_out["validation"]        # figures of the held-out model
    ts = training_set(connect(pairs_db))
    x = scaled(None, ts.pairs)
    assert not np.allclose(predict(load_model(str(out)).keras_model, x),
                           predict(load_model(str(trained)).keras_model, x))
    # Nothing is left that it did not train on: evaluate says so in one line.
    assert main(["evaluate", "--model", str(out), "--db", str(pairs_db), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert "trained on every reviewed detection here (111)" in err and "without the refit" in err
    assert len(err.splitlines()) == 1


def test_training_progress_runs_to_the_end_through_the_refit(pairs_db, tmp_path):
    from review.learning.train import train

    seen = []
    train(connect(pairs_db), tmp_path / "p.keras", base=None, kinds=("features",), epochs=20,
          progress=lambda done, total, what: seen.append((done, total, what)))
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert seen[-1][:2] == (1000, 1000)
    assert any(what.startswith("training features on all 111") for *_, what in seen)


def test_a_new_model_name_must_be_plain_unused_and_not_published(tmp_path):
    from review.learning.train import TrainingError, output_path

    folder = tmp_path / "models"
    assert output_path(folder, "amazon-2024") == folder / "amazon-2024.keras"
    assert folder.is_dir()                                  # made for the first model
    (folder / "amazon-2024.json").write_text("{}")
    for name, why in [("amazon-2024", "already exists"), ("../elsewhere", "cannot name a model"),
                      ("", "cannot name a model"), ("48px_v3.2", "published model's name")]:
        with pytest.raises(TrainingError, match=why):
            output_path(folder, name)


def test_trunk_alone_without_its_published_model_is_refused_at_once(pairs_db, tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "trunk",
                 "--base", "none", "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: nothing to train: trunk was the only kind") and "\n" not in error
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_train_says_which_kind_it_could_not_train_and_prints_no_tensorflow_noise(pairs_db, tmp_path):
    """The test's model folder is empty and downloads go to a closed port, so the trunk's
    published model cannot be had: the others are trained and the run says so."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / "m.keras"
    done = subprocess.run(
        [sys.executable, "-m", "review", "train", "--db", str(pairs_db), "--out", str(out),
         "--kinds", "features,cnn,trunk", "--epochs", "10", "--quiet"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr
    assert "trunk not trained: the published model it starts from, 44px_v2.6_rgb_ir" in done.stdout
    assert ("the features kind made without a published detector's view: 48px_v3.2 could "
            "not be loaded") in done.stdout
    assert done.stderr == ""          # no oneDNN, CUDA or tf.data chatter from TensorFlow
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["kind"] == "features" and set(card["skipped"]) == {"trunk"}
    assert card["detector"] is None and card["parent"] is None
    assert card["detector_unused"].startswith("48px_v3.2 could not be loaded")


def test_evaluate_on_too_few_detections_it_never_saw_is_refused(trained, pairs_db, tmp_path, capsys):
    """Two unseen detections would give an AUC of 1.0 with an interval of zero width."""
    card = json.loads(trained.with_suffix(".json").read_text())
    path = _copy_db(pairs_db, tmp_path)
    db = connect(path)
    unseen = card["training_set"]["validation_ids"]
    for detection in unseen[2:]:                        # all but two go back to the queue
        assert main(["verdict", str(detection), "undo", "--reviewer", "labels",
                     "--db", str(path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--db", str(path), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "at least 5 verified and 5 false-positive detections that it was not trained on" in error
    assert "\n" not in error
    assert db["detections"].count == 111                  # nothing changed


def test_a_detector_whose_view_cannot_be_had_is_named_with_the_reason(real_model_cache):
    from review.learning.train import detector_for

    assert detector_for("48px_v3.2")[0][0].id == "48px_v3.2"
    assert detector_for(None) == (None, "none was asked for")
    for spec, why in [("44px_v2.6_rgb_ir", "not a single-image 48-px model on reflectance"),
                      ("48px_v4.21", "bands cannot be made from B2, B3, B4, B8, B11, B12"),
                      ("no-such-model", "no-such-model could not be loaded")]:
        model, reason = detector_for(spec)
        assert model is None and why in reason


def test_the_embedding_of_a_model_with_the_detectors_view_is_its_heads_hidden_layer(trained, pairs_db):
    from review.learning.evaluate import embedding
    from review.detection.models import load_model

    model = load_model(str(trained))
    assert model.card.training["detector"]["model"] == "48px_v3.2"
    found = embedding(connect(pairs_db), model, limit=40)
    assert len(found.ids) == 40 and np.isfinite(found.x).all() and np.isfinite(found.y).all()
    # The scores beside the points are the model's own.
    from review.learning.train import cut_pair, imagery_of, reviewed

    db = connect(pairs_db)
    first = next(r for r in reviewed(db) if r["id"] == found.ids[0])
    before, after, _ = imagery_of(db, first, first)
    chip = model.card.scale(cut_pair(before, after, first["lon"], first["lat"])[None])
    assert found.scores[0] == pytest.approx(float(model.scores(chip)[0]), abs=1e-5)


def test_detector_none_trains_the_statistics_alone_and_says_nothing_is_missing(
        pairs_db, tmp_path, capsys, real_model_cache):
    out = tmp_path / "plain.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                 "--detector", "none", "--epochs", "10", "--no-refit", "--quiet"]) == 0
    assert "without a published detector" not in capsys.readouterr().out   # a choice, not a failure
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["detector"] is None and card["detector_unused"] is None and card["parent"] is None
    from review.detection.models import load_model

    layers = [layer.name for layer in load_model(str(out)).keras_model.layers]
    assert "detector_embedding" not in layers and "pair_features" in layers
