"""The features kind's head and how its one knob is chosen: the mean of a logistic
regression on standardised features and an extra-trees forest (fixed settings), the
regression's L2 penalty picked by cross-validation by site inside whatever detections it is
given (`inner_choice`), with the threshold for a stated precision chosen on the same inner
out-of-fold scores of the whole head.

The head fits in a fraction of a second, so the choice can be redone inside every outer
fold of every fold draw (nested) and inside every step of the labels-saved simulation,
within `train`'s time. The Keras head built from it (pairnet.change_head: the regression's
weights and the forest's trees as arrays) computes the same scores, so the figures describe
the model that is written.

Why the forest (bench/RESULTS.md): trained on 90 pairs and scored on held-out sites of the
634 development pairs, over 10 fold draws, the mean of both gave ROC AUC 0.899 against
0.874 for the regression alone, better in 10 of 10 draws; with both labels weighted to the
same total in the trees, 0.901 against 0.897, better in 10 of 10 draws again.
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


# The forest's settings are fixed, not chosen: 100 trees, a fifth of the features tried at
# each split, at least two detections per leaf, and both labels weighted to the same total
# (verdicts are mostly "verified": unweighted, the few false positives barely move a split;
# bench/RESULTS.md: 0.901 against 0.897 nested on development pairs, better in 10 of 10 draws).
TREES = 100
TREE_FEATURES = 0.2
TREE_LEAF = 2
TREE_WEIGHTS = "balanced"


@dataclass
class Forest:
    """Extra trees as flat arrays (tree x node): the feature and threshold each node tests,
    its children (-1 at a leaf), and the share of mines among the training detections that
    reached it (each label weighted to the same total). Scores are the mean share over trees."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int
    model: object = None            # scikit-learn's forest, for quick scoring while choosing

    def scores(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(np.asarray(features, dtype=np.float32))[:, 1]


def fit_forest(features: np.ndarray, labels: np.ndarray, seed: int) -> Forest | None:
    """The extra-trees forest on these detections (seeded); None with one label only."""
    if len(np.unique(labels)) < 2:
        return None
    from sklearn.ensemble import ExtraTreesClassifier

    model = ExtraTreesClassifier(TREES, max_features=TREE_FEATURES, min_samples_leaf=TREE_LEAF,
                                 class_weight=TREE_WEIGHTS, random_state=seed, n_jobs=1)
    model.fit(np.asarray(features, dtype=np.float32), labels)
    trees = [e.tree_ for e in model.estimators_]
    nodes = max(t.node_count for t in trees)
    shape = (len(trees), nodes)
    feature, left = np.zeros(shape, np.int32), np.full(shape, -1, np.int32)
    right, threshold = np.full(shape, -1, np.int32), np.zeros(shape, np.float64)
    value = np.zeros(shape, np.float32)
    for i, t in enumerate(trees):
        n = t.node_count
        leaf = t.children_left[:n] < 0
        feature[i, :n] = np.where(leaf, 0, t.feature[:n])   # a leaf tests nothing
        threshold[i, :n] = t.threshold[:n]
        left[i, :n], right[i, :n] = t.children_left[:n], t.children_right[:n]
        counts = t.value[:n, 0, :]
        value[i, :n] = counts[:, 1] / counts.sum(axis=1)
    return Forest(feature, threshold, left, right, value,
                  max(t.max_depth for t in trees), model)


@dataclass
class ChangeHead:
    """The features kind's head: the mean of the regression's and the forest's scores (the
    regression alone when the forest could not be grown)."""

    linear: LinearHead
    forest: Forest | None

    def scores(self, features: np.ndarray) -> np.ndarray:
        s = self.linear.scores(features)
        return s if self.forest is None else (s + self.forest.scores(features)) / 2


def fit_change_head(features: np.ndarray, labels: np.ndarray, penalty: float,
                    seed: int) -> ChangeHead:
    return ChangeHead(fit_head(features, labels, penalty), fit_forest(features, labels, seed))


def keras_head(head: ChangeHead):
    """The same head as a Keras model (pairnet.change_head), for the model written."""
    from ..detection.pairnet import change_head

    linear = head.linear
    return change_head(linear.mean, linear.scale, linear.coef, linear.intercept, head.forest)


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
    detections only (the highest pooled out-of-fold ROC AUC of the whole head; ties to the
    stronger penalty), and the threshold for `precision` on its out-of-fold scores. The
    forest does not depend on the penalty: it is grown once per inner fold."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=2)
    middle = penalties[len(penalties) // 2]
    if counts.min() < INNER_MIN_PER_LABEL or len(np.unique(groups)) < INNER_FOLDS:
        return Choice(middle, {}, 0.5, False)
    fold = folds_by_site(labels, groups, INNER_FOLDS, seed)
    forest_scores = np.full(len(labels), np.nan)
    for k in range(INNER_FOLDS):
        part = fold == k
        forest = fit_forest(features[~part], labels[~part], seed)
        if forest is not None:
            forest_scores[part] = forest.scores(features[part])
    best, best_auc, aucs, best_scores = None, -1.0, {}, None
    for penalty in penalties:
        scores = np.zeros(len(labels))
        for k in range(INNER_FOLDS):
            part = fold == k
            scores[part] = fit_head(features[~part], labels[~part], penalty).scores(features[part])
        scores = np.where(np.isnan(forest_scores), scores, (scores + forest_scores) / 2)
        auc = roc_auc(labels, scores)
        aucs[penalty] = round(auc, 4)
        if best is None or auc > best_auc + 1e-12:
            best, best_auc, best_scores = penalty, auc, scores
    threshold, met = threshold_for_precision(labels, best_scores, precision)
    return Choice(best, aucs, threshold, met)
