"""Site splits: detections within SITE_DISTANCE_M of each other (chained) form one site,
and a site is never on both sides of a split, so a model is never validated on the place
it learned. A seeded validation split (`split_by_site`) and folds (`folds_by_site`).
"""
from __future__ import annotations

import math

import numpy as np

SITE_DISTANCE_M = 3000.0
VALIDATION_FRACTION = 0.25


def site_groups(lon: np.ndarray, lat: np.ndarray, distance_m: float = SITE_DISTANCE_M) -> np.ndarray:
    """Group number per detection: detections within distance_m of each other (chained)
    share a group."""
    n = len(lon)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        dx = (lon[i + 1:] - lon[i]) * 111_320.0 * math.cos(math.radians(lat[i]))
        dy = (lat[i + 1:] - lat[i]) * 110_574.0
        for j in np.flatnonzero(np.hypot(dx, dy) < distance_m):
            parent[find(i + 1 + int(j))] = find(i)
    roots = [find(i) for i in range(n)]
    numbering = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    return np.array([numbering[r] for r in roots])


def split_by_site(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation detections: whole site groups, drawn (seeded) until each
    label has about `fraction` of its detections in validation."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.unique(groups))
    target = {k: max(1, round(fraction * (labels == k).sum())) for k in (0, 1)}
    have = {0: 0, 1: 0}
    validation = np.zeros(len(labels), dtype=bool)
    for group in order:
        members = groups == group
        counts = {k: int((labels[members] == k).sum()) for k in (0, 1)}
        if any(counts[k] and have[k] < target[k] for k in (0, 1)) and \
                all(have[k] + counts[k] <= target[k] + 2 for k in (0, 1)):
            validation |= members
            for k in (0, 1):
                have[k] += counts[k]
    return validation


def folds_by_site(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per detection: whole site groups, labels spread evenly (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    per_fold = np.zeros((k, 2))
    unique = rng.permutation(np.unique(groups))
    sizes = [(groups == g).sum() for g in unique]
    for g in [unique[i] for i in np.argsort(sizes, kind="stable")[::-1]]:
        members = groups == g
        counts = np.array([(labels[members] == 0).sum(), (labels[members] == 1).sum()])
        label = int(np.argmax(counts))
        target = int(np.argmin(per_fold[:, label] + per_fold.sum(axis=1) * 1e-3))
        fold[members] = target
        per_fold[target] += counts
    return fold
