"""Train: the model and its card written (whole, model before card), refusals that write
nothing, the progress it reports, and what the other commands make of a trained model."""
import json
import shutil

import numpy as np
import pytest

from review.cli import main
from review.store import connect

from tests.conftest import needs_fixtures
from tests.learning.conftest import PAIRS, pair_rows

pytestmark = needs_fixtures


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
    # Its figures are nested: two fold draws by site here (--draws 2), five penalties
    # compared inside each outer fold.
    nested = card["validation"]
    assert nested["method"] == "nested cross-validation by site"
    assert (nested["fold_draws"], nested["outer_folds"], nested["choices_compared"]) == (2, 5, 5)
    assert len(nested["roc_auc_per_draw"]) == 2 and sum(nested["chosen"].values()) == 10
    assert auc == pytest.approx(np.mean(nested["roc_auc_per_draw"]), abs=1e-4)
    assert card["penalty"] in (0.001, 0.003, 0.01, 0.03, 0.1)
    curve = card["labels_curve"]
    assert curve["verdicts"][0] == 10 and len(curve["uncertain"]["mean"]) == len(curve["verdicts"])
    assert curve["draws"] == 2                      # never more than the nested estimate's
    # The written model is the regression and the forest, averaged.
    from review.detection.models import load_model

    head = load_model(str(trained)).keras_model.get_layer("head")
    assert {"forest", "mean_of_both"} <= {layer.name for layer in head.layers}
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
                 "--draws", "2", "--seed", "3", "--no-refit", "--quiet"]) == 0
    first, second = load_model(str(trained)), load_model(str(again))
    for a, b in zip(first.keras_model.get_weights(), second.keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    card1 = json.loads(trained.with_suffix(".json").read_text())
    card2 = json.loads(again.with_suffix(".json").read_text())
    assert card1["validation"] == card2["validation"]
    assert card1["training_set"]["sha256"] == card2["training_set"]["sha256"]


def test_training_progress_runs_to_the_end_through_the_refit(pairs_db, tmp_path):
    from review.learning.train import train

    seen = []
    train(connect(pairs_db), tmp_path / "p.keras", base=None, kinds=("features",), epochs=20,
          progress=lambda done, total, what: seen.append((done, total, what)))
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert seen[-1][:2] == (1000, 1000)
    stages = [what for *_, what in seen]
    for stage in ("cutting chips", "describing the chips", "nested cross-validation",
                  "simulating the uncertain order", "simulating the random order"):
        assert stage in stages


def test_a_new_model_name_must_be_plain_unused_and_not_published(tmp_path):
    from review.learning.pairs import TrainingError
    from review.learning.train import output_path

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


def test_pair_model_given_one_tile_is_refused(trained, tmp_path, capsys):
    row = pair_rows()[0]
    out = tmp_path / "raw.geojson"
    code = main(["detect", str(PAIRS / row["t1"]), "--model", str(trained), "--raw",
                 "--out", str(out), "--quiet"])
    assert code == 2 and not out.exists()
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "earlier tile" in error and len(error.splitlines()) == 1


def test_card_bands_the_tile_lacks_are_refused(trained, tmp_path, capsys):
    from tests.conftest import mine_tile

    after, before = mine_tile(tmp_path / "a.tif", size=48), mine_tile(tmp_path / "b.tif", size=48)
    assert main(["detect", str(after), "--before", str(before), "--model", str(trained),
                 "--out", str(tmp_path / "o.geojson"), "--quiet"]) == 2
    assert "needs bands B11, B12 which the tile lacks" in capsys.readouterr().err


def test_model_without_card_is_refused(trained, tmp_path, capsys):
    bare = tmp_path / "bare.keras"
    shutil.copy(trained, bare)
    row = pair_rows()[0]
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


class _Saved:
    """Stands in for a trained Keras model: saving writes a few bytes, or fails."""

    def __init__(self, fails=False):
        self.fails = fails

    def save(self, path):
        if self.fails:
            raise OSError("disk full")
        path.write_bytes(b"a model")


def _fitted(monkeypatch, model, pairs_set):
    """train() with fitting replaced by a model handed over at once (no TensorFlow), on the
    pairs' training set cut once for the package."""
    import review.learning.train as train_module
    from review.learning.fitting import Candidate

    monkeypatch.setattr(train_module, "training_set", lambda db, **_: pairs_set)

    def fit(ts, **_):
        validation = np.arange(len(ts)) % 4 == 0
        scores = np.linspace(0, 1, int(validation.sum())).astype(np.float32)
        return Candidate("cnn", model, scores, 0.5, 1), {"cnn": 0.5}, validation

    monkeypatch.setattr(train_module, "fit", fit)
    monkeypatch.setattr(train_module, "kinds_procedure", lambda *_, **__: (
        lambda train, test, seed: (np.linspace(0, 1, int(test.sum())), 0.5, "cnn")))
    return train_module.train


def test_the_model_takes_its_name_before_its_card_and_nothing_else_is_left(
        pairs_db, pairs_set, tmp_path, monkeypatch):
    from review import files
    from review.detection.models import sha256_of

    renamed, commit = [], files.commit
    monkeypatch.setattr(files, "commit", lambda temporary, path: (renamed.append(path.name),
                                                                  commit(temporary, path))[1])
    train = _fitted(monkeypatch, _Saved(), pairs_set)
    report = train(connect(pairs_db), tmp_path / "m.keras", kinds=("cnn",), refit=False, base=None, detector=None)
    assert renamed == ["m.keras", "m.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]
    assert report.card["sha256"] == sha256_of(tmp_path / "m.keras")


def test_a_failed_save_or_card_writes_neither(pairs_db, pairs_set, tmp_path, monkeypatch):
    train = _fitted(monkeypatch, _Saved(fails=True), pairs_set)
    with pytest.raises(OSError, match="disk full"):
        train(connect(pairs_db), tmp_path / "m.keras", kinds=("cnn",), refit=False, base=None, detector=None)
    assert list(tmp_path.iterdir()) == []
    train = _fitted(monkeypatch, _Saved(), pairs_set)
    with pytest.raises(TypeError):                         # a card that cannot be written
        train(connect(pairs_db), tmp_path / "m.keras", kinds=("cnn",), refit=False, base=None, detector=None,
              database_name=object())
    assert list(tmp_path.iterdir()) == []


def test_the_learning_modules_import_without_tensorflow():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys\nimport review.learning.train, review.learning.crossval, "
            "review.learning.evaluate\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
