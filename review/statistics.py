"""Shared statistics: the Wilson interval of a proportion, the ratio estimator of a
stratum's verified area from a random sample, and percentile bootstrap intervals.
Used by trends, sampling and area assessment (analysis) and by model metrics (learning)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ReviewError

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) with no trials."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class SampleEstimate:
    """Verified area of a stratum estimated from a simple random sample of its detections.

    For a drawn sample (review.analysis.sampling) `drawn` is how many members were drawn
    and `used` how many of them, the first in drawn order, the estimate rests on: a prefix
    of a random order is itself a simple random sample, a subset picked by what people
    happened to review is not. `left_out` members were decided beyond that prefix and are
    not used; `stopped_at` says which member ends the prefix and why. Without `drawn` the
    caller vouches that the `sample_size` reviewed were drawn at random."""

    stratum_detections: int
    stratum_area_ha: float
    sample_size: int
    verified_area_ha: float          # point estimate for the whole stratum
    low_ha: float
    high_ha: float
    ratio: float                     # verified share of area in the sample
    drawn: int | None = None         # members drawn; None: not a stored sample
    used: int | None = None          # the first `used` members in drawn order, all decided
    left_out: int = 0                # members decided beyond that prefix, not used
    stopped_at: str | None = None    # the member that ends the prefix, in words

    def summary(self) -> str:
        if math.isnan(self.low_ha):
            interval = "no interval from fewer than two"
        else:
            interval = f"95% CI {self.low_ha:,.1f} to {self.high_ha:,.1f}"
        text = (f"{self.verified_area_ha:,.1f} ha verified ({interval}) of "
                f"{self.stratum_area_ha:,.1f} ha in {self.stratum_detections:,} detections, ")
        if self.drawn is None:
            return text + f"from {self.sample_size} reviewed at random"
        used = self.sample_size if self.used is None else self.used
        if used == self.drawn:
            text += f"from all {self.drawn} drawn at random, every one reviewed"
        else:
            text += (f"from the first {used} of {self.drawn} drawn, reviewed in drawn order "
                     f"(itself a random sample)")
            if self.stopped_at:
                text += f"; the drawn order stops at {self.stopped_at}"
        if self.left_out:
            text += (f"; {self.left_out} member{'s' if self.left_out != 1 else ''} decided past that "
                     f"point {'are' if self.left_out != 1 else 'is'} left out: with a gap before "
                     f"them, they are a subset chosen by what was reviewed, not at random")
        return text


def ratio_estimate(sample_areas: list[float], sample_verified: list[bool], stratum_count: int,
                   stratum_area: float, z: float = Z95) -> SampleEstimate:
    """Ratio estimator of verified area: R = sum(verified area) / sum(area) in the sample,
    total = R * stratum area; its variance with the finite population correction
    (Cochran, Sampling Techniques, 6.9)."""
    n = len(sample_areas)
    if n == 0:
        raise ReviewError("the sample has no reviewed detections yet")
    x = [float(a) for a in sample_areas]
    y = [a if ok else 0.0 for a, ok in zip(x, sample_verified)]
    sum_x = sum(x)
    if sum_x <= 0:
        raise ReviewError("the sampled detections have no area")
    ratio = sum(y) / sum_x
    total = ratio * stratum_area
    if n < 2:
        return SampleEstimate(stratum_count, stratum_area, n, total, math.nan, math.nan, ratio)
    residual = sum((yi - ratio * xi) ** 2 for xi, yi in zip(x, y)) / (n - 1)
    mean_x = sum_x / n
    fpc = max(0.0, 1 - n / stratum_count)
    se_ratio = math.sqrt(fpc * residual / n) / mean_x
    half = z * se_ratio * stratum_area
    return SampleEstimate(stratum_count, stratum_area, n, total, max(0.0, total - half),
                          min(stratum_area, total + half), ratio)


def bootstrap(statistic, arrays, n: int, seed: int) -> list:
    """The values of `statistic` on `n` paired bootstrap resamples of `arrays` (seeded).

    Each round draws len(arrays[0]) indices with replacement from one
    numpy.random.default_rng(seed), in this order, and calls statistic(*resampled arrays),
    the same indices for every array (a paired resample: labels stay with their scores).
    A statistic that returns None for a resample leaves it uncounted (e.g. one with a
    single class, where ROC AUC is undefined); the others' values are returned in order.
    `percentile_interval` turns them into an interval."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    values = []
    for _ in range(n):
        pick = rng.integers(0, size, size)
        value = statistic(*(np.asarray(a)[pick] for a in arrays))
        if value is not None:
            values.append(value)
    return values


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap values, NaNs left out; (nan, nan)
    with none."""
    import numpy as np

    kept = np.array([float(v) for v in values if not math.isnan(v)])
    if not len(kept):
        return math.nan, math.nan
    tail = (100 - 100 * level) / 2
    low, high = np.percentile(kept, [tail, 100 - tail])
    return float(low), float(high)
