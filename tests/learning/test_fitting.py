"""Fitting: the kept kind trained again on every detection, scores the same in any batch,
and the features kind with or without a published detector's view."""
import json

import numpy as np

from review.cli import main
from review.store import connect

from tests.conftest import needs_fixtures

pytestmark = needs_fixtures


def test_by_default_the_kept_kind_is_trained_again_on_every_detection(pairs_db, trained, tmp_path,
                                                                     capsys, real_model_cache):
    from review.detection.models import load_model
    from review.learning.fitting import predict, scaled
    from review.learning.pairs import training_set

    out = tmp_path / "all.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                 "--draws", "2", "--seed", "3", "--quiet"]) == 0
    assert "trained on 111 of 111 reviewed detections" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".json").read_text())
    held_out = json.loads(trained.with_suffix(".json").read_text())
    assert card["training_set"]["refit_on_all"] is True
    assert sorted(card["training_set"]["train_ids"]) == sorted(
        held_out["training_set"]["train_ids"] + held_out["training_set"]["validation_ids"])
    assert card["validation"] == held_out["validation"]        # the nested figures, both
    ts = training_set(connect(pairs_db))
    x = scaled(None, ts.pairs)
    assert not np.allclose(predict(load_model(str(out)).keras_model, x),
                           predict(load_model(str(trained)).keras_model, x))
    # Nothing is left that it did not train on: evaluate says so in one line.
    assert main(["evaluate", "--model", str(out), "--db", str(pairs_db), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert "trained on every reviewed detection here (111)" in err and "without the refit" in err
    assert len(err.splitlines()) == 1


def test_any_batch_size_scores_the_same(trained, pairs_db):
    from review.detection.models import load_model
    from review.learning.pairs import training_set

    ts = training_set(connect(pairs_db))
    model = load_model(str(trained))
    x = model.card.scale(ts.pairs[:7])
    whole = model.scores(x)
    parts = np.concatenate([model.scores(x[:3]), model.scores(x[3:5]), model.scores(x[5:])])
    np.testing.assert_allclose(whole, parts, atol=1e-5)


def test_a_detector_whose_view_cannot_be_had_is_named_with_the_reason(real_model_cache):
    from review.learning.fitting import detector_for

    assert detector_for("48px_v3.2")[0][0].id == "48px_v3.2"
    assert detector_for(None) == (None, "none was asked for")
    for spec, why in [("44px_v2.6_rgb_ir", "not a single-image 48-px model on reflectance"),
                      ("48px_v4.21", "bands cannot be made from B2, B3, B4, B8, B11, B12"),
                      ("no-such-model", "no-such-model could not be loaded")]:
        model, reason = detector_for(spec)
        assert model is None and why in reason


def test_detector_none_trains_the_statistics_alone_and_says_nothing_is_missing(
        pairs_db, tmp_path, capsys, real_model_cache):
    out = tmp_path / "plain.keras"
    assert main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                 "--detector", "none", "--draws", "1", "--no-refit", "--quiet"]) == 0
    assert "without a published detector" not in capsys.readouterr().out   # a choice, not a failure
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["detector"] is None and card["detector_unused"] is None and card["parent"] is None
    from review.detection.models import load_model

    layers = [layer.name for layer in load_model(str(out)).keras_model.layers]
    assert "detector_embedding" not in layers and "pair_features" in layers
