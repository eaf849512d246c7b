"""How far reviewers agree: the first question an editor or a researcher asks of hand labels.

Each reviewer's latest standing verdict on a detection counts (undos applied), in three
categories: verified, false_positive, unsure. Only verdicts on detections count: rows of
the verdicts table that label something else (area-assessment units, whose detection_id
is null) are left out of every query here.

For every pair of reviewers: the detections both judged, percent agreement, Cohen's
kappa, Gwet's AC1 and Krippendorff's alpha. Overall: detections judged by at least two
reviewers, the first two reviewers' verdicts (by when they first judged it), percent
agreement, Fleiss' kappa, Gwet's AC1 and Krippendorff's alpha on those two ratings, each
with a 95% bootstrap interval over detections (the same seeded resamples for all three,
so the same data give the same intervals). Alpha could take every reviewer's verdict (it
allows missing ratings), but third looks are asked for where the first two disagree, so
adding them would weigh disputed detections more; all three overall figures describe the
one table of first-two ratings instead.

Why three coefficients. Kappa corrects agreement for chance using the raters' own
category shares; when one category holds most ratings (98% of Amazon Mining Watch's
detections checked were real mines), chance agreement nears 1 and kappa collapses even
when reviewers agree on nearly everything (the kappa paradox: Feinstein and Cicchetti
1990). Gwet's AC1 (Gwet 2008) takes chance agreement as sum(pi_k (1 - pi_k)) / (q - 1),
small at high prevalence, so it does not collapse; q is the number of categories offered
to reviewers (3), not only those used. Krippendorff's alpha (nominal) behaves like kappa
here and is given for researchers who report it. `Agreement.prevalence_note` says when
to read AC1 rather than kappa: see PREVALENCE_SHARE and KAPPA_GAP.
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
# The kappa paradox is said when one category holds at least this share of the overall
# ratings and kappa lies at least KAPPA_GAP below the share of detections judged alike
# (as a proportion), or cannot be computed at all.
PREVALENCE_SHARE = 0.80
KAPPA_GAP = 0.20


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


def _weights(counts: np.ndarray, weights) -> np.ndarray:
    return np.ones(len(counts)) if weights is None else np.asarray(weights, dtype=float)


def fleiss_kappa(counts: np.ndarray, weights=None) -> float:
    """Fleiss' kappa of a (subjects x categories) table of rating counts, the same number
    of ratings per subject. `weights`: how many times each row counts (a bootstrap
    resample as counts of distinct rows); each once by default."""
    counts = np.asarray(counts, dtype=float)
    w = _weights(counts, weights)
    subjects, raters = w.sum(), counts[0].sum()
    p_category = (w @ counts) / (subjects * raters)
    p_subject = ((counts ** 2).sum(axis=1) - raters) / (raters * (raters - 1))
    observed, expected = (w @ p_subject) / subjects, (p_category ** 2).sum()
    return float("nan") if expected == 1 else float((observed - expected) / (1 - expected))


def gwet_ac1(counts: np.ndarray, categories: int = len(CATEGORIES), weights=None) -> float:
    """Gwet's AC1 (Gwet 2008) of a (subjects x categories) table of rating counts, any
    number of raters per subject (`weights` as in fleiss_kappa).

    Agreement pa: over subjects rated at least twice, the mean of
    sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)); chance agreement pe =
    sum_k pi_k (1 - pi_k) / (q - 1), pi_k the mean over rated subjects of r_ik / r_i and q
    the number of categories on the scale (`categories`, by default the three verdicts,
    whether used or not). With two ratings per subject this is the two-rater AC1:
    pi_k = (p_k. + p_.k) / 2. NaN with no subject rated twice."""
    counts = np.asarray(counts, dtype=float)
    w, raters = _weights(counts, weights), counts.sum(axis=1)
    rated = raters >= 1                          # a subject nobody rated says nothing
    counts, raters, w = counts[rated], raters[rated], w[rated]
    twice = raters >= 2
    if categories < 2 or w[twice].sum() == 0:
        return float("nan")
    r = raters[twice]
    alike = (counts[twice] * (counts[twice] - 1)).sum(axis=1) / (r * (r - 1))
    pa = float(w[twice] @ alike / w[twice].sum())
    pi = (w @ (counts / raters[:, None])) / w.sum()
    pe = float((pi * (1 - pi)).sum() / (categories - 1))
    return (pa - pe) / (1 - pe)


def krippendorff_alpha(counts: np.ndarray, weights=None) -> float:
    """Krippendorff's alpha, nominal level, of a (units x categories) table of value counts
    (`weights` as in fleiss_kappa); units with fewer than two values (not pairable) are
    left out, so missing ratings are allowed. alpha = 1 - (n - 1) * sum_u (m_u^2 -
    sum_c r_uc^2) / (m_u - 1) / (n^2 - sum_c n_c^2), n_c the pairable values of category c
    (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"). NaN when every
    pairable value is the same (no expected disagreement)."""
    counts = np.asarray(counts, dtype=float)
    w, m = _weights(counts, weights), counts.sum(axis=1)
    pairable = m >= 2
    counts, m, w = counts[pairable], m[pairable], w[pairable]
    n_c = w @ counts
    n = n_c.sum()
    expected = n * n - (n_c ** 2).sum()
    if n < 2 or expected == 0:
        return float("nan")
    observed = w @ ((m * m - (counts ** 2).sum(axis=1)) / (m - 1))
    return float(1 - (n - 1) * observed / expected)


def rating_counts(rows: list[list[str]]) -> np.ndarray:
    """The (subjects x CATEGORIES) table of how many ratings each subject got in each
    category, from each subject's list of labels."""
    index = {c: i for i, c in enumerate(CATEGORIES)}
    table = np.zeros((len(rows), len(CATEGORIES)), dtype=int)
    for subject, labels in enumerate(rows):
        for label in labels:
            table[subject, index[label]] += 1
    return table


def _overall(counts: np.ndarray, weights=None) -> tuple[float, float, float]:
    return (fleiss_kappa(counts, weights), gwet_ac1(counts, weights=weights),
            krippendorff_alpha(counts, weights))


def _bootstrap(counts: np.ndarray, n: int, seed: int) -> list[tuple[float, float, float]]:
    """The three overall coefficients on `n` bootstrap resamples of the detections (seeded,
    review.statistics.bootstrap). Two ratings in three categories make few distinct rows,
    so each resample is counted as how often it drew each distinct row: cheap at any size."""
    distinct, codes = np.unique(counts, axis=0, return_inverse=True)
    size = len(distinct)
    return resampled(lambda picked: _overall(distinct, np.bincount(picked, minlength=size)),
                     (codes.reshape(-1),), n, seed)


@dataclass
class Agreement:
    detections: int = 0
    percent_agreement: float | None = None
    kappa: float | None = None
    kappa_low: float | None = None
    kappa_high: float | None = None
    pairs: list[dict] = field(default_factory=list)
    ac1: float | None = None
    ac1_low: float | None = None
    ac1_high: float | None = None
    alpha: float | None = None
    alpha_low: float | None = None
    alpha_high: float | None = None
    top_category: str | None = None       # the most frequent category of the overall ratings
    top_share: float | None = None        # ... and its share of them (0 to 1)

    @property
    def too_few(self) -> str | None:
        """Why the figures do not mean much yet, in a sentence; None when enough were judged."""
        if self.detections >= ENOUGH_TWICE:
            return None
        return (f"only {self.detections} detection{'s' if self.detections != 1 else ''} judged by "
                f"two reviewers: too few for agreement or kappa to mean much (at least "
                f"{ENOUGH_TWICE} are needed)")

    @property
    def prevalence_note(self) -> str | None:
        """When kappa misleads because one category holds most ratings, a sentence that says
        so and points to AC1; None otherwise.

        The rule: the most frequent category holds at least PREVALENCE_SHARE of the
        overall ratings, and kappa is at least KAPPA_GAP below the proportion of
        detections judged alike, or cannot be computed (all ratings in one category)."""
        if self.top_share is None or self.top_share < PREVALENCE_SHARE or self.percent_agreement is None:
            return None
        kappa = _clean(self.kappa)
        if kappa is not None and self.percent_agreement / 100 - kappa < KAPPA_GAP:
            return None
        share = f"{100 * self.top_share:.0f}% of ratings are '{self.top_category}'"
        ac1 = "" if _clean(self.ac1) is None else f" ({self.ac1:.2f})"
        if kappa is None:
            what = (f"kappa cannot be computed (the kappa paradox: {self.percent_agreement:.1f}% "
                    f"agreement, all of it expected by chance)")
        else:
            what = (f"kappa understates agreement (the kappa paradox: {self.percent_agreement:.1f}% "
                    f"agreement, kappa {kappa:.2f})")
        return (f"{share}: with so one-sided a sample, {what}; read Gwet's AC1{ac1}, which "
                f"does not collapse at high prevalence")

    def to_json(self) -> dict:
        return {"overall": {"detections": self.detections, "too_few": self.too_few,
                            "percent_agreement": _clean(self.percent_agreement),
                            "kappa": _clean(self.kappa), "kappa_low": _clean(self.kappa_low),
                            "kappa_high": _clean(self.kappa_high),
                            "ac1": _clean(self.ac1), "ac1_low": _clean(self.ac1_low),
                            "ac1_high": _clean(self.ac1_high),
                            "alpha": _clean(self.alpha), "alpha_low": _clean(self.alpha_low),
                            "alpha_high": _clean(self.alpha_high),
                            "top_category": self.top_category, "top_share": _clean(self.top_share),
                            "prevalence_note": self.prevalence_note},
                "pairs": [{**p, "percent_agreement": _clean(p["percent_agreement"]),
                           "kappa": _clean(p["kappa"]), "ac1": _clean(p["ac1"]),
                           "alpha": _clean(p["alpha"])} for p in self.pairs]}


def _clean(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 6)


def _holding(low: float, high: float, estimate: float) -> tuple[float | None, float | None]:
    """A percentile interval widened to hold its estimate; (None, None) when either is NaN.
    A skewed or lumpy bootstrap can leave the estimate outside its percentile interval;
    the interval reported always holds it."""
    if math.isnan(low) or math.isnan(estimate):
        return None, None
    return min(low, estimate), max(high, estimate)


def latest_verdicts(db) -> dict[int, list[tuple[str, str]]]:
    """Per detection: (reviewer, latest standing verdict), reviewers in the order they
    first judged it. Verdicts on anything but a detection are left out."""
    histories: dict[tuple[int, str], list[str]] = {}
    first_seen: dict[tuple[int, str], int] = {}
    for verdict_id, detection_id, reviewer, verdict in db.execute(
            "select id, detection_id, reviewer, verdict from verdicts "
            "where detection_id is not null order by id"):
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
        counts = rating_counts([[x, y] for x, y in both])
        pairs.append({"reviewer_a": a, "reviewer_b": b, "detections": len(both),
                      "percent_agreement": 100 * float(np.mean([x == y for x, y in both])),
                      "kappa": cohen_kappa(first, second), "ac1": gwet_ac1(counts),
                      "alpha": krippendorff_alpha(counts)})
    twice = [rows[:2] for rows in judged.values() if len(rows) >= 2]
    result = Agreement(pairs=pairs)
    if not twice:
        return result
    counts = rating_counts([[v for _, v in rows] for rows in twice])
    result.detections = len(twice)
    result.percent_agreement = 100 * float(np.mean([a[1] == b[1] for a, b in twice]))
    result.kappa, result.ac1, result.alpha = _overall(counts)
    totals = counts.sum(axis=0)
    result.top_category = CATEGORIES[int(np.argmax(totals))]
    result.top_share = float(totals.max() / totals.sum())
    draws = _bootstrap(counts, bootstrap, seed)
    for i, name in enumerate(("kappa", "ac1", "alpha")):
        low, high = percentile_interval([d[i] for d in draws])
        low, high = _holding(low, high, getattr(result, name))
        setattr(result, f"{name}_low", low)
        setattr(result, f"{name}_high", high)
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
                      "where detection_id is not null and verdict != 'undo' order by id").fetchall()
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
