"""Training and evaluation from the Models page run in a process of their own: the
dashboard's detections stay bit-for-bit what they were, its TensorFlow settings and seeds
untouched; a failure there is one message, and a page left mid-run leaves nothing behind."""
import os
import random
import time

import numpy as np
import pytest

from review import files
from review.errors import ReviewError
from review.learning import worker
from review.learning.pairs import TrainingError

from tests.conftest import mine_tile, needs_fixtures


def process_globals() -> dict:
    """What training in this process would change: the determinism switches and seeds."""
    from keras.src.utils.rng_utils import get_random_seed
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config

    numpy = np.random.get_state()
    return {"TF_DETERMINISTIC_OPS": os.environ.get("TF_DETERMINISTIC_OPS"),
            "op determinism": config.is_op_determinism_enabled(),
            "python seed state": random.getstate(),
            "numpy seed state": (numpy[0], numpy[1].tolist(), *numpy[2:]),
            "tensorflow seed": context.global_seed(),
            "keras seed": get_random_seed()}


@needs_fixtures
def test_detections_after_training_from_the_models_page_are_bit_for_bit_the_same(
        pairs_db, tiny_model, tmp_path, real_model_cache):
    from review.detection.detect import score_tile
    from review.detection.imagery import open_tile

    tile = open_tile(mine_tile(tmp_path / "tile.tif"))
    first = score_tile(tile, tiny_model)
    before = process_globals()
    reports = []
    out = tmp_path / "models" / "page.keras"
    out.parent.mkdir()
    report = worker.train(pairs_db, out, kinds=("features",), seed=3, draws=1, detector=None,
                          progress=lambda done, total, what: reports.append((done, total, what)))
    assert "features model trained" in report.summary() and out.is_file()
    # The page's bar moved from cutting chips to the end.
    assert reports[0][2] == "cutting chips" and reports[-1][:2] == (1000, 1000)
    assert [done for done, *_ in reports] == sorted(done for done, *_ in reports)
    again = score_tile(tile, tiny_model)
    assert np.array_equal(again.scores, first.scores)
    assert np.array_equal(again.rows, first.rows) and np.array_equal(again.cols, first.cols)
    assert process_globals() == before


def test_deterministic_puts_back_every_global_it_set():
    from review.learning.fitting import deterministic

    before = process_globals()
    with deterministic(7) as keras:
        assert os.environ["TF_DETERMINISTIC_OPS"] == "1"
        inside = process_globals()
        assert inside["op determinism"] and inside["tensorflow seed"] == inside["keras seed"] == 7
        drawn = np.random.random(), keras.random.uniform((2,), seed=None).numpy().tolist()
    assert process_globals() == before
    with deterministic(7) as keras:                  # seeded the same way each time
        assert (np.random.random(), keras.random.uniform((2,), seed=None).numpy().tolist()) == drawn


def test_importing_learning_changes_nothing_process_wide():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_DETERMINISTIC_OPS"}
    code = ("import os, review.learning.train, review.learning.worker, review.learning.evaluate;"
            "print(os.environ.get('TF_DETERMINISTIC_OPS'))")
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "None"


def test_a_training_error_in_the_process_is_the_same_one_message_and_writes_nothing(
        tmp_path, db):
    out = tmp_path / "models" / "empty.keras"
    out.parent.mkdir()
    with pytest.raises(TrainingError, match="at least 10 verified"):
        worker.train(tmp_path / "review.db", out, kinds=("features",), detector=None)
    assert list(out.parent.iterdir()) == []


def _dies(progress=None):
    os._exit(3)


def _fails(progress=None):
    return {}["missing"]


def test_a_process_that_dies_or_fails_unexpectedly_is_one_plain_message():
    with pytest.raises(worker.WorkerError) as died:
        worker.run("Training", _dies)
    assert str(died.value) == ("Training stopped before it finished: its process ended with "
                               "exit code 3 without a result, and nothing was written")
    with pytest.raises(worker.WorkerError) as failed:
        worker.run("Evaluation", _fails)
    assert str(failed.value) == "Evaluation stopped by an unexpected error: 'missing'"
    assert "Traceback" not in str(failed.value) + str(failed.value.details)
    assert isinstance(failed.value, ReviewError)


def _writes_slowly(path, progress=None):
    with files.replacing(path) as partial:
        partial.write_text("half a model")
        progress(os.getpid(), None, "half written")
        time.sleep(120)


def test_a_page_left_mid_training_ends_the_process_and_leaves_nothing_half_written(tmp_path):
    class PageLeft(Exception):
        pass

    child = []

    def leave(pid, total, what):
        child.append(pid)
        raise PageLeft                               # as Streamlit stops a script on a rerun

    started = time.perf_counter()
    with pytest.raises(PageLeft):
        worker.run("Training", _writes_slowly, tmp_path / "model.keras", progress=leave)
    assert time.perf_counter() - started < 30
    with pytest.raises(ProcessLookupError):
        os.kill(child[0], 0)                         # ended, and waited for
    assert list(tmp_path.iterdir()) == []            # not the model, not its .part file
