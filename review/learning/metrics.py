"""How well scores separate the labels: ROC AUC, precision and recall at a threshold with
percentile bootstrap intervals (review.statistics.bootstrap), the threshold that reaches a
stated precision, and whether one kind's scores are clearly better than another's. Training
(train, fitting, crossval) and evaluation (evaluate) report the same figures through it.
"""
from __future__ import annotations

import math

import numpy as np

from ..statistics import bootstrap, percentile_interval

PRECISION_TARGET = 0.9
BOOTSTRAP = 1000


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of scores `s` for labels `y` (1 positive); nan unless both labels are present.

    Computed as the Mann-Whitney statistic with average ranks for ties, which equals the area
    under the trapezoidal ROC curve (scikit-learn's roc_auc_score) and is a hundred times
    quicker: the bootstrap calls it a thousand times per figure."""
    from scipy.stats import rankdata

    s = np.asarray(s, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError("ROC AUC needs finite scores; some are NaN or infinite")
    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall_at(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    """(precision, recall) of calling scores at or above `threshold` positive; nan if undefined."""
    predicted = s >= threshold
    tp = int((predicted & (y == 1)).sum())
    precision = tp / predicted.sum() if predicted.sum() else float("nan")
    recall = tp / (y == 1).sum() if (y == 1).sum() else float("nan")
    return float(precision), float(recall)


def _round(x) -> float | None:
    """x to 4 decimals; None for nan (JSON has no nan)."""
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


def threshold_for_precision(y: np.ndarray, s: np.ndarray, target: float = PRECISION_TARGET
                            ) -> tuple[float, bool]:
    """The lowest score threshold whose precision on (y, s) reaches the target (most recall
    at that precision); when none does, the threshold of the best F1. Returns (threshold,
    whether the target was met)."""
    candidates = np.unique(s)[::-1]
    best = None
    for t in candidates:
        p, _ = precision_recall_at(y, s, t)
        if not math.isnan(p) and p >= target:
            best = float(t)
    if best is not None:
        return best, True
    f1 = []
    for t in candidates:
        p, r = precision_recall_at(y, s, t)
        f1.append(0 if (math.isnan(p) or p + r == 0) else 2 * p * r / (p + r))
    return float(candidates[int(np.argmax(f1))]) if len(candidates) else 0.5, False


def clearly_better(y: np.ndarray, challenger: np.ndarray, incumbent: np.ndarray, seed: int,
                   rounds: int = BOOTSTRAP) -> bool:
    """Whether the challenger's validation ROC AUC beats the incumbent's beyond the luck
    of a small validation set: higher in at least 97.5% of paired bootstrap resamples.

    With thirty validation detections, two kinds' AUCs differ by a few hundredths by
    chance; swapping to whichever happens to be higher cost about 0.04 of cross-validated
    AUC on the fixture pairs (bench/RESULTS.md)."""
    if not len(y) or len(np.unique(y)) < 2:
        return False

    def challenger_wins(yy, cc, ii):
        if len(np.unique(yy)) < 2:
            return None
        return roc_auc(yy, cc) > roc_auc(yy, ii)

    wins = bootstrap(challenger_wins, (y, challenger, incumbent), rounds, seed)
    return len(wins) > 0 and sum(wins) >= 0.975 * len(wins)


def _precision_recall_called(y: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    tp = int((called & (y == 1)).sum())
    precision = tp / called.sum() if called.sum() else float("nan")
    recall = tp / (y == 1).sum() if (y == 1).sum() else float("nan")
    return float(precision), float(recall)


def intervals_by_site(y: np.ndarray, scores: np.ndarray, called: np.ndarray,
                      groups: np.ndarray, seed: int = 0, rounds: int = BOOTSTRAP
                      ) -> tuple[dict, list]:
    """ROC AUC, precision and recall, each [value, low, high], from one or more draws of
    scores for the same detections (`scores`, `called`: draws x detections; `called` is
    whether each was called a mine at its threshold).

    The value is the mean over draws. The 95% interval resamples whole sites (`groups`)
    with replacement, since detections of one place rise and fall together, and takes one
    draw at random per resample, so it also carries the spread between draws (for nested
    cross-validation: the partition and the choices made inside it). Returns (figures,
    ROC AUC of each draw)."""
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    called = np.atleast_2d(np.asarray(called, dtype=bool))
    per_draw = [roc_auc(y, s) for s in scores]
    pr = [_precision_recall_called(y, c) for c in called]
    values = {"roc_auc": float(np.mean(per_draw)),
              "precision": float(np.nanmean([p for p, _ in pr])) if any(
                  not math.isnan(p) for p, _ in pr) else float("nan"),
              "recall": float(np.mean([r for _, r in pr]))}
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in values}
    for _ in range(rounds):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        yy = y[pick]
        if len(np.unique(yy)) < 2:
            continue                     # ROC AUC has no value on one label
        r = int(rng.integers(0, len(scores)))
        p, rec = _precision_recall_called(yy, called[r, pick])
        draws["roc_auc"].append(roc_auc(yy, scores[r, pick]))
        draws["precision"].append(p)
        draws["recall"].append(rec)
    out = {}
    for k, v in values.items():
        low, high = percentile_interval(draws[k])
        out[k] = [_round(v), _round(low), _round(high)]
    out["detections"] = int(len(y))
    out["verified"] = int((y == 1).sum())
    out["sites"] = len(members)
    return out, per_draw
