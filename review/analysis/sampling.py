"""Random samples of a stratum of detections, for estimates a researcher can defend.

A sample is drawn once (seeded, so it can be redrawn identically) and its members are
stored with their place in the order drawn (`position`, `drawn_order`). The Review page can be restricted to
a sample, and the queue then serves its members in drawn order whatever order is chosen
(review.judging.queue). The estimate of the stratum's verified area rests on the longest
prefix of the drawn order whose members are all decided (verified or false positive):
that prefix is itself a simple random sample of the stratum, while members decided out of
order are a subset chosen by whoever reviewed them, and are left out (and counted).
"""
from __future__ import annotations

import json
import random
from dataclasses import replace

from ..errors import ReviewError
from ..judging.queue import Filters, matching
from ..statistics import SampleEstimate, ratio_estimate
from ..store import now, transaction


def _filters_json(filters: Filters) -> str:
    return json.dumps({"sources": filters.sources, "period_from": filters.period_from,
                       "period_to": filters.period_to, "score_min": filters.score_min,
                       "score_max": filters.score_max,
                       "area": filters.area.wkt if filters.area is not None else None})


def draw(db, name: str, filters: Filters, size: int, seed: int = 1) -> int:
    """Draw `size` detections at random from those matching the filters (any status)."""
    if size < 1:
        raise ReviewError("a sample needs at least one detection")
    stratum_filters = Filters(**{**filters.__dict__, "status": None})
    stratum = [(row["id"], row["area_ha"] or 0.0)
               for row in matching(db, stratum_filters, "score", page=5000)]
    if not stratum:
        raise ReviewError("no detections match the stratum's filters")
    if size > len(stratum):
        raise ReviewError(f"the stratum has only {len(stratum)} detections; ask for fewer")
    chosen = random.Random(seed).sample(sorted(i for i, _ in stratum), size)
    with transaction(db):
        sample_id = db["samples"].insert({
            "name": name, "filters": _filters_json(filters), "seed": seed, "size": size,
            "stratum_detections": len(stratum),
            "stratum_area_ha": sum(a for _, a in stratum), "created_at": now()}).last_pk
        db["sample_members"].insert_all(
            {"sample_id": sample_id, "detection_id": i, "position": position}
            for position, i in enumerate(chosen, start=1))
    return sample_id


def drawn_order(db, sample_id: int) -> list[int]:
    """The sample's detection ids in the order they were drawn."""
    return [r[0] for r in db.execute("select detection_id from sample_members where sample_id = ? "
                                     "order by position", [sample_id])]


DECIDED = ("verified", "false_positive")
# Why a member is not decided, by its status, in words.
UNDECIDED = {"pending": "not reviewed yet", "unsure": "marked unsure",
             "needs_second_opinion": "waiting for a second opinion", "disputed": "disputed"}


def estimate(db, sample_id: int) -> SampleEstimate:
    """Verified-area estimate for the sample's stratum from the longest prefix of its drawn
    order whose members are all decided (verified or false positive).

    That prefix is a simple random sample of the stratum; members decided beyond it are
    left out (a subset chosen by what was reviewed first is not random) and counted in
    `left_out`. Members pending, unsure, waiting for a second opinion or disputed end the
    prefix; with fewer than two used there is no interval.
    """
    sample = db["samples"].get(sample_id)
    rows = db.execute(
        "select m.detection_id, d.area_ha, d.status from sample_members m "
        "join detections d on d.id = m.detection_id where m.sample_id = ? order by m.position",
        [sample_id]).fetchall()
    used = 0
    while used < len(rows) and rows[used][2] in DECIDED:
        used += 1
    left_out = sum(1 for _, _, status in rows[used:] if status in DECIDED)
    stopped_at = None
    if used < len(rows):
        detection_id, _, status = rows[used]
        stopped_at = f"member {used + 1} (detection {detection_id}), {UNDECIDED.get(status, status)}"
    if used == 0 and left_out:
        raise ReviewError(
            f"no estimate yet: the first member drawn (detection {rows[0][0]}) is "
            f"{UNDECIDED.get(rows[0][2], rows[0][2])}, and the {left_out} decided further down the "
            f"drawn order are not a random sample; review the sample in drawn order (the Review page "
            f"restricted to this sample serves it so)")
    prefix = rows[:used]
    result = ratio_estimate([a or 0.0 for _, a, _ in prefix], [s == "verified" for _, _, s in prefix],
                            sample["stratum_detections"], sample["stratum_area_ha"])
    return replace(result, drawn=len(rows), used=used, left_out=left_out, stopped_at=stopped_at)


def listing(db) -> list[dict]:
    return list(db["samples"].rows_where(order_by="id desc"))
