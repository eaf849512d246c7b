"""Benchmark: the labels-saved curve on the 111 real Amazon pairs, over ten fold draws.

The pairs come in through the product's commands (bench.train.load_pairs); the chips are
described once as `train` describes them, and learning.label_curve simulates reviewing in
Review's "most uncertain" order and at random, retraining every 10 verdicts, each model
scored on held-out sites. Prints the mean, lowest and highest ROC AUC per number of verdicts
and the verdicts each order needed to reach a few targets.

    .venv/bin/python -m bench.label_curve [--draws 10] [--seed 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.train import PAIRS, load_pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not (PAIRS / "pairs.csv").exists():
        print(f"the pairs are not at {PAIRS}", file=sys.stderr)
        return 2
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(PAIRS.parent.parent / "models" / "earthrise"))
    from review.learning.fitting import (cpu_only, describe, detector_for, deterministic,
                                         feature_layers, scaled)
    from review.learning.label_curve import simulate
    from review.learning.pairs import BANDS, PATCH, training_set
    from review.learning.splits import site_groups
    from review.store import connect

    cpu_only()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "review.db")
        load_pairs(Path(tmp), db)
        ts = training_set(connect(db))
    groups = site_groups(ts.lon, ts.lat)
    layer, view = feature_layers(BANDS, PATCH, detector_for("48px_v3.2")[0])
    with deterministic(args.seed):
        features = describe(layer, view, scaled(BANDS, ts.pairs))
    start = time.perf_counter()
    curve = simulate(features, ts.labels, groups, args.seed, args.draws)
    seconds = time.perf_counter() - start
    print(f"{len(ts)} pairs, {args.draws} fold draws, {seconds:.0f} s")
    print("| verdicts | uncertain order: mean (lowest to highest) | random order: mean "
          "(lowest to highest) |")
    print("|---|---|---|")
    for i, n in enumerate(curve.verdicts):
        u, r = curve.curves["uncertain"], curve.curves["random"]
        print(f"| {n} | {u['mean'][i]:.3f} ({u['low'][i]:.3f} to {u['high'][i]:.3f}) | "
              f"{r['mean'][i]:.3f} ({r['low'][i]:.3f} to {r['high'][i]:.3f}) |")
    for row in curve.saved():
        print(f"to reach ROC AUC {row['roc_auc']:.2f}: uncertain {row['uncertain']}, random "
              f"{row['random']}, saved {row['saved']}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
