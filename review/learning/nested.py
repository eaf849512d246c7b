"""Nested cross-validation by site: what every figure the product prints about a model it
trained is based on.

The outer loop splits the detections into OUTER_FOLDS folds by site (a site never on both
sides) and does so for several seeded fold draws. In each outer fold, everything that is
chosen (the penalty, and the kind when several are compared; the threshold) is chosen by
an inner loop on the outer training detections only, the model is trained on them and
scores the held-out fold, which took no part in any choice. The figures are the mean over
draws of the pooled out-of-fold ROC AUC, and the precision and recall of calling a
detection a mine at each fold's own inner-chosen threshold.

Their interval (metrics.intervals_by_site) resamples sites with replacement and, for each
resample, one fold draw at random: it carries the luck of which places were reviewed and
the luck of the partition and of the choices made inside it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..progress import Progress
from .metrics import PRECISION_TARGET, intervals_by_site
from .selection import INNER_FOLDS, PENALTIES, fit_change_head, inner_choice
from .splits import folds_by_site

OUTER_FOLDS = 5
DRAWS = 10

# (training mask, held-out mask, seed) -> (scores of the held-out detections, threshold
# chosen inside, what was chosen, in words)
Procedure = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, float, str]]


@dataclass
class NestedEstimate:
    """Nested figures ([value, low, high]), how they were made, and the outer scores."""

    metrics: dict
    per_draw: list
    chosen: dict
    draws: int
    choices_compared: int
    scores: np.ndarray = field(repr=False)

    def card(self) -> dict:
        """The card's `validation` entry."""
        return {**self.metrics, "method": "nested cross-validation by site",
                "outer_folds": OUTER_FOLDS, "inner_folds": INNER_FOLDS,
                "fold_draws": self.draws, "choices_compared": self.choices_compared,
                "roc_auc_per_draw": [round(a, 4) for a in self.per_draw],
                "chosen": self.chosen,
                "interval": "95%, resampling sites with replacement and one fold draw at "
                            "random per resample (sample and selection)"}


def features_procedure(features: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                       precision: float = PRECISION_TARGET) -> Procedure:
    """The features kind's procedure on precomputed features: inner choice of penalty and
    threshold, then the head trained on all the outer training detections."""

    def run(train: np.ndarray, test: np.ndarray, seed: int):
        choice = inner_choice(features[train], labels[train], groups[train], seed, precision)
        head = fit_change_head(features[train], labels[train], choice.penalty, seed)
        return head.scores(features[test]), choice.threshold, f"C={choice.penalty:g}"

    return run


def nested_estimate(procedure: Procedure, labels: np.ndarray, groups: np.ndarray,
                    seed: int = 1, draws: int = DRAWS, choices: int = len(PENALTIES),
                    progress: Progress | None = None) -> NestedEstimate:
    """Run `procedure` in every outer fold of `draws` fold draws by site; pooled figures
    with intervals over sites and draws."""
    labels = np.asarray(labels)
    n = len(labels)
    scores = np.zeros((draws, n))
    called = np.zeros((draws, n), dtype=bool)
    chosen = Counter()
    steps, done = draws * OUTER_FOLDS, 0
    for r in range(draws):
        fold = folds_by_site(labels, groups, OUTER_FOLDS, seed + r)
        for f in range(OUTER_FOLDS):
            test = fold == f
            if test.any():
                s, threshold, what = procedure(~test, test, seed + r)
                scores[r, test] = s
                called[r, test] = s >= threshold
                chosen[what] += 1
            done += 1
            if progress:
                progress(done, steps, "nested cross-validation")
    metrics, per_draw = intervals_by_site(labels, scores, called, groups, seed)
    return NestedEstimate(metrics, per_draw, dict(chosen.most_common()), draws, choices,
                          scores)
