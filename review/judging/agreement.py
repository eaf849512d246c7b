"""How far reviewers agree: the first question an editor or a researcher asks of hand labels.

Each reviewer's latest standing verdict on a detection counts (undos applied), in three
categories: verified, false_positive, unsure. For every pair of reviewers: the detections
both judged, percent agreement and Cohen's kappa. Overall: detections judged by at least
two reviewers, the first two reviewers' verdicts (by when they first judged it), percent
agreement and Fleiss' kappa on those two ratings, with a 95% bootstrap interval over
detections (seeded, so the same data give the same interval).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..statistics import bootstrap as resampled
from ..statistics import percentile_interval
from .verdicts import UNDO, VERDICTS, decisions

CATEGORIES = tuple(VERDICTS)          # verified, false_positive, unsure
BOOTSTRAP = 2000
# Below this many detections judged twice, kappa and its interval say little (Fleiss and
# Cohen's kappa are unstable on small samples; a common floor is 30 subjects).
ENOUGH_TWICE = 30


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two raters' labels (NaN when chance agreement is total)."""
    labels = sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in zip(a, b):
        table[index[x], index[y]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = (table.sum(axis=1) @ table.sum(axis=0)) / n ** 2
    return float("nan") if expected == 1 else float((observed - expected) / (1 - expected))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of a (subjects x categories) table of rating counts, the same number
    of ratings per subject."""
    counts = np.asarray(counts, dtype=float)
    subjects, raters = counts.shape[0], counts[0].sum()
    p_category = counts.sum(axis=0) / (subjects * raters)
    p_subject = ((counts ** 2).sum(axis=1) - raters) / (raters * (raters - 1))
    observed, expected = p_subject.mean(), (p_category ** 2).sum()
    return float("nan") if expected == 1 else float((observed - expected) / (1 - expected))


@dataclass
class Agreement:
    detections: int = 0
    percent_agreement: float | None = None
    kappa: float | None = None
    kappa_low: float | None = None
    kappa_high: float | None = None
    pairs: list[dict] = field(default_factory=list)

    @property
    def too_few(self) -> str | None:
        """Why the figures do not mean much yet, in a sentence; None when enough were judged."""
        if self.detections >= ENOUGH_TWICE:
            return None
        return (f"only {self.detections} detection{'s' if self.detections != 1 else ''} judged by "
                f"two reviewers: too few for agreement or kappa to mean much (at least "
                f"{ENOUGH_TWICE} are needed)")

    def to_json(self) -> dict:
        return {"overall": {"detections": self.detections, "too_few": self.too_few,
                            "percent_agreement": _clean(self.percent_agreement),
                            "kappa": _clean(self.kappa), "kappa_low": _clean(self.kappa_low),
                            "kappa_high": _clean(self.kappa_high)},
                "pairs": [{**p, "percent_agreement": _clean(p["percent_agreement"]),
                           "kappa": _clean(p["kappa"])} for p in self.pairs]}


def _clean(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 6)


def latest_verdicts(db) -> dict[int, list[tuple[str, str]]]:
    """Per detection: (reviewer, latest standing verdict), reviewers in the order they
    first judged it."""
    histories: dict[tuple[int, str], list[str]] = {}
    first_seen: dict[tuple[int, str], int] = {}
    for verdict_id, detection_id, reviewer, verdict in db.execute(
            "select id, detection_id, reviewer, verdict from verdicts order by id"):
        key = (detection_id, reviewer)
        histories.setdefault(key, []).append(verdict)
        first_seen.setdefault(key, verdict_id)
    found: dict[int, list[tuple[int, str, str]]] = {}
    for (detection_id, reviewer), history in histories.items():
        standing = decisions(history)
        if standing and standing[-1] != UNDO:
            found.setdefault(detection_id, []).append(
                (first_seen[(detection_id, reviewer)], reviewer, standing[-1]))
    return {d: [(r, v) for _, r, v in sorted(rows)] for d, rows in found.items() if rows}


def agreement(db, seed: int = 1, bootstrap: int = BOOTSTRAP) -> Agreement:
    judged = latest_verdicts(db)
    pairs = []
    reviewers = sorted({r for rows in judged.values() for r, _ in rows})
    for a, b in itertools.combinations(reviewers, 2):
        both = [(dict(rows)[a], dict(rows)[b]) for rows in judged.values()
                if a in dict(rows) and b in dict(rows)]
        if not both:
            continue
        first, second = [x for x, _ in both], [y for _, y in both]
        pairs.append({"reviewer_a": a, "reviewer_b": b, "detections": len(both),
                      "percent_agreement": 100 * float(np.mean([x == y for x, y in both])),
                      "kappa": cohen_kappa(first, second)})
    twice = [rows[:2] for rows in judged.values() if len(rows) >= 2]
    result = Agreement(pairs=pairs)
    if not twice:
        return result
    counts = np.array([[sum(v == c for _, v in rows) for c in CATEGORIES] for rows in twice])
    result.detections = len(twice)
    result.percent_agreement = 100 * float(np.mean([a[1] == b[1] for a, b in twice]))
    result.kappa = fleiss_kappa(counts)
    low, high = percentile_interval(resampled(fleiss_kappa, (counts,), bootstrap, seed))
    if not math.isnan(low) and not math.isnan(result.kappa):
        # A skewed or lumpy bootstrap can leave the estimate outside its percentile
        # interval; the interval reported always holds it.
        result.kappa_low, result.kappa_high = min(low, result.kappa), max(high, result.kappa)
    return result


def second_opinion_record(db) -> list[dict]:
    """Per reviewer: how many of their first looks met a second opinion, and how many stood
    (the second reviewer agreed)."""
    judged = latest_verdicts(db)
    tally: dict[str, list[int]] = {}
    for rows in judged.values():
        if len(rows) >= 2:
            (first, verdict), (_, other) = rows[0], rows[1]
            seen = tally.setdefault(first, [0, 0])
            seen[0] += 1
            seen[1] += verdict == other
    return [{"reviewer": r, "second_opinions": n, "stood": s, "stood_percent": 100 * s / n}
            for r, (n, s) in sorted(tally.items())]


def disputed_reasons(db) -> list[dict]:
    """False-positive reasons by how often a second reviewer disagreed with them."""
    rows = db.execute("select detection_id, reviewer, verdict, reason from verdicts "
                      "where verdict != 'undo' order by id").fetchall()
    first: dict[int, tuple[str, str, str | None]] = {}
    disputes: dict[str, list[int]] = {}
    for detection_id, reviewer, verdict, reason in rows:
        if detection_id not in first:
            first[detection_id] = (reviewer, verdict, reason)
            continue
        by, first_verdict, first_reason = first[detection_id]
        if reviewer == by or first_verdict != "false_positive" or first_reason is None:
            continue
        counts = disputes.setdefault(first_reason, [0, 0])
        counts[0] += 1
        counts[1] += verdict != "false_positive"
        first[detection_id] = (by, "", None)         # count only the first second look
    return sorted(({"reason": r, "second_looks": n, "disputed": d} for r, (n, d) in disputes.items()),
                  key=lambda row: (-row["disputed"], row["reason"]))
