"""The features kind's head and how its one knob is chosen: a logistic regression on
standardised features, its L2 penalty picked by cross-validation by site inside whatever
detections it is given (`inner_choice`), with the threshold for a stated precision chosen on
the same inner out-of-fold scores.

A linear head has one knob and fits in milliseconds, so the choice can be redone inside
every outer fold of every fold draw (nested) and inside every step of the labels-saved
simulation, within `train`'s time. The Keras head built from it (pairnet.linear_head)
computes the same scores, so the figures describe the model that is written.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import PRECISION_TARGET, roc_auc, threshold_for_precision
from .splits import folds_by_site

# The inverse L2 penalties compared (scikit-learn's C): each a tenfold step of the half
# decade around the one that did best on the fixture pairs' inner folds.
PENALTIES = (0.001, 0.003, 0.01, 0.03, 0.1)
INNER_FOLDS = 4
# Below this many of a label in the detections it is given, the inner folds would hold
# none of it: the middle penalty is used untried.
INNER_MIN_PER_LABEL = INNER_FOLDS


@dataclass
class LinearHead:
    """Standardisation and logistic weights: score = sigmoid(((x - mean) / scale) . coef + b)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    penalty: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))


def fit_head(features: np.ndarray, labels: np.ndarray, penalty: float) -> LinearHead:
    """Logistic regression with inverse L2 penalty `penalty` on standardised features.
    Deterministic (lbfgs from zero weights). With one label only it scores every detection
    as that label's share (no ranking)."""
    features = np.asarray(features, dtype=np.float64)
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0            # a constant feature carries nothing; keep it finite
    width = features.shape[1]
    if len(np.unique(labels)) < 2:
        share = float(np.mean(labels)) if len(labels) else 0.5
        share = min(max(share, 1e-6), 1 - 1e-6)
        return LinearHead(mean, scale, np.zeros(width), float(np.log(share / (1 - share))),
                          penalty)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=penalty, max_iter=5000)
    model.fit((features - mean) / scale, labels)
    return LinearHead(mean, scale, model.coef_[0].astype(np.float64),
                      float(model.intercept_[0]), penalty)


@dataclass
class Choice:
    """The penalty an inner loop chose, the inner out-of-fold ROC AUC of each penalty, and
    the threshold for the precision target on the chosen one's inner out-of-fold scores."""

    penalty: float
    inner_roc_auc: dict
    threshold: float
    threshold_met: bool


def inner_choice(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int,
                 precision: float = PRECISION_TARGET, penalties=PENALTIES) -> Choice:
    """Choose the penalty by INNER_FOLDS-fold cross-validation by site over these
    detections only (the highest pooled out-of-fold ROC AUC; ties to the stronger
    penalty), and the threshold for `precision` on its out-of-fold scores."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=2)
    middle = penalties[len(penalties) // 2]
    if counts.min() < INNER_MIN_PER_LABEL or len(np.unique(groups)) < INNER_FOLDS:
        return Choice(middle, {}, 0.5, False)
    fold = folds_by_site(labels, groups, INNER_FOLDS, seed)
    best, best_auc, aucs, best_scores = None, -1.0, {}, None
    for penalty in penalties:
        scores = np.zeros(len(labels))
        for k in range(INNER_FOLDS):
            part = fold == k
            scores[part] = fit_head(features[~part], labels[~part], penalty).scores(features[part])
        auc = roc_auc(labels, scores)
        aucs[penalty] = round(auc, 4)
        if best is None or auc > best_auc + 1e-12:
            best, best_auc, best_scores = penalty, auc, scores
    threshold, met = threshold_for_precision(labels, best_scores, precision)
    return Choice(best, aucs, threshold, met)
