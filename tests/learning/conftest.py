"""What the learning tests share: the 111 real Amazon before/after pairs brought in through
the product's own commands (scenes add, import, verdict), and a small features model trained
on them through the CLI. Both are made once for the package's tests."""
import csv

import pytest

from review.cli import main
from review.store import connect

from tests.conftest import FIXTURES, MODELS

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"


def pair_rows():
    """The pairs' table: sample id, the two images, their periods, the label."""
    return list(csv.DictReader(open(PAIRS / "pairs.csv")))


def copy_db(pairs_db, tmp_path):
    """A consistent copy (the live database is in WAL mode: copying the file is not enough)."""
    from review.store import backup

    return backup(connect(pairs_db), tmp_path / "copy.db")


@pytest.fixture(scope="package")
def pairs_db(tmp_path_factory):
    """A review database holding the 111 pairs: 222 scenes, 111 points, 111 verdicts."""
    from bench.train import load_pairs

    folder = tmp_path_factory.mktemp("pairs")
    path = folder / "review.db"
    load_pairs(folder, str(path))
    return path


@pytest.fixture(scope="package")
def trained(pairs_db, tmp_path_factory):
    """A small features model trained for a few steps through the CLI, with the published
    detector's view from the fixture models; the model the validation figures describe
    (--no-refit), so evaluate has detections it never saw."""
    out = tmp_path_factory.mktemp("model") / "change.keras"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REVIEW_MODEL_CACHE", str(MODELS))
        code = main(["train", "--db", str(pairs_db), "--out", str(out), "--kinds", "features",
                     "--draws", "2", "--seed", "3", "--no-refit", "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="package")
def pairs_set(pairs_db):
    """The training set of the 111 pairs, cut once for the tests that only need its shape."""
    from review.learning.pairs import training_set

    return training_set(connect(pairs_db))
