"""Sites through time: detections of every period and source grouped by place.

Footprints (detections.geometry, lon/lat) that overlap or lie within a distance of each
other (100 m by default) belong to one site, across periods and sources: the sites are the
connected components of the "within distance" graph. Distances are measured in the local
UTM zone of each footprint (an STRtree `dwithin` query per zone, footprints near a zone
edge taken into the neighbouring zone too); areas in an equal-area projection (EPSG:6933).
That geometry is `site_grouping`; this module builds, stores and reads the sites.

For each site and period (`periods.period_label`, year by default) the area is the
union of its footprints in that period, counted once, in hectares, and the state is

- `new`: the first period the site is seen in;
- `expanding`: its area grew by more than `growth` (a fraction, default 0.10) over the
  previous period it was seen in;
- `stable`: seen again without growing that much (a shrinking site is stable too);
- `not_seen`: a period after its first in which it has no detection (only periods that
  occur in the data count).

Detections without a period belong to their site but give it no period and no state; the
build report says how many there were.

Site ids are stable: a rebuild gives each site the id of the earlier site(s) whose
detections it holds. When earlier sites merge, the merged site keeps the oldest (smallest)
id and the merge is recorded in `site_merges` (absorbed id, into id, when). An earlier site
that falls apart (a rebuild with a smaller distance) keeps its id for the part holding its
oldest detection; the other parts get new ids. Ids are never reused. Sites are computed
from the detections as read at the start, then written in one transaction: a crash leaves
the previous sites as they were, and the write lock is held only while writing.

`site_table` ends with each site's onset (review.analysis.onset: the month it changed from
vegetation to bare ground or water, from its stored spectral time series; blank without one)
and the bracket of clear observations around it.

A site's status is read live from its detections' own statuses (which it never changes):
`verified` if any detection is verified; else `disputed` or `needs_second_opinion` if any
detection is (second opinions on); else `false_positive` if every detection is a
false positive; else `unsure` if every detection is reviewed (some unsure, the rest false
positives); else `pending` (some detection still waits for review).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
import shapely

from ..errors import ReviewError
from ..progress import Progress
from ..store import now, transaction
from . import onset, site_grouping
from .equal_area import EQUAL_AREA
from .periods import period_label

DEFAULT_DISTANCE_M = 100.0
MAX_DISTANCE_M = 10_000.0
DEFAULT_GROWTH = 0.10
STATES = ("new", "expanding", "stable", "not_seen")
# Every detection status is counted (a site whose only detection waits for its second
# opinion counts it); the last two exist only with second opinions on.
SITE_STATUSES = ("verified", "false_positive", "unsure", "pending", "needs_second_opinion",
                 "disputed")
LIST_COLUMNS = ["site_id", "period", "area_ha", "state", "detections", "verified",
                "false_positive", "pending", "lon", "lat"]
MORE_COLUMNS = ["unsure", "area_ha_cumulative", "status", "first_period", "last_period",
                "needs_second_opinion", "disputed", "onset", "onset_bracket"]


class SiteError(ReviewError):
    """Sites cannot be built or read as asked."""


def check_distance(distance_m: float) -> float:
    """The grouping distance in metres, refused unless 0 < distance <= 10 km."""
    try:
        value = float(distance_m)
    except (TypeError, ValueError) as exc:
        raise SiteError(f"the distance that joins footprints into one site must be a number "
                        f"of metres, not {distance_m!r}") from exc
    if not (0 < value <= MAX_DISTANCE_M) or math.isnan(value):
        raise SiteError(f"the distance that joins footprints into one site must be more than "
                        f"0 m and at most {MAX_DISTANCE_M:,.0f} m (got {value:g} m)")
    return value


def check_growth(growth: float) -> float:
    """The growth over the previous period seen that makes a site expanding: a fraction
    from 0 to 10 (0.1 means 10%)."""
    value = float(growth)
    if not (0 <= value <= 10) or math.isnan(value):
        raise SiteError(f"the growth that makes a site expanding must be a fraction from 0 "
                        f"to 10, where 0.1 means 10% (got {value:g})")
    return value


def check_by(by: str) -> str:
    if by not in ("year", "quarter"):
        raise SiteError(f"sites are followed by year or by quarter, not {by!r}")
    return by


# ------------------------------------------------------------------------- building


@dataclass
class BuildReport:
    build_id: int
    detections: int
    sites: int
    periods: list[str]
    periodless: int
    merged: int
    new_sites: int
    distance_m: float
    growth: float
    by: str
    seconds: float

    def summary(self) -> str:
        if not self.detections:
            return "no detections to group; there are no sites"
        span = (f"{len(self.periods)} periods, {self.periods[0]} to {self.periods[-1]}"
                if self.periods else "no periods")
        text = (f"{self.sites:,} sites from {self.detections:,} detections ({span}; footprints "
                f"within {self.distance_m:g} m joined, expanding above {self.growth:.0%} growth); "
                f"{self.new_sites:,} new site ids, {self.merged:,} sites merged into older ones")
        if self.periodless:
            text += (f"; {self.periodless:,} detections without a period were grouped but "
                     "have no period state")
        return text + f"; in {self.seconds:.1f} s"


def _read_detections(db) -> list[tuple]:
    return db.execute("select id, geometry, period_start, period_end from detections "
                      "order by id").fetchall()


def _assign_ids(db, ids: np.ndarray, labels: np.ndarray, count: int
                ) -> tuple[np.ndarray, list[tuple[int, int]], int]:
    """Site id of each component, the merges (absorbed, into) and the next unused id."""
    old = dict(db.execute("select detection_id, site_id from site_members").fetchall())
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    # An earlier site lives on in the component that holds its oldest detection.
    heir: dict[int, int] = {}
    for detection_id in sorted(old):
        site_id = old[detection_id]
        if site_id not in heir and detection_id in label_of:
            heir[site_id] = label_of[detection_id]
    claimed: dict[int, list[int]] = {}
    for site_id, label in heir.items():
        claimed.setdefault(label, []).append(site_id)
    used = [row[0] for row in db.execute(
        "select max(id) from sites union all select max(absorbed_id) from site_merges "
        "union all select max(next_site_id) - 1 from site_builds").fetchall()]
    next_id = max([u for u in used if u is not None] + [0]) + 1
    site_ids = np.empty(count, dtype=np.int64)
    merges = []
    for label in range(count):              # labels follow the oldest detection: deterministic
        earlier = sorted(claimed.get(label, ()))
        if earlier:
            site_ids[label] = earlier[0]
            merges += [(absorbed, earlier[0]) for absorbed in earlier[1:]]
        else:
            site_ids[label] = next_id
            next_id += 1
    return site_ids, merges, next_id


def build(db, distance_m: float = DEFAULT_DISTANCE_M, growth: float = DEFAULT_GROWTH,
          by: str = "year", progress: Progress | None = None) -> BuildReport:
    """Group every detection into sites and compute each site's history; replaces the
    previous sites in one transaction (ids kept, merges recorded)."""
    distance_m = check_distance(distance_m)
    growth = check_growth(growth)
    by = check_by(by)
    started = time.perf_counter()
    rows = _read_detections(db)
    n = len(rows)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    geoms = shapely.from_geojson(np.array([r[1] for r in rows], dtype=object))
    invalid = ~shapely.is_valid(geoms)           # e.g. a self-touching footprint from a run
    geoms[invalid] = shapely.make_valid(geoms[invalid])
    periods = np.array([period_label(r[2], r[3], by) for r in rows], dtype=object)
    if progress:
        progress(1, 4, "footprints read")
    labels = site_grouping.components(geoms, distance_m)
    count = int(labels.max()) + 1 if n else 0
    if progress:
        progress(2, 4, "footprints grouped")
    all_periods = sorted({p for p in periods if p is not None})
    period_rows = site_grouping.period_rows(labels, periods, all_periods,
                                            site_grouping.project(geoms, EQUAL_AREA), growth)
    if progress:
        progress(3, 4, "areas measured")

    # Per site: its footprints dissolved (lon/lat), centre, box, area of all footprints.
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1) if n else []
    site_geoms = np.empty(count, dtype=object)
    for label, group in enumerate(groups):
        site_geoms[label] = site_grouping.union_of(geoms[group])
    site_geoms = shapely.orient_polygons(site_geoms, exterior_cw=False)
    centres = shapely.centroid(site_geoms)
    boxes = shapely.bounds(site_geoms).reshape(count, 4)
    site_area = shapely.area(site_grouping.project(site_geoms, EQUAL_AREA)) / 10_000
    first_period: dict[int, str] = {}
    last_period: dict[int, str] = {}
    periods_seen = np.zeros(count, dtype=int)
    for label, period, _, _, _, detections in period_rows:
        first_period.setdefault(label, period)
        if detections:
            last_period[label] = period
            periods_seen[label] += 1
    undated = np.array([p is None for p in periods], dtype=bool)
    periodless = np.bincount(labels[undated], minlength=count)
    sizes = np.bincount(labels, minlength=count)

    stamp = now()
    with transaction(db):
        site_ids, merges, next_id = _assign_ids(db, ids, labels, count)
        build_id = db["site_builds"].insert({
            "built_at": stamp, "distance_m": distance_m, "growth": growth, "by": by,
            "detections": n, "sites": count, "periodless": int(periodless.sum()),
            "merged": len(merges), "next_site_id": next_id, "seconds": None}).last_pk
        old_ids = {row[0] for row in db.execute("select id from sites").fetchall()}
        for table in ("site_periods", "site_members", "sites"):
            db.execute(f"delete from {table}")
        texts = shapely.to_geojson(site_geoms)
        db.conn.executemany(
            "insert into sites (id, lon, lat, west, south, east, north, first_period, "
            "last_period, periods_seen, detections, periodless, area_ha, geometry, build_id) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(int(site_ids[k]), float(shapely.get_x(centres[k])), float(shapely.get_y(centres[k])),
              *map(float, boxes[k]), first_period.get(k), last_period.get(k), int(periods_seen[k]),
              int(sizes[k]), int(periodless[k]), float(site_area[k]), texts[k], build_id)
             for k in range(count)])
        db.conn.executemany(
            "insert into site_members (detection_id, site_id, period) values (?, ?, ?)",
            zip(ids.tolist(), site_ids[labels].tolist(), periods.tolist()))
        db.conn.executemany(
            "insert into site_periods (site_id, period, area_ha, area_ha_cumulative, state, "
            "detections) values (?, ?, ?, ?, ?, ?)",
            [(int(site_ids[label]), period, float(area), float(cumulative), state, detections)
             for label, period, area, cumulative, state, detections in period_rows])
        db.conn.executemany(
            "insert into site_merges (absorbed_id, into_id, merged_at, build_id) values (?, ?, ?, ?)",
            [(absorbed, into, stamp, build_id) for absorbed, into in merges])
        seconds = time.perf_counter() - started
        db.execute("update site_builds set seconds = ? where id = ?", [seconds, build_id])
    if progress:
        progress(4, 4, "sites stored")
    return BuildReport(build_id=build_id, detections=n, sites=count, periods=all_periods,
                       periodless=int(periodless.sum()), merged=len(merges),
                       new_sites=len(set(site_ids.tolist()) - old_ids), distance_m=distance_m,
                       growth=growth, by=by, seconds=seconds)


# -------------------------------------------------------------------------- reading


def last_build(db) -> dict | None:
    """The latest build's settings and counts, or None when sites were never built."""
    rows = list(db["site_builds"].rows_where(order_by="id desc", limit=1))
    return rows[0] if rows else None


def require_build(db) -> dict:
    build_row = last_build(db)
    if build_row is None:
        raise SiteError("sites have not been built yet; build them first")
    return build_row


def status_of(verified: int, false_positive: int, unsure: int, pending: int,
              needs_second_opinion: int = 0, disputed: int = 0) -> str:
    """A site's status from its detections' statuses (see the module docstring): a site with
    no verified detection but a disputed or waiting one is disputed, or waiting."""
    if verified:
        return "verified"
    if disputed:
        return "disputed"
    if needs_second_opinion:
        return "needs_second_opinion"
    if pending == 0 and unsure == 0 and false_positive:
        return "false_positive"
    if pending == 0 and unsure:
        return "unsure"
    return "pending"


_COUNTS = ", ".join(f"sum(d.status = '{s}') as {s}" for s in SITE_STATUSES)


def sites_frame(db, status: str | None = None) -> pd.DataFrame:
    """One row per site: id, lon, lat, box, first/last period, detections, area_ha (all its
    footprints, counted once), the verdict counts of its detections and its status (live)."""
    require_build(db)
    frame = pd.read_sql_query(
        f"select s.id, s.lon, s.lat, s.west, s.south, s.east, s.north, s.first_period, "
        f"s.last_period, s.periods_seen, s.detections, s.periodless, s.area_ha, {_COUNTS} "
        f"from sites s left join site_members m on m.site_id = s.id "
        f"left join detections d on d.id = m.detection_id group by s.id order by s.id", db.conn)
    for name in SITE_STATUSES:
        frame[name] = frame[name].fillna(0).astype(int)
    for name in ("first_period", "last_period"):      # a site with only undated detections
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    frame["status"] = [status_of(*r) for r in
                       frame[list(SITE_STATUSES)].itertuples(index=False, name=None)]
    if status:
        frame = frame[frame["status"] == status].reset_index(drop=True)
    return frame


def site_table(db, state: str | None = None, period: str | None = None,
               site_id: int | None = None, status: str | None = None) -> pd.DataFrame:
    """One row per site and period, LIST_COLUMNS first, then MORE_COLUMNS. Verdict counts are
    those of the site's detections in that period, read live; `status` is the site's (and
    filters on it when given)."""
    require_build(db)
    if state is not None and state not in STATES:
        raise SiteError(f"a site's state is one of {', '.join(STATES)}, not {state!r}")
    clauses, params = [], []
    if state:
        clauses.append("p.state = ?")
        params.append(state)
    if period:
        clauses.append("p.period = ?")
        params.append(str(period))
    if site_id is not None:
        clauses.append("p.site_id = ?")
        params.append(int(site_id))
    where = ("where " + " and ".join(clauses)) if clauses else ""
    table = pd.read_sql_query(
        f"select p.site_id, p.period, p.area_ha, p.state, p.detections, p.area_ha_cumulative, "
        f"s.lon, s.lat, s.first_period, s.last_period from site_periods p "
        f"join sites s on s.id = p.site_id {where} order by p.site_id, p.period", db.conn,
        params=params)
    counts = pd.read_sql_query(
        f"select m.site_id, m.period, {_COUNTS} from site_members m "
        f"join detections d on d.id = m.detection_id where m.period is not null "
        f"group by m.site_id, m.period", db.conn)
    table = table.merge(counts, on=["site_id", "period"], how="left")
    for name in SITE_STATUSES:
        table[name] = table[name].fillna(0).astype(int)
    statuses = sites_frame(db).set_index("id")["status"]
    table["status"] = table["site_id"].map(statuses)
    if status:
        table = table[table["status"] == status].reset_index(drop=True)
    onsets = onset.for_sites(db, table["site_id"].unique().tolist())
    table["onset"] = [onsets[s].short if s in onsets else None for s in table["site_id"]]
    table["onset_bracket"] = [onsets[s].bracket if s in onsets else None for s in table["site_id"]]
    return table[LIST_COLUMNS + MORE_COLUMNS]


def _by_site(db, sql: str, site_ids: list[int] | None, column: str) -> list[tuple]:
    """Rows of `sql` (which ends in a where clause placeholder {where}) for these sites, or
    for all sites with None; read in chunks so a long id list stays within SQLite's limits."""
    if site_ids is None:
        return db.execute(sql.format(where="1")).fetchall()
    rows = []
    for start in range(0, len(site_ids), 500):
        chunk = [int(i) for i in site_ids[start:start + 500]]
        rows += db.execute(sql.format(where=f"{column} in ({', '.join('?' * len(chunk))})"),
                           chunk).fetchall()
    return rows


def history(db, site_ids: Iterable[int] | None = None) -> dict[int, list[dict]]:
    """Per site: its periods in order, each {period, area_ha, state, detections}."""
    require_build(db)
    wanted = None if site_ids is None else sorted(set(site_ids))
    found: dict[int, list[dict]] = {i: [] for i in wanted or ()}
    for site_id, period, area, state, detections in sorted(_by_site(
            db, "select site_id, period, area_ha, state, detections from site_periods "
                "where {where}", wanted, "site_id")):
        found.setdefault(site_id, []).append({"period": period, "area_ha": round(area, 4),
                                              "state": state, "detections": detections})
    return found


def members(db, site_id: int) -> list[int]:
    """Detection ids of one site, in id order."""
    return [row[0] for row in db.execute(
        "select detection_id from site_members where site_id = ? order by detection_id",
        [int(site_id)]).fetchall()]


def merges(db) -> list[dict]:
    """Every recorded merge, oldest first: absorbed_id, into_id, merged_at, build_id."""
    return list(db["site_merges"].rows_where(order_by="id"))


def merged_away(db) -> dict[int, int]:
    """Every site id that a build merged away, mapped to the site it lives on in now: the
    end of its chain of merges (A into B, later B into C: A and B map to C)."""
    into = dict(db.execute("select absorbed_id, into_id from site_merges order by id").fetchall())
    found = {}
    for absorbed in into:
        current, seen = absorbed, {absorbed}
        while current in into and into[current] not in seen:      # ids are never reused
            current = into[current]
            seen.add(current)
        found[absorbed] = current
    return found


def merge_chain(db, site_id: int) -> list[dict]:
    """The merges that took a site away, from its own to the one into the site it lives on
    in now (absorbed_id, into_id, merged_at, build_id each); [] when it was never merged."""
    chain, current, seen = [], int(site_id), {int(site_id)}
    while True:
        cursor = db.execute("select absorbed_id, into_id, merged_at, build_id from site_merges "
                            "where absorbed_id = ? order by id desc limit 1", [current])
        row = cursor.fetchone()
        if row is None or row[1] in seen:
            return chain
        chain.append(dict(zip([d[0] for d in cursor.description], row)))
        current = row[1]
        seen.add(current)


def features(db, site_ids: Iterable[int] | None = None, status: str | None = None) -> list[dict]:
    """Sites as RFC 7946 GeoJSON features: dissolved footprint (lon/lat, counter-clockwise
    exterior rings), status, verdict counts, per-period history and member detection ids."""
    frame = sites_frame(db, status=status)
    if site_ids is not None:
        frame = frame[frame["id"].isin(list(site_ids))]
    ids = frame["id"].tolist()
    wanted = None if site_ids is None and status is None else ids
    geometries = dict(_by_site(db, "select id, geometry from sites where {where}", wanted, "id"))
    member_ids: dict[int, list[int]] = {i: [] for i in ids}
    for site_id, detection_id in sorted(_by_site(
            db, "select site_id, detection_id from site_members where {where}", wanted, "site_id")):
        member_ids[site_id].append(detection_id)
    histories = history(db, None if wanted is None else ids)
    out = []
    for row in frame.to_dict("records"):
        site_id = int(row["id"])
        geometry = shapely.orient_polygons(shapely.from_geojson(geometries[site_id]), exterior_cw=False)
        out.append({
            "type": "Feature", "id": site_id,
            "geometry": json.loads(shapely.to_geojson(geometry)),
            "properties": {
                "site_id": site_id, "status": row["status"], "area_ha": round(row["area_ha"], 4),
                "first_period": row["first_period"], "last_period": row["last_period"],
                "detections": int(row["detections"]),
                **{name: int(row[name]) for name in SITE_STATUSES},
                "history": histories.get(site_id, []), "detection_ids": member_ids[site_id]}})
    return out


# ------------------------------------------------------------------- read by the pages


def periods(db) -> list[str]:
    """The periods of the last build, in order ([] when sites were never built)."""
    if last_build(db) is None:
        return []
    return [row[0] for row in db.execute("select distinct period from site_periods order by period")]


def site_of(db, detection_id: int) -> int | None:
    """The site a detection belongs to in the last build (None when sites were never built,
    or the detection came in after the build)."""
    row = db.execute("select site_id from site_members where detection_id = ?",
                     [int(detection_id)]).fetchone()
    return int(row[0]) if row else None


def summary(db, site_id: int) -> dict:
    """One site: its row of sites_frame (status read live) plus its footprint (GeoJSON
    text) and the merges it took part in."""
    require_build(db)
    row = db.execute("select id from sites where id = ?", [int(site_id)]).fetchone()
    if row is None:
        chain = merge_chain(db, site_id)
        if chain:
            raise SiteError(f"site {site_id} was merged into site {chain[-1]['into_id']}")
        raise SiteError(f"there is no site {site_id}")
    counts = db.execute(
        f"select {_COUNTS} from site_members m join detections d on d.id = m.detection_id "
        f"where m.site_id = ?", [int(site_id)]).fetchone()
    found = dict(zip(SITE_STATUSES, (int(c or 0) for c in counts)))
    cursor = db.execute("select * from sites where id = ?", [int(site_id)])
    names = [d[0] for d in cursor.description]
    out = dict(zip(names, cursor.fetchone()))
    out.update(found)
    out["status"] = status_of(*(found[s] for s in SITE_STATUSES))
    out["merges"] = [m for m in merges(db) if site_id in (m["absorbed_id"], m["into_id"])]
    return out


BLIND = ("last_reviewer", "last_verdict", "last_reason", "last_note", "last_verdict_at")


def member_table(db, site_id: int, viewer: str | None = None) -> pd.DataFrame:
    """The site's detections, one row each: id, period, source, score, area_ha, status,
    and the last verdict on it (reviewer, verdict, reason, note, when). A detection waiting
    for a second opinion shows none of that to anyone but those who judged it (`viewer`):
    the second look stays blind."""
    table = pd.read_sql_query(
        "select d.id, m.period, d.source, d.score, d.area_ha, d.status, v.reviewer as last_reviewer, "
        "v.verdict as last_verdict, v.reason as last_reason, v.note as last_note, "
        "v.created_at as last_verdict_at, exists(select 1 from verdicts w where w.detection_id = d.id "
        "and w.reviewer = ?) as judged_by_viewer from site_members m join detections d on d.id = m.detection_id "
        "left join verdicts v on v.id = (select max(id) from verdicts where detection_id = d.id) "
        "where m.site_id = ? order by m.period, d.id", db.conn, params=[viewer or "", int(site_id)])
    blind = (table["status"] == "needs_second_opinion") & (table["judged_by_viewer"] == 0)
    table[list(BLIND)] = table[list(BLIND)].astype(object)
    table.loc[blind, list(BLIND)] = None
    return table.drop(columns="judged_by_viewer")


def member_footprints(db, site_id: int) -> list[tuple[int, str, str | None, str | None, str]]:
    """(detection id, footprint GeoJSON text, period, that period's state, status) of each
    of the site's detections, by period then id."""
    return db.execute(
        "select d.id, d.geometry, m.period, p.state, d.status from site_members m "
        "join detections d on d.id = m.detection_id "
        "left join site_periods p on p.site_id = m.site_id and p.period = m.period "
        "where m.site_id = ? order by m.period, d.id", [int(site_id)]).fetchall()


def period_spans(db, site_id: int) -> list[tuple[str, str | None, str | None, str | None, float]]:
    """(period, first day, last day, state, area_ha) of each period the site has detections
    in, in order: the dates span its detections' own periods."""
    rows = {p: (state, area) for p, state, area in db.execute(
        "select period, state, area_ha from site_periods where site_id = ?", [int(site_id)])}
    spans = db.execute(
        "select m.period, min(d.period_start), max(coalesce(d.period_end, d.period_start)) "
        "from site_members m join detections d on d.id = m.detection_id "
        "where m.site_id = ? and m.period is not null group by m.period order by m.period",
        [int(site_id)]).fetchall()
    return [(period, start, end, *rows.get(period, (None, 0.0))) for period, start, end in spans]
