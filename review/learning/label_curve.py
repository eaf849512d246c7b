"""The labels-saved curve: does reviewing in the "most uncertain" order teach a model more
per verdict than reviewing at random?

A simulation on detections whose labels are known (the database's verdicts, or the fixture
pairs in bench/label_curve.py). In each outer fold by site (the same folds as the nested
estimate), the other folds are the pool a reviewer works through: START detections drawn at
random, then STEP more at a time, either the STEP the current model is least sure of
(closest to its threshold, as Review's order "most uncertain under the trained model
first" does) or STEP at random; the model is retrained after every STEP verdicts with the
features kind's whole procedure (inner choice of penalty and threshold). Each model scores
the held-out fold, which is never reviewed; the curve is the pooled ROC AUC of those scores
against the number of verdicts, the mean over fold draws.

The order only decides which labels a model learns from. No estimate of area or of a
model's accuracy is made from detections reviewed in this order (area comes only from the
assessment's samples).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..progress import Progress
from .metrics import PRECISION_TARGET, roc_auc
from .nested import OUTER_FOLDS
from .selection import fit_change_head, inner_choice
from .splits import folds_by_site

START = 10
STEP = 10
ORDERS = ("uncertain", "random")


@dataclass
class LabelCurve:
    """ROC AUC on held-out folds after n verdicts, per order: mean, low and high over draws."""

    verdicts: list
    curves: dict             # order -> {"mean": [...], "low": [...], "high": [...]}
    draws: int

    def needed(self, order: str, target: float) -> int | None:
        """Verdicts the order needed before its mean curve reached `target` (None: never)."""
        for n, auc in zip(self.verdicts, self.curves[order]["mean"]):
            if auc >= target:
                return n
        return None

    def saved(self) -> list[dict]:
        """For a few targets: verdicts each order needed and how many the uncertain order
        saved (negative: it cost more). Targets: 0.80, 0.85 and the random order's last
        figure less 0.01."""
        last = self.curves["random"]["mean"][-1]
        targets = sorted({0.80, 0.85, round(last - 0.01, 2)})
        rows = []
        for target in targets:
            uncertain, random = self.needed("uncertain", target), self.needed("random", target)
            rows.append({"roc_auc": target, "uncertain": uncertain, "random": random,
                         "saved": (random - uncertain) if uncertain is not None
                         and random is not None else None})
        return rows

    def card(self) -> dict:
        return {"verdicts": self.verdicts, "draws": self.draws, "start": START, "step": STEP,
                **{order: {k: [round(v, 4) for v in values] for k, values in c.items()}
                   for order, c in self.curves.items()},
                "saved": self.saved()}


def simulate(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int = 1,
             draws: int = 3, precision: float = PRECISION_TARGET,
             progress: Progress | None = None) -> LabelCurve:
    """Simulated reviewing in the uncertain and the random order (module docstring)."""
    labels = np.asarray(labels)
    folds = [folds_by_site(labels, groups, OUTER_FOLDS, seed + r) for r in range(draws)]
    smallest_pool = min(int((fold != f).sum()) for fold in folds for f in range(OUTER_FOLDS))
    grid = list(range(START, smallest_pool + 1, STEP))
    auc = {order: np.zeros((draws, len(grid))) for order in ORDERS}
    steps, done = draws * OUTER_FOLDS * len(ORDERS), 0
    for r, fold in enumerate(folds):
        for order in ORDERS:
            scores = np.zeros((len(grid), len(labels)))
            for f in range(OUTER_FOLDS):
                test = fold == f
                pool = np.flatnonzero(~test)
                # The same first verdicts for both orders: only the order after them differs.
                shuffled = np.random.default_rng([seed, r, f]).permutation(pool)
                _review(features, labels, groups, shuffled, test, order, grid, seed + r,
                        precision, scores)
                done += 1
                if progress:
                    progress(done, steps, f"simulating the {order} order")
            auc[order][r] = [roc_auc(labels, s) for s in scores]
    curves = {order: {"mean": list(a.mean(axis=0)), "low": list(a.min(axis=0)),
                      "high": list(a.max(axis=0))} for order, a in auc.items()}
    return LabelCurve(grid, curves, draws)


def _review(features, labels, groups, shuffled, test, order, grid, seed, precision,
            scores) -> None:
    """One outer fold: verdicts taken from `shuffled` in `order`; scores of the held-out
    detections after each number of verdicts in `grid`, written into `scores`."""
    labelled = list(shuffled[:START])
    waiting = list(shuffled[START:])       # random order: simply the rest of the shuffle
    head = choice = None
    for row, n in enumerate(grid):
        while len(labelled) < n:           # the next STEP verdicts, chosen by the last model
            take = n - len(labelled)
            if order == "random":
                picked = waiting[:take]
            else:
                distance = np.abs(head.scores(features[waiting]) - choice.threshold)
                picked = [waiting[i] for i in np.argsort(distance, kind="stable")[:take]]
            labelled += picked
            chosen = set(picked)
            waiting = [i for i in waiting if i not in chosen]
        at = np.array(labelled)
        choice = inner_choice(features[at], labels[at], groups[at], seed, precision)
        head = fit_change_head(features[at], labels[at], choice.penalty, seed)
        scores[row, test] = head.scores(features[test])
