"""Benchmark: learning from verdicts on the 111 real Amazon before/after pairs.

Brings the pairs in through the product's own commands (scenes add for each t0/t1 file
with its period; the pairs as points with their id and t1 period; a verdict per pair from
its label), times `train` (every kind of model, the first kept unless another is clearly
better on a by-site validation split, then trained again on every detection), then
cross-validates the whole procedure by site (5 folds: inner split, every kind, choice,
refit, all redone per fold) and reports the pooled out-of-fold ROC AUC with a
bootstrap 95% interval.

    .venv/bin/python -m bench.train [--kinds features,cnn,trunk] [--folds 5] [--seed 1]
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAIRS = Path(os.environ.get("REVIEW_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures")) \
    / "imagery" / "amazon_change_pairs_val"


def load_pairs(folder: Path, db: str, pairs: Path = PAIRS) -> None:
    """The pairs into a review database through the CLI (in this process)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        _load_pairs(folder, db, pairs)


def _load_pairs(folder: Path, db: str, pairs: Path) -> None:
    from review.cli import main

    rows = list(csv.DictReader(open(pairs / "pairs.csv")))
    for row in rows:
        for side in ("t0", "t1"):
            code = main(["scenes", "add", str(pairs / row[side]), "--period",
                         f"{row[side + '_start']}/{row[side + '_end']}", "--db", db,
                         "--format", "json"])
            assert code == 0
    points = folder / "pairs_points.csv"
    with open(points, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "longitude", "latitude", "period"])
        for row in rows:
            writer.writerow([row["sample_id"], row["longitude"], row["latitude"],
                             f"{row['t1_start']}/{row['t1_end']}"])
    assert main(["import", str(points), "--id-field", "sample_id", "--period-field", "period",
                 "--point-size", "100", "--source", "pairs", "--db", db]) == 0
    ids = dict(sqlite3.connect(db).execute("select external_id, id from detections"))
    for row in rows:
        verdict = "verified" if row["label"] == "1" else "false_positive"
        extra = [] if verdict == "verified" else ["--reason", "other"]
        assert main(["verdict", str(ids["sample_id:" + row["sample_id"]]), verdict,
                     "--reviewer", "labels", "--db", db] + extra) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="features,cnn,trunk")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--detector", default="48px_v3.2",
                        help="published detector for the features kind ('none': without)")
    args = parser.parse_args()
    if not (PAIRS / "pairs.csv").exists():
        print(f"the pairs are not at {PAIRS}", file=sys.stderr)
        return 2
    kinds = tuple(args.kinds.split(","))
    # The published base model from the fixtures (no network needed).
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(PAIRS.parent.parent / "models" / "earthrise"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_path = str(folder / "review.db")
        start = time.perf_counter()
        load_pairs(folder, db_path)
        print(f"pairs brought in through scenes add / import / verdict in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        from review.cli import main as cli

        start = time.perf_counter()
        code = cli(["train", "--db", db_path, "--out", str(folder / "model.keras"),
                    "--kinds", args.kinds, "--seed", str(args.seed), "--detector",
                    args.detector, "--quiet"])
        train_seconds = time.perf_counter() - start
        assert code == 0
        print(f"train (kinds {args.kinds}): {train_seconds:.1f} s wall", flush=True)
        if args.skip_cv:
            return 0
        from review.learning.crossval import cross_validate
        from review.learning.fitting import base_for, detector_for
        from review.learning.pairs import BANDS, training_set
        from review.learning.train import DEFAULT_BASE
        from review.store import connect

        ts = training_set(connect(db_path))
        base = base_for(DEFAULT_BASE, BANDS) if "trunk" in kinds else None
        start = time.perf_counter()
        detector = None
        if "features" in kinds and args.detector.lower() != "none":
            detector, why = detector_for(args.detector)
            if detector is None:
                print(f"cross-validating without a detector's view: {why}", flush=True)
        result = cross_validate(ts, folds=args.folds, seed=args.seed, kinds=kinds, base=base,
                                detector=detector)
        cv_seconds = time.perf_counter() - start
        auc, low, high = result["roc_auc"]
        from collections import Counter

        print(f"cross-validated by site ({args.folds} folds, {len(ts)} pairs): ROC AUC "
              f"{auc:.3f} (95% {low:.3f} to {high:.3f}); kept per fold: "
              f"{dict(Counter(result['chosen']))}; {cv_seconds:.0f} s")
    cpu = "avx512f" if "avx512f" in Path("/proc/cpuinfo").read_text() else "no avx512f"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python "
          f"{platform.python_version()}; peak memory {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
