"""The review queue: pending detections in a chosen order, filtered, handed out one at a time.

Restricted to a random sample (Filters.sample_id), the queue serves its members in the
order they were drawn, whatever order is chosen: an estimate from the sample rests on a
prefix of that order (review.analysis.sampling), so a reviewer working through the queue
keeps the reviewed members a random sample rather than, say, the highest-scoring ones.

`claim_next` gives each reviewer a detection nobody else holds: the claim is written in
the same write transaction that chose it, so two reviewers asking at once get two
different detections. A claim belongs to a holder (one browser session, or one CLI
process), not to a name: two tabs under one name are two holders. Claims are leases,
renewed while the detection is on screen and expiring after CLAIM_SECONDS without
renewal, so a closed tab or a dead session never hides a detection for long.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd
import shapely
import sqlite_utils

from ..errors import StoreError
from ..store import box_overlap, transaction

ORDERS = {
    "score": "highest score first",
    "threshold": "closest to the threshold first",
    "newest": "newest period first",
    "second_opinion": "waiting for a second opinion",
    "uncertain": "most uncertain under the trained model first",
}
# Each order has its index (review.store, v21 and v22) under exactly these expressions.
_ORDER_SQL = {
    "score": "score is null, score desc, id",
    "threshold": "score is null, abs(score - coalesce(threshold, 0.5)), id",
    "newest": "period_start is null, period_start desc, score desc, id",
    "second_opinion": "score is null, score desc, id",
    # The latest rescore (python -m review rescore): closest to its model's threshold first;
    # detections it did not score come after, highest source score first. model_uncertainty
    # is kept from model_scores by triggers (review.store, v22).
    "uncertain": "model_uncertainty is null, model_uncertainty, score is null, score desc, id",
}
CLAIM_SECONDS = 120          # a claim not renewed for this long is free again
SKIP_SECONDS = 8 * 3600      # a skipped detection comes back to its reviewer after this
# The holder of claims made by this process when no session id is given (CLI, scripts).
PROCESS_HOLDER = f"process-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ClaimHeld(StoreError):
    """Someone else has this detection on screen."""

    def __init__(self, detection_id: int, reviewer: str, since: float):
        self.detection_id, self.reviewer, self.since = detection_id, reviewer, since
        stamp = time.strftime("%H:%M", time.localtime(since))
        super().__init__(f"detection {detection_id} is being reviewed by {reviewer} since {stamp}")


@dataclass
class Filters:
    sources: list[str] = field(default_factory=list)
    period_from: str | None = None        # detections whose period ends on or after this
    period_to: str | None = None          # ... and starts on or before this
    score_min: float | None = None
    score_max: float | None = None
    area: shapely.Geometry | None = None  # area of interest, lon/lat
    status: str | None = "pending"
    sample_id: int | None = None          # only members of this random sample
    not_judged_by: str | None = None      # leave out detections this reviewer has judged
    site_id: int | None = None            # only detections of this site (review.analysis.sites)
    context: str | None = None            # only detections overlapping this context layer...
    context_value: str | None = None      # ... (its polygons with this value, if given)

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.status:
            clauses.append("status = ?")
            params.append(self.status)
        if self.sources:
            clauses.append(f"source in ({', '.join('?' * len(self.sources))})")
            params += list(self.sources)
        if self.period_from:
            clauses.append("coalesce(period_end, period_start) >= ?")
            params.append(self.period_from)
        if self.period_to:
            clauses.append("coalesce(period_start, period_end) <= ?")
            params.append(self.period_to)
        if self.score_min is not None:
            clauses.append("score >= ?")
            params.append(self.score_min)
        if self.score_max is not None:
            clauses.append("score <= ?")
            params.append(self.score_max)
        if self.sample_id is not None:
            clauses.append("id in (select detection_id from sample_members where sample_id = ?)")
            params.append(self.sample_id)
        if self.not_judged_by:
            # `not in` over a NULL yields nothing: labels of assessment points have no detection.
            clauses.append("id not in (select detection_id from verdicts where reviewer = ? "
                           "and detection_id is not null)")
            params.append(self.not_judged_by)
        if self.site_id is not None:
            clauses.append("id in (select detection_id from site_members where site_id = ?)")
            params.append(self.site_id)
        if self.context:
            clause, values = context_clause(self.context, self.context_value)
            clauses.append(clause)
            params += values
        if self.area is not None:
            overlap, box = box_overlap(*self.area.bounds)
            clauses.append(overlap)
            params += box
        return (" and ".join(clauses) or "1"), params

    def key(self) -> tuple:
        """A hashable summary: two filters with the same key select the same detections."""
        return (tuple(self.sources), self.period_from, self.period_to, self.score_min,
                self.score_max, self.area.wkt if self.area is not None else None,
                self.status, self.sample_id, self.not_judged_by, self.site_id, self.context,
                self.context_value if self.context else None)

    def keeps(self, row: dict) -> bool:
        if self.area is None:
            return True
        return shapely.from_geojson(row["geometry"]).intersects(self.area)


def context_clause(layer: str, value: str | None = None) -> tuple[str, list]:
    """SQL (and its parameters) keeping the detections whose footprint overlaps a context
    layer, or only its polygons with this value. The overlaps are those stored by
    review.analysis.context: its `check_filter` brings them up to date for detections added
    since, and a reader calls it first."""
    sql = ("id in (select o.detection_id from context_overlaps o join context_layers l "
           "on l.id = o.layer_id where l.name = ?")
    if value is None:
        return sql + ")", [layer]
    return sql + " and o.value = ?)", [layer, value]


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise StoreError(f"unknown order {order!r}: use one of {', '.join(ORDERS)}")
    return _ORDER_SQL[order]


def serves_drawn_order(filters: Filters) -> bool:
    """Whether these filters make the queue serve a sample's members in drawn order (the
    chosen order does not apply then)."""
    return filters.sample_id is not None


def _order_sql(filters: Filters, order: str) -> str:
    """The ORDER BY of the queue: the chosen order, or a sample's drawn order (the position
    of its sample_members rows, see review.analysis.sampling) when restricted to one."""
    chosen = _check_order(order)
    if not serves_drawn_order(filters):
        return chosen
    return (f"(select m.position from sample_members m where m.sample_id = {int(filters.sample_id)} "
            f"and m.detection_id = detections.id), id")


def _select(db, filters: Filters, order: str, extra: str = "", params=(), limit: int = 100,
            offset: int = 0) -> list[dict]:
    where, where_params = filters.where()
    sql = (f"select * from detections where {where} {extra} "
           f"order by {_order_sql(filters, order)} limit ? offset ?")
    cursor = db.execute(sql, [*where_params, *params, limit, offset])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def matching(db, filters: Filters, order: str, extra: str = "", params=(), page: int = 200):
    """Rows in order, refined by the exact area-of-interest test (SQL only checks boxes)."""
    offset = 0
    while True:
        batch = _select(db, filters, order, extra, params, limit=page, offset=offset)
        yield from (row for row in batch if filters.keeps(row))
        if len(batch) < page:
            return
        offset += page


def listing(db: sqlite_utils.Database, filters: Filters | None = None, order: str = "score",
            limit: int = 100, offset: int = 0) -> list[dict]:
    """Detections matching the filters, in order (no claims taken)."""
    filters = filters or Filters()
    if filters.area is None:
        return _select(db, filters, order, limit=limit, offset=offset)
    rows = []
    for row in matching(db, filters, order):
        rows.append(row)
        if len(rows) >= offset + limit:
            break
    return rows[offset:]


def count(db: sqlite_utils.Database, filters: Filters | None = None) -> int:
    filters = filters or Filters()
    where, params = filters.where()
    if filters.area is None:
        return db.execute(f"select count(*) from detections where {where}", params).fetchone()[0]
    cursor = db.execute(f"select geometry from detections where {where}", params)
    return sum(1 for (geometry,) in cursor if shapely.from_geojson(geometry).intersects(filters.area))


def second_opinion_filters(reviewer: str, base: Filters | None = None) -> Filters:
    """Detections waiting for a second opinion that this reviewer has not judged."""
    from dataclasses import replace

    return replace(base or Filters(), status="needs_second_opinion", not_judged_by=reviewer)


def claim_next(db: sqlite_utils.Database, reviewer: str, filters: Filters | None = None,
               order: str = "score", skip: tuple[int, ...] = (),
               claim_seconds: float = CLAIM_SECONDS, holder: str | None = None) -> dict | None:
    """Claim the next detection nobody holds for this holder (releasing its previous claim).
    The "second_opinion" order serves detections waiting for a second look to anyone but
    the reviewers who already judged them."""
    filters = filters or Filters()
    if order == "second_opinion":
        filters = second_opinion_filters(reviewer, filters)
    _check_order(order)
    holder = holder or PROCESS_HOLDER
    moment = time.time()
    with transaction(db):
        db.execute("delete from claims where holder = ? or claimed_at < ?",
                   [holder, moment - claim_seconds])
        skip_sql = f"and id not in ({', '.join('?' * len(skip))})" if skip else ""
        extra = f"and id not in (select detection_id from claims) {skip_sql}"
        chosen = next(matching(db, filters, order, extra, tuple(skip), page=50), None)
        if chosen is not None:
            db.execute("insert into claims (detection_id, reviewer, holder, claimed_at) "
                       "values (?, ?, ?, ?)", [chosen["id"], reviewer, holder, moment])
    return chosen


def claim(db: sqlite_utils.Database, reviewer: str, detection_id: int, holder: str | None = None,
          force: bool = False, claim_seconds: float = CLAIM_SECONDS) -> dict:
    """Take a specific detection (opened from the map, a link, or brought back by undo).
    Raises ClaimHeld when another holder has it, unless `force` ("review anyway")."""
    detection = get(db, detection_id)
    holder = holder or PROCESS_HOLDER
    moment = time.time()
    with transaction(db):
        current = db.execute("select reviewer, holder, claimed_at from claims where "
                             "detection_id = ? and claimed_at >= ?",
                             [detection_id, moment - claim_seconds]).fetchone()
        if current and current[1] != holder and not force:
            raise ClaimHeld(detection_id, current[0], current[2])
        db.execute("delete from claims where holder = ? or detection_id = ?", [holder, detection_id])
        db.execute("insert into claims (detection_id, reviewer, holder, claimed_at) values (?, ?, ?, ?)",
                   [detection_id, reviewer, holder, moment])
    return detection


def holder_of(db: sqlite_utils.Database, detection_id: int,
              claim_seconds: float = CLAIM_SECONDS) -> dict | None:
    """Who has this detection on screen now: {reviewer, holder, since}, or None."""
    row = db.execute("select reviewer, holder, claimed_at from claims where detection_id = ? "
                     "and claimed_at >= ?", [detection_id, time.time() - claim_seconds]).fetchone()
    return None if row is None else {"reviewer": row[0], "holder": row[1], "since": row[2]}


def renew(db: sqlite_utils.Database, holder: str, detection_id: int) -> bool:
    """Keep a claim alive while its detection is on screen; False if it was lost (expired
    and taken, or taken over by someone who chose to review anyway)."""
    with transaction(db):
        cursor = db.execute("update claims set claimed_at = ? where detection_id = ? and holder = ?",
                            [time.time(), detection_id, holder])
    return cursor.rowcount == 1


def release(db: sqlite_utils.Database, holder: str) -> None:
    """Let go of whatever this holder has claimed (leaving the page, closing the tab)."""
    with transaction(db):
        db.execute("delete from claims where holder = ?", [holder])


def skip(db: sqlite_utils.Database, reviewer: str, detection_id: int, holder: str | None = None) -> None:
    """This reviewer passes on a detection for now (kept across reloads, for SKIP_SECONDS);
    the holder's claim on it is let go, so someone else may take it."""
    with transaction(db):
        db.execute("insert or replace into skips (reviewer, detection_id, skipped_at) values (?, ?, ?)",
                   [reviewer, detection_id, time.time()])
        db.execute("delete from claims where detection_id = ? and holder = ?",
                   [detection_id, holder or PROCESS_HOLDER])


def skipped(db: sqlite_utils.Database, reviewer: str, skip_seconds: float = SKIP_SECONDS) -> tuple[int, ...]:
    """Detections this reviewer skipped that have not expired yet."""
    rows = db.execute("select detection_id from skips where reviewer = ? and skipped_at >= ? "
                      "order by detection_id", [reviewer, time.time() - skip_seconds])
    return tuple(r[0] for r in rows)


def upcoming(db: sqlite_utils.Database, reviewer: str, filters: Filters | None = None,
             order: str = "score", count: int = 10, skip: tuple[int, ...] = ()) -> list[dict]:
    """The detections this reviewer's queue would serve next (no claims taken): what is
    worth preparing imagery for ahead of time."""
    filters = filters or Filters()
    if order == "second_opinion":
        filters = second_opinion_filters(reviewer, filters)
    skip_sql = f"and id not in ({', '.join('?' * len(skip))})" if skip else ""
    rows = []
    for row in matching(db, filters, order, skip_sql, tuple(skip), page=max(count, 20)):
        rows.append(row)
        if len(rows) >= count:
            break
    return rows


def get(db: sqlite_utils.Database, detection_id: int) -> dict:
    try:
        return db["detections"].get(detection_id)
    except sqlite_utils.db.NotFoundError as exc:
        raise StoreError(f"no detection with id {detection_id}") from exc


def neighbours(db: sqlite_utils.Database, detection: dict, radius_km: float = 3.0,
               limit: int = 20) -> list[dict]:
    """Other detections within radius_km of this one's centre (by bounding box, then distance)."""
    import math

    lat = detection["lat"]
    dlat = radius_km / 111.32
    dlon = radius_km / (111.32 * max(math.cos(math.radians(lat)), 0.01))
    rows = db.execute(
        "select id, source, score, status, lon, lat, area_ha, period_start from detections "
        "where id != ? and lon between ? and ? and lat between ? and ? limit 500",
        [detection["id"], detection["lon"] - dlon, detection["lon"] + dlon, lat - dlat, lat + dlat])
    found = []
    for row in rows.fetchall():
        dx = (row[4] - detection["lon"]) * 111.32 * math.cos(math.radians(lat))
        dy = (row[5] - lat) * 111.32
        distance = math.hypot(dx, dy)
        if distance <= radius_km:
            found.append({"id": row[0], "source": row[1], "score": row[2], "status": row[3],
                          "distance_km": round(distance, 2), "area_ha": row[6],
                          "period_start": row[7]})
    return sorted(found, key=lambda r: r["distance_km"])[:limit]


def sources(db: sqlite_utils.Database) -> list[str]:
    """Every source name in the database, sorted."""
    return [r[0] for r in db.execute("select distinct source from detections order by source")]


def status_by_source(db: sqlite_utils.Database) -> pd.DataFrame:
    """Detections per source (rows) and status (columns) with a total, largest source first."""
    counts = pd.DataFrame(db.execute(
        "select source, status, count(*) from detections group by source, status").fetchall(),
        columns=["source", "status", "n"])
    if counts.empty:
        return pd.DataFrame(columns=["total"], index=pd.Index([], name="source"), dtype=int)
    table = counts.pivot_table(index="source", columns="status", values="n", aggfunc="sum",
                               fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False)


def extent(rows: list[dict]) -> tuple[float, float, float, float]:
    """West, south, east, north around the boxes of these detections (at least one)."""
    if not rows:
        raise StoreError("no detections, so no extent")
    return (min(r["west"] for r in rows), min(r["south"] for r in rows),
            max(r["east"] for r in rows), max(r["north"] for r in rows))


def as_json_line(row: dict) -> str:
    keep = ("id", "source", "external_id", "score", "area_ha", "area_source", "period_start",
            "period_end", "model_id", "status", "lon", "lat")
    return json.dumps({k: row.get(k) for k in keep})
