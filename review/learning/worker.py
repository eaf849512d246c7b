"""Worker: training and evaluation in a process of their own, their progress sent back.

The dashboard's process scores every session's detections. Training there would leave
TensorFlow's op determinism on, its seeds set and its GPUs hidden for all of them, so the
Models page trains and evaluates through `train` and `evaluate` here: `run` starts a fresh
Python (`python -m review.learning.worker`, with this process's environment and import
path), hands it the job, and returns the job's result or raises its domain error, passing
on the progress the job reports over a pipe meanwhile. Not multiprocessing's spawn: it
would run `__main__` again in the child, and under Streamlit that is the page's script.

A job that fails unexpectedly, or a process that ends without a result (killed, out of
memory), becomes one WorkerError, the details on the server's stderr. A caller that stops
waiting (a page left while it trains) ends the process; it leaves through its `finally`
blocks, so the atomic writes (files.replacing) leave nothing half-written behind.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

from ..errors import ReviewError, first_line
from ..progress import Progress
from .fitting import DETERMINISM_VARIABLE

POLL_S = 0.2
STOP_WAIT_S = 10
# The folder that holds the review package: the child finds it whatever its working folder.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class WorkerError(ReviewError):
    """A job's process failed unexpectedly or ended without a result."""


def run(what: str, job: Callable, *args, progress: Progress | None = None, **kwargs):
    """job(*args, progress=..., **kwargs) called in a new process; returns its result
    (which must pickle) or raises its ReviewError. `job` is a module-level function and
    `what` names it in messages ("Training")."""
    request = pickle.dumps((what, job, args, kwargs))
    read_end, write_end = os.pipe()
    reader = Connection(read_end, writable=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        process = subprocess.Popen([sys.executable, "-m", "review.learning.worker",
                                    str(write_end)], stdin=subprocess.PIPE, env=env,
                                   pass_fds=(write_end,))
    except BaseException:
        reader.close()
        raise
    finally:
        os.close(write_end)         # the child's end only: its exit is then seen as EOF
    try:
        with process.stdin:
            process.stdin.write(pickle.dumps((list(sys.path), request)))
        while True:
            kind, *payload = _next(reader, process, what)
            if kind == "progress":
                if progress:
                    progress(*payload)
            elif kind == "result":
                return payload[0]
            else:
                raise payload[0]
    finally:
        reader.close()
        _stop(process)


def _next(reader: Connection, process: subprocess.Popen, what: str) -> tuple:
    while not reader.poll(POLL_S):
        if process.poll() is not None and not reader.poll(0):
            raise _ended(process, what)
    try:
        return reader.recv()
    except EOFError:
        raise _ended(process, what) from None
    except Exception as exc:        # a result or error that does not unpickle here
        raise WorkerError(f"{what} finished, but what it sent back could not be read "
                          f"({first_line(exc)})") from None


def _ended(process: subprocess.Popen, what: str) -> WorkerError:
    try:
        code = process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        code = None
    how = (f"was ended by signal {-code}" if code is not None and code < 0 else
           f"ended with exit code {code}")
    return WorkerError(f"{what} stopped before it finished: its process {how} without a "
                       "result, and nothing was written")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()         # SIGTERM: the child leaves through its finally blocks
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def work(write_end: int) -> None:
    """The child's side of `run`: read the job from stdin, run it, send back its progress
    and then its result or error through the pipe `write_end`."""
    signal.signal(signal.SIGTERM, _terminated)
    writer = Connection(write_end, readable=False)
    path, request = pickle.load(sys.stdin.buffer)
    sys.path[:0] = [entry for entry in path if entry not in sys.path]
    what, job, args, kwargs = pickle.loads(request)

    def progress(done: int, total: int | None, text: str) -> None:
        writer.send(("progress", done, total, text))

    try:
        message = ("result", job(*args, progress=progress, **kwargs))
    except ReviewError as exc:
        message = ("error", exc)
    except Exception as exc:
        traceback.print_exc()       # the server's log has the whole story
        message = ("error", WorkerError(f"{what} stopped by an unexpected error: "
                                        f"{first_line(exc)}",
                                        details=f"{type(exc).__name__}: {first_line(exc)}"))
    try:
        writer.send(message)
    except BrokenPipeError:
        pass                        # nobody is waiting any more
    except Exception as exc:        # a result or error that does not pickle
        writer.send(("error", WorkerError(f"{what} finished, but its result could not be "
                                          f"sent back ({first_line(exc)})")))
    finally:
        writer.close()


# ------------------------------------------------------------------------------- jobs

def train(database: Path, out: Path, progress: Progress | None = None, **options):
    """train.train on the database at `database`, writing `out`, in a process of its own;
    its TrainReport. `options` are train.train's (kinds, seed, epochs, detector, ...)."""
    return run("Training", _train, str(database), str(out), progress=progress, **options)


def _train(database: str, out: str, progress: Progress | None = None, **options):
    # This process's own: read when TensorFlow starts, and set again by fitting.deterministic.
    os.environ[DETERMINISM_VARIABLE] = "1"
    from ..store import connect
    from .train import train as train_here

    options.setdefault("database_name", database)
    return train_here(connect(database), Path(out), progress=progress, **options)


def evaluate(database: Path, model: str, compare_with: str | None = None,
             progress: Progress | None = None) -> tuple:
    """evaluate.evaluate of `model` (a card id or a path) on the database at `database`, in
    a process of its own, and of `compare_with` on the same detections: (the model's
    Evaluation, the other's or None, why the other could not be had or None)."""
    return run("Evaluation", _evaluate, str(database), model, compare_with, progress=progress)


def _evaluate(database: str, model: str, compare_with: str | None,
              progress: Progress | None = None) -> tuple:
    from ..detection.models import load_model
    from ..store import connect
    from .evaluate import evaluate as evaluate_here

    db = connect(database)
    share = 0.5 if compare_with else 1.0
    loaded = load_model(model)
    mine = evaluate_here(db, loaded, progress=_part(progress, 0.0, share, f"scoring {loaded.card.id}"))
    if not compare_with:
        return mine, None, None
    try:
        other = load_model(compare_with, _part(progress, share, 0.0, f"downloading {compare_with}",
                                               counted=False))
        theirs = evaluate_here(db, other, ids=[int(i) for i in mine.ids], exclude_trained=False,
                               progress=_part(progress, share, 1 - share, f"scoring {compare_with}"))
    except ReviewError as exc:
        return mine, None, str(exc)
    return mine, theirs, None


def _part(progress: Progress | None, offset: float, share: float, label: str,
          counted: bool = True):
    """A part of a job as its share of the whole (in thousandths), named `label: done of
    total detections` (or `label` alone)."""
    if progress is None:
        return None

    def report(done: int, total: int | None, what: str) -> None:
        progress(int(1000 * (offset + share * done / max(total or 1, 1))), 1000,
                 f"{label}: {done} of {total} detections" if counted and total else label)

    return report


if __name__ == "__main__":
    # Through the module's own name, so what the child sends back (WorkerError) unpickles
    # as review.learning.worker's, not as __main__'s.
    from review.learning import worker

    worker.work(int(sys.argv[1]))
