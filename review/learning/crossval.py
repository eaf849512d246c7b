"""The several-kinds procedure as the outer folds of nested cross-validation run it: in
each outer fold, what `train` does with several kinds (inner site split, every kind, the
clearly-better choice, the threshold on the inner validation split, the refit) on the
outer training detections only, scoring the held-out fold.
"""
from __future__ import annotations

import numpy as np

from .fitting import fit, predict, refit_on_all, scaled
from .metrics import PRECISION_TARGET, threshold_for_precision
from .nested import Procedure
from .pairs import BANDS, TrainingSet


def kinds_procedure(ts: TrainingSet, kinds, base=None, detector=None,
                    epochs: int | None = None, precision: float = PRECISION_TARGET,
                    refit: bool = True) -> Procedure:
    """`train`'s several-kinds procedure for nested_estimate. `base` and `detector` are
    loaded models (`base_for`, `detector_for`), not names."""

    def run(train: np.ndarray, test: np.ndarray, seed: int):
        inner = TrainingSet(ts.ids[train], ts.labels[train], ts.pairs[train], ts.lon[train],
                            ts.lat[train])
        best, _, validation = fit(inner, seed=seed, kinds=kinds, base=base, epochs=epochs,
                                  detector=detector)
        threshold, _ = threshold_for_precision(inner.labels[validation],
                                               best.validation_scores, precision)
        if refit:
            best = refit_on_all(best, inner, seed, base, detector)
        return predict(best.model, scaled(BANDS, ts.pairs[test])), threshold, best.kind

    return run
