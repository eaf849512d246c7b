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
    from review.learning.metrics import intervals_by_site

    rng = np.random.default_rng(2)
    y = np.array([0] * 30 + [1] * 30)
    s = rng.random(60) + 0.5 * y
    sites = np.arange(60)

    def figures(seed, yy=y, ss=s, groups=sites):
        return intervals_by_site(yy, ss[None], (ss >= 0.8)[None], groups, seed, rounds=200)[0]

    first = figures(4)
    for name in ("roc_auc", "precision", "recall"):
        value, low, high = first[name]
        assert low <= value <= high and low < high
    assert (first["detections"], first["verified"], first["sites"]) == (60, 30, 60)
    assert figures(4) == first and figures(5) != first
    # One label only: no AUC, and no interval for it (JSON's null, not NaN).
    assert figures(4, y[:30], s[:30], sites[:30])["roc_auc"] == [None, None, None]


def test_the_interval_resamples_whole_sites_and_carries_the_spread_between_draws():
    """Ten detections of one place count as one place: the interval is wider than if they
    were ten places; and draws that disagree widen it beyond one draw's."""
    from review.learning.metrics import intervals_by_site

    rng = np.random.default_rng(7)
    y = np.repeat([0, 1] * 6, 10)                     # 12 sites of 10 detections, one label each
    s = rng.random(120) * 0.6 + 0.4 * y + np.repeat(rng.normal(0, 0.3, 12), 10)
    called = (s >= 0.6)[None]
    by_site, _ = intervals_by_site(y, s[None], called, np.repeat(np.arange(12), 10), 1)
    as_if_apart, _ = intervals_by_site(y, s[None], called, np.arange(120), 1)
    width = lambda f: f["roc_auc"][2] - f["roc_auc"][1]  # noqa: E731
    assert by_site["sites"] == 12
    assert width(by_site) > 1.5 * width(as_if_apart)
    noisy = np.stack([s, s + rng.normal(0, 0.4, 120)])
    spread, per_draw = intervals_by_site(y, noisy, noisy >= 0.6, np.arange(120), 1)
    assert len(per_draw) == 2 and per_draw[0] != per_draw[1]
    assert spread["roc_auc"][0] == round(float(np.mean(per_draw)), 4)
    assert width(spread) > width(as_if_apart)


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
