"""Shared statistics: the Wilson interval of a proportion and the percentile bootstrap that
model metrics use (review.statistics)."""
import math

import numpy as np
import pytest

from review.statistics import bootstrap, percentile_interval, wilson_interval


def _mean_interval(values, seed=1, n=500):
    draws = bootstrap(lambda x: float(np.mean(x)), (np.asarray(values, float),), n, seed)
    return float(np.mean(values)), percentile_interval(draws), draws


def test_the_interval_holds_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    few, many = rng.normal(5, 2, 20), rng.normal(5, 2, 2000)
    estimate, (low, high), _ = _mean_interval(few)
    assert low < estimate < high
    estimate_many, (low_many, high_many), _ = _mean_interval(many)
    assert low_many < estimate_many < high_many
    assert high_many - low_many < (high - low) / 4        # 100 times the data: about a tenth


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    values = np.arange(30.0)
    assert _mean_interval(values, seed=3)[2] == _mean_interval(values, seed=3)[2]
    assert _mean_interval(values, seed=3)[2] != _mean_interval(values, seed=4)[2]


def test_resamples_are_paired_and_those_the_statistic_refuses_are_not_counted():
    labels, scores = np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 0.0, 1.0])

    def agreement(y, s):
        # Labels travel with their scores: every resample agrees exactly.
        assert (y == s).all()
        return None if len(set(y)) < 2 else 1.0

    draws = bootstrap(agreement, (labels, scores), 200, seed=1)
    assert 0 < len(draws) < 200 and set(draws) == {1.0}     # one-label resamples left out


def test_an_interval_leaves_nans_out_and_is_nan_without_values():
    assert percentile_interval([1.0, math.nan, 3.0, math.nan, 2.0]) == (1.05, 2.95)
    low, high = percentile_interval([math.nan])
    assert math.isnan(low) and math.isnan(high)
    assert percentile_interval(range(101), level=0.9) == (5.0, 95.0)


def test_wilson_interval_matches_hand_computation():
    # 8 of 10: centre (0.8 + z²/20) / (1 + z²/10), half z·sqrt(0.016 + z²/400) / (1 + z²/10)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(0.4345, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
