"""Metrics: ROC AUC, precision and recall with bootstrap intervals, the threshold for a
precision, and when one kind's scores are clearly better than another's."""
import numpy as np
import pytest


def test_a_kind_replaces_the_first_only_when_clearly_better_on_validation():
    from review.learning.metrics import clearly_better, roc_auc

    rng = np.random.default_rng(0)
    y = np.array([0] * 15 + [1] * 15)
    first = rng.random(30) + 0.4 * y
    about_the_same = first + rng.normal(0, 0.05, 30)
    much_better = y + 0.5 * rng.random(30)
    assert roc_auc(y, first) < roc_auc(y, much_better) == 1.0
    assert not clearly_better(y, about_the_same, first, seed=1)
    assert clearly_better(y, much_better, first, seed=1)
    assert not clearly_better(y, first, much_better, seed=1)


def test_each_figure_has_a_seeded_interval_around_it():
    from review.learning.metrics import metrics_with_intervals

    rng = np.random.default_rng(2)
    y = np.array([0] * 30 + [1] * 30)
    s = rng.random(60) + 0.5 * y
    figures = metrics_with_intervals(y, s, 0.8, seed=4, rounds=200)
    for name in ("roc_auc", "precision", "recall"):
        value, low, high = figures[name]
        assert low <= value <= high and low < high
    assert (figures["detections"], figures["verified"], figures["threshold"]) == (60, 30, 0.8)
    assert metrics_with_intervals(y, s, 0.8, seed=4, rounds=200) == figures
    assert metrics_with_intervals(y, s, 0.8, seed=5, rounds=200) != figures
    # One label only: no AUC, and no interval for it (JSON's null, not NaN).
    assert metrics_with_intervals(y[:30], s[:30], 0.8, rounds=200)["roc_auc"] == [None, None, None]


def test_the_threshold_is_the_lowest_that_reaches_the_precision_else_the_best_f1():
    from review.learning.metrics import threshold_for_precision

    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert threshold_for_precision(y, s, 0.75) == (0.3, True)        # 3 of 4 at 0.3 and above
    assert threshold_for_precision(y, s, 1.0) == (0.5, True)
    assert threshold_for_precision(np.array([0, 1]), np.array([0.9, 0.1]), 0.9) == (0.1, False)


def test_roc_auc_is_scikit_learns_area_ties_included():
    from sklearn.metrics import roc_auc_score

    from review.learning.metrics import roc_auc

    rng = np.random.default_rng(7)
    for n in (2, 5, 29, 111):
        for rounded in (False, True):
            y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
            s = rng.random(n).astype(np.float32)
            s = np.round(s, 1) if rounded else s             # many tied scores
            assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert roc_auc(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == 1.0
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_scores_that_are_not_numbers_are_refused_not_counted():
    from review.learning.metrics import roc_auc

    with pytest.raises(ValueError, match="finite"):
        roc_auc(np.array([0, 1, 1]), np.array([0.1, float("nan"), 0.8]))
