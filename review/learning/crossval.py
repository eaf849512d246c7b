"""Cross-validation of the whole training procedure: folds by site, and in each fold what
`train` does (inner site split, candidates, choice, refit) scored on the held-out fold.
bench/train.py reports it; it writes nothing.
"""
from __future__ import annotations

import numpy as np

from ..progress import Progress
from .fitting import KINDS, fit, predict, refit_on_all, scaled
from .metrics import metrics_with_intervals
from .pairs import BANDS, TrainingSet
from .splits import folds_by_site, site_groups


def cross_validate(ts: TrainingSet, folds: int = 5, seed: int = 1, kinds=KINDS, base=None,
                   epochs: int | None = None, progress: Progress | None = None,
                   refit: bool = True, detector=None) -> dict:
    """Out-of-fold scores of the whole procedure `train` runs (inner site split,
    candidates, choice, refit on the fold's training detections), folds by site; pooled
    ROC AUC with a bootstrap 95% interval, and per-kind AUCs. `base` and `detector` are
    loaded models (`base_for`, `detector_for`), not names: without them the trunk kind
    is left out and the features kind has no detector's view, unlike `train`'s defaults."""
    groups = site_groups(ts.lon, ts.lat)
    fold = folds_by_site(ts.labels, groups, folds, seed)
    scores = np.zeros(len(ts), dtype=np.float32)
    chosen = []
    for f in range(folds):
        test = fold == f
        inner = TrainingSet(ts.ids[~test], ts.labels[~test], ts.pairs[~test], ts.lon[~test],
                            ts.lat[~test])
        x_test = scaled(BANDS, ts.pairs[test])
        best, results, _ = fit(inner, seed=seed, kinds=kinds, base=base, epochs=epochs,
                               detector=detector)
        if refit:
            best = refit_on_all(best, inner, seed, base, detector)
        chosen.append(best.kind)
        scores[test] = predict(best.model, x_test)
        if progress:
            progress(f + 1, folds, "folds")
    metrics = metrics_with_intervals(ts.labels, scores, 0.5, seed=seed)
    return {"roc_auc": metrics["roc_auc"], "folds": folds, "chosen": chosen,
            "detections": len(ts), "scores": scores, "fold": fold}
