"""Benchmark: learning from verdicts on the 111 real Amazon before/after pairs.

Brings the pairs in through the product's own commands (scenes add for each t0/t1 file
with its period; the pairs as points with their id and t1 period; a verdict per pair from
its label) and times `train`, whose card carries the nested cross-validated figures (10 fold
draws by default) and the labels-saved curve; prints the per-draw figures.

    .venv/bin/python -m bench.train [--kinds features] [--draws 10] [--seed 1] [--keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
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
    parser.add_argument("--kinds", default="features")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--detector", default="48px_v3.2",
                        help="published detector for the features kind ('none': without)")
    parser.add_argument("--keep", type=Path, help="copy the trained model and card here")
    args = parser.parse_args()
    if not (PAIRS / "pairs.csv").exists():
        print(f"the pairs are not at {PAIRS}", file=sys.stderr)
        return 2
    # The published models from the fixtures (no network needed).
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(PAIRS.parent.parent / "models" / "earthrise"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_path = str(folder / "review.db")
        start = time.perf_counter()
        load_pairs(folder, db_path)
        print(f"pairs brought in through scenes add / import / verdict in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        from review.cli import main as cli

        out = folder / "model.keras"
        start = time.perf_counter()
        code = cli(["train", "--db", db_path, "--out", str(out), "--kinds", args.kinds,
                    "--seed", str(args.seed), "--detector", args.detector, "--draws",
                    str(args.draws), "--quiet"])
        train_seconds = time.perf_counter() - start
        assert code == 0
        print(f"train (kinds {args.kinds}): {train_seconds:.1f} s wall", flush=True)
        card = json.loads(out.with_suffix(".json").read_text())
        v = card["validation"]
        print(f"nested ROC AUC per fold draw: {v['roc_auc_per_draw']}; chosen: {v['chosen']}")
        if args.keep:
            import shutil

            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, args.keep / out.name)
            shutil.copy(out.with_suffix(".json"), args.keep / "model.json")
    cpu = "avx512f" if "avx512f" in Path("/proc/cpuinfo").read_text() else "no avx512f"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python "
          f"{platform.python_version()}; peak memory {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
