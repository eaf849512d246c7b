"""Random samples of a stratum of detections, for estimates a researcher can defend.

A sample is drawn once (seeded, so it can be redrawn identically), its members are
stored, and the Review page can be restricted to them. What people decide about the
members gives the stratum's precision and an estimate of its verified area.
"""
from __future__ import annotations

import json
import random

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
        db["sample_members"].insert_all({"sample_id": sample_id, "detection_id": i} for i in chosen)
    return sample_id


def estimate(db, sample_id: int) -> SampleEstimate:
    """Verified-area estimate for the sample's stratum, from its members reviewed so far.

    Members still pending or marked unsure are left out (they are not yet a yes or a no);
    with fewer than two decided members there is no interval.
    """
    sample = db["samples"].get(sample_id)
    rows = db.execute(
        "select d.area_ha, d.status from sample_members m join detections d on d.id = m.detection_id "
        "where m.sample_id = ? and d.status in ('verified', 'false_positive')", [sample_id]).fetchall()
    return ratio_estimate([a or 0.0 for a, _ in rows], [s == "verified" for _, s in rows],
                          sample["stratum_detections"], sample["stratum_area_ha"])


def listing(db) -> list[dict]:
    return list(db["samples"].rows_where(order_by="id desc"))
