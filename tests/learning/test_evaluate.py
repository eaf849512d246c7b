"""Evaluate, rescore and the embedding of a model trained on the real pairs."""
import json

import numpy as np
import pytest

from review.cli import main
from review.store import connect

from tests.conftest import needs_fixtures
from tests.learning.conftest import copy_db

pytestmark = needs_fixtures


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


def test_evaluate_on_too_few_detections_it_never_saw_is_refused(trained, pairs_db, tmp_path, capsys):
    """Two unseen detections would give an AUC of 1.0 with an interval of zero width; nine
    of a label are still refused."""
    card = json.loads(trained.with_suffix(".json").read_text())
    path = copy_db(pairs_db, tmp_path)
    db = connect(path)
    unseen = card["training_set"]["validation_ids"]
    labels = dict(db.execute("select id, status from detections"))
    false = [i for i in unseen if labels[i] == "false_positive"]
    assert len(false) >= 10                 # the held-out split has evaluate's minimum
    for detection in false[9:]:             # all but nine false positives go back to the queue
        assert main(["verdict", str(detection), "undo", "--reviewer", "labels",
                     "--db", str(path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--db", str(path), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "at least 10 verified and 10 false-positive detections that it was not trained on" in error
    assert "\n" not in error
    assert db["detections"].count == 111                  # nothing changed


def test_rescore_stores_scores_beside_the_source_and_orders_the_queue(trained, pairs_db, tmp_path, capsys):
    from review.judging.queue import listing

    path = copy_db(pairs_db, tmp_path)
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


def test_the_embedding_of_a_model_with_the_detectors_view_is_its_heads_hidden_layer(trained, pairs_db):
    from review.detection.models import load_model
    from review.learning.evaluate import embedding

    model = load_model(str(trained))
    assert model.card.training["detector"]["model"] == "48px_v3.2"
    found = embedding(connect(pairs_db), model, limit=40)
    assert len(found.ids) == 40 and np.isfinite(found.x).all() and np.isfinite(found.y).all()
    # The scores beside the points are the model's own.
    from review.learning.pairs import cut_pair, imagery_of, reviewed

    db = connect(pairs_db)
    first = next(r for r in reviewed(db) if r["id"] == found.ids[0])
    before, after, _ = imagery_of(db, first, first)
    chip = model.card.scale(cut_pair(before, after, first["lon"], first["lat"])[None])
    assert found.scores[0] == pytest.approx(float(model.scores(chip)[0]), abs=1e-5)
