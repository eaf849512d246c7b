"""Mined area over time, from the review database, with honest uncertainty.

Per period (year, or quarter where the data has quarters) and optionally per region:
counts and hectares for all detections and by status, new and cumulative area, the
precision of the reviewed detections with a 95% Wilson interval, and, for a random
sample drawn from a stratum, the estimated verified area of the whole stratum.

The area of a detection is its source's mined-area attribute where there is one
(earthrise's `Mined area (ha)`), else its footprint in an equal-area projection; the
table says how much of each period's area came from which. Ground is counted once per
period: overlapping footprints within a source, and ground that several sources cover,
by the precedence in METHOD; `source_table` gives each source on its own. Sources and
runs can be hidden from Trends (`set_hidden`), e.g. test runs. Trends can be restricted
to the detections inside a context layer (`context`: a layer's name, or (name, value)).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..errors import ReviewError
from ..statistics import wilson_interval
from ..store import has_table
from .periods import period_label

# Every status has its column, so a period's columns add up to its detections; the last two
# exist only with second opinions on (verified waiting for confirmation, disputes).
STATUS_COLUMNS = ("verified", "false_positive", "unsure", "pending", "needs_second_opinion",
                  "disputed")
# The columns keep the places they had before second opinions; the later statuses follow.
_FIRST, _LATER = STATUS_COLUMNS[:4], STATUS_COLUMNS[4:]
COLUMNS = ["period", "detections", *_FIRST, "area_ha_all",
           *(f"area_ha_{s}" for s in _FIRST), "area_ha_new", "area_ha_cumulative",
           "area_ha_from_attribute", "area_ha_from_footprint", "precision",
           "precision_low", "precision_high", *_LATER, *(f"area_ha_{s}" for s in _LATER)]


# ---------------------------------------------------------------------------- regions


def read_regions(path: str | Path, name_field: str | None = None) -> list[tuple[str, shapely.Geometry]]:
    """Polygons of an uploaded boundary file, each with a name."""
    from ..detection.importers import read_vector

    path = Path(path)
    frame = read_vector(path)
    if len(frame) == 0:
        raise ReviewError(f"{path.name}: the boundary file has no features")
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    kinds = set(frame.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise ReviewError(f"{path.name}: regions must be polygons, the file has "
                          f"{', '.join(sorted(kinds)) or 'no geometries'}")
    field = name_field or next((c for c in ("name", "NAME", "region", "country", "id")
                                if c in frame.columns), None)
    names = [str(frame[field].iloc[i]) if field else f"region {i + 1}" for i in range(len(frame))]
    return list(zip(names, frame.geometry.values))


def area_of_interest(path: str | Path) -> shapely.Geometry:
    """The polygons of a boundary file as one geometry (lon/lat): the area to search or export."""
    return shapely.union_all([geometry for _, geometry in read_regions(path)])


def assign_regions(frame: pd.DataFrame, regions: list[tuple[str, shapely.Geometry]]) -> pd.Series:
    points = shapely.points(frame["lon"].to_numpy(), frame["lat"].to_numpy())
    labels = pd.Series(["outside"] * len(frame), index=frame.index, dtype=object)
    for name, geometry in regions:
        inside = shapely.contains_xy(geometry, frame["lon"].to_numpy(), frame["lat"].to_numpy()) \
            if len(points) else []
        labels[(labels == "outside") & pd.Series(inside, index=frame.index, dtype=bool)] = name
    return labels


# ---------------------------------------------------------------------------- tables


# How overlapping ground is counted (also said under every chart).
STATUS_PRECEDENCE = ("verified", "unsure", "needs_second_opinion", "disputed", "pending",
                     "false_positive")
SAME_SITE_SHARE = 0.5       # an attribute detection at least this much inside counted ground: the same site
METHOD = ("Each piece of ground is counted once per period. Sources are taken in this order: "
          "those with their own mined-area attribute (e.g. Mined area (ha)) first, then those "
          "measured by footprint, each group in the order the sources came in; within a "
          "source, verified detections first. A detection measured by footprint adds the part "
          "of its footprint (in an equal-area projection, EPSG:6933) that no earlier detection "
          "covers; a detection with a mined-area attribute adds that attribute, in proportion "
          "to the share of its footprint not yet covered, or nothing when at least half of it "
          "is covered (the same site, given again by another source).")
SOURCE_METHOD = ("Per source: its detections' mined-area attribute where it has one, else the "
                 "union of its footprints (overlapping footprints counted once).")
EXTRA_COLUMNS = ["area_ha_listed"]   # the plain sum of each detection's own area


ContextFilter = str | tuple[str, str | None] | None     # a layer's name, or (name, value)


def _context_clause(db, context) -> tuple[str, list]:
    from ..judging.queue import context_clause
    from .context import check_filter

    name, value = (context, None) if isinstance(context, str) else context
    check_filter(db, name, value)
    return context_clause(name, value)


def detections_frame(db, sources: list[str] | None = None, include_hidden: bool = False,
                     context: ContextFilter = None) -> pd.DataFrame:
    """The detections Trends counts; only those inside a context layer (its name, or
    (name, value)) if given."""
    sql = ("select id, source, run_id, status, area_ha, area_source, period_start, period_end, "
           "lon, lat, geometry, properties from detections")
    clauses, params = [], []
    if context:
        clause, values = _context_clause(db, context)
        clauses.append(clause)
        params += values
    if sources:
        clauses.append(f"source in ({', '.join('?' * len(sources))})")
        params += list(sources)
    if not include_hidden:
        hidden = hidden_from_trends(db)
        if hidden["sources"]:
            clauses.append(f"source not in ({', '.join('?' * len(hidden['sources']))})")
            params += sorted(hidden["sources"])
        if hidden["runs"]:
            clauses.append(f"coalesce(run_id, -1) not in ({', '.join('?' * len(hidden['runs']))})")
            params += sorted(hidden["runs"])
    if clauses:
        sql += " where " + " and ".join(clauses)
    return pd.read_sql_query(sql + " order by id", db.conn, params=params)


# ---------------------------------------------------------------------------- hidden


def hidden_from_trends(db) -> dict[str, set]:
    """Sources (imports) and detector runs left out of Trends, e.g. test runs."""
    rows = db.execute("select kind, key from trend_hidden").fetchall() \
        if has_table(db, "trend_hidden") else []
    return {"sources": {k for kind, k in rows if kind == "source"},
            "runs": {int(k) for kind, k in rows if kind == "run"}}


def set_hidden(db, kind: str, key, hidden: bool, by: str | None = None) -> None:
    """Leave a source (kind 'source') or a detector run (kind 'run', its id) out of Trends,
    or bring it back."""
    from ..store import now, transaction

    if kind not in ("source", "run"):
        raise ReviewError(f"only a source or a run can be hidden from Trends, not a {kind}")
    with transaction(db):
        if hidden:
            db.execute("insert or replace into trend_hidden (kind, key, hidden_at, hidden_by) "
                       "values (?, ?, ?, ?)", [kind, str(key), now(), by])
        else:
            db.execute("delete from trend_hidden where kind = ? and key = ?", [kind, str(key)])


def trend_inputs(db) -> pd.DataFrame:
    """What can be hidden from Trends: each import source and each detector run, with its
    detections and whether it is hidden now."""
    hidden = hidden_from_trends(db)
    rows = []
    for source, count in db.execute("select source, count(*) from detections where run_id is null "
                                    "group by source order by min(id)"):
        rows.append({"kind": "source", "key": source, "label": f"import: {source}",
                     "detections": count, "hidden": source in hidden["sources"]})
    for run_id, model, scene, started, count in db.execute(
            "select r.id, r.model_id, s.name, r.started_at, count(d.id) from runs r "
            "left join scenes s on s.id = r.scene_id left join detections d on d.run_id = r.id "
            "group by r.id order by r.id"):
        rows.append({"kind": "run", "key": str(run_id),
                     "label": f"run {run_id}: {model} on {scene or 'a tile'} ({(started or '')[:10]})",
                     "detections": count, "hidden": run_id in hidden["runs"]})
    return pd.DataFrame(rows, columns=["kind", "key", "label", "detections", "hidden"])


# ---------------------------------------------------------------------------- counting


def _equal_area(geojson: pd.Series) -> np.ndarray:
    from .equal_area import to_equal_area

    return to_equal_area(shapely.make_valid(shapely.from_geojson(geojson.to_numpy())))


def _has_attribute(frame: pd.DataFrame) -> pd.Series:
    return (frame["area_source"].fillna("footprint") != "footprint") & frame["area_ha"].notna()


def counted_areas(frame: pd.DataFrame, group: str = "period") -> pd.Series:
    """Each detection's share of the ground counted once within its `group` (METHOD), from
    labelled_frame's equal-area footprints."""
    counted = pd.Series(0.0, index=frame.index)
    if frame.empty:
        return counted
    frame = frame.copy()
    frame["_attribute"] = _has_attribute(frame)
    # Sources with an area attribute first, then by first import; by status; by id.
    first = frame.groupby("source")["id"].min()
    with_attribute = frame.groupby("source")["_attribute"].any()
    frame["_source_attribute"] = np.where(frame["source"].map(with_attribute).to_numpy(bool), 0, 1)
    frame["_source_first"] = frame["source"].map(first)
    rank = {status: n for n, status in enumerate(STATUS_PRECEDENCE)}
    frame["_status_rank"] = frame["status"].map(rank).fillna(len(rank))
    for _, part in frame.groupby(group, sort=False):
        part = part.sort_values(["_source_attribute", "_source_first", "_status_rank", "id"],
                                kind="stable")
        geometries = part["_equal_area"].to_numpy()
        own = shapely.area(geometries)
        tree = shapely.STRtree(geometries)
        left, right = tree.query(geometries, predicate="intersects")
        earlier = right < left
        neighbours: dict[int, list[int]] = {}
        for i, j in zip(left[earlier], right[earlier]):
            neighbours.setdefault(int(i), []).append(int(j))
        attribute = part["_attribute"].to_numpy()
        area_ha = part["area_ha"].to_numpy(dtype=float)
        values = np.empty(len(part))
        for i in range(len(part)):
            free = own[i]
            if i in neighbours and own[i] > 0:
                covered = shapely.union_all(geometries[neighbours[i]])
                free = shapely.area(shapely.difference(geometries[i], covered))
            if attribute[i]:
                share = free / own[i] if own[i] > 0 else 1.0
                values[i] = 0.0 if share <= 1 - SAME_SITE_SHARE else area_ha[i] * min(share, 1.0)
            else:
                values[i] = free / 10_000
        counted.loc[part.index] = values
    return counted


def labelled_frame(db, by: str = "year", sources: list[str] | None = None,
                   include_hidden: bool = False, context: ContextFilter = None) -> pd.DataFrame:
    """The detections Trends counts, with their period labels and equal-area footprints:
    read once, it gives both trend_table and source_table (`frame=`)."""
    frame = _labelled(db, by, sources, include_hidden, context)
    if len(frame):
        frame["_equal_area"] = _equal_area(frame["geometry"])
    return frame


def _labelled(db, by: str, sources, include_hidden: bool, context: ContextFilter = None) -> pd.DataFrame:
    if by not in ("year", "quarter"):
        raise ReviewError(f"trends are grouped by year or quarter, not {by!r}")
    frame = detections_frame(db, sources, include_hidden, context)
    if frame.empty:
        frame["period"] = pd.Series(dtype=object)
        return frame
    # One label per distinct period (a million detections share a few dozen). A detection
    # without a period reads as None or as NaN, by what else its column holds: both are "".
    spans = frame[["period_start", "period_end"]].fillna("")
    keys = list(zip(spans["period_start"].to_numpy(object), spans["period_end"].to_numpy(object)))
    labels = {key: period_label(key[0] or None, key[1] or None, by) for key in set(keys)}
    frame["period"] = [labels[key] for key in keys]
    return frame[frame["period"].notna()].copy()


def data_version(db) -> tuple:
    """Changes whenever a trend table could: detections added or removed, any verdict
    (statuses), a setting (how statuses are derived), what is hidden from Trends, or a
    context layer's overlaps. A page may keep its tables while this stays the same."""
    path = db.execute("pragma database_list").fetchone()[2]
    return (path,) + tuple(db.execute(
        "select (select count(*) from detections), (select max(id) from detections), "
        "(select count(*) from verdicts), (select max(id) from verdicts), "
        "(select group_concat(key || '=' || value || '@' || updated_at) from project_settings), "
        "(select group_concat(kind || ':' || key) from trend_hidden), "
        "(select group_concat(id || ':' || checked_through) from context_layers)").fetchone())


def trend_table(db, by: str = "year", regions: list | None = None, region_field: str | None = None,
                sources: list[str] | None = None, include_hidden: bool = False,
                context: ContextFilter = None, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per period (and region), with the columns in COLUMNS, then EXTRA_COLUMNS.

    Areas count each piece of ground once per period (METHOD); area_ha_listed is the plain
    sum of the detections' own areas, overlaps and all. With `context`, only the detections
    overlapping that layer (or its polygons with one value), their whole areas. `frame`:
    labelled_frame's for the same arguments, when already read."""
    frame = labelled_frame(db, by, sources, include_hidden, context) if frame is None else frame.copy()
    group = ["period"]
    if regions is not None or region_field:
        group = ["region", "period"]
    if frame.empty:
        return pd.DataFrame(columns=group[:-1] + COLUMNS + EXTRA_COLUMNS)
    if regions is not None:
        frame["region"] = assign_regions(frame, regions)
    elif region_field:
        frame["region"] = [json.loads(p or "{}").get(region_field) or "unknown" for p in frame["properties"]]
    frame["listed"] = frame["area_ha"].fillna(0.0)
    frame["counted"] = counted_areas(frame)
    frame["_attribute"] = _has_attribute(frame)
    rows = []
    for key, part in frame.groupby(group, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(group, key))
        row["detections"] = len(part)
        row["area_ha_all"] = part["counted"].sum()
        for status in STATUS_COLUMNS:
            mine = part[part["status"] == status]
            row[status] = len(mine)
            row[f"area_ha_{status}"] = mine["counted"].sum()
        row["area_ha_from_footprint"] = part.loc[~part["_attribute"], "counted"].sum()
        row["area_ha_from_attribute"] = part.loc[part["_attribute"], "counted"].sum()
        row["precision"], row["precision_low"], row["precision_high"] = _precision(
            row["verified"], row["false_positive"])
        row["area_ha_listed"] = part["listed"].sum()
        rows.append(row)
    table = pd.DataFrame(rows)
    table["area_ha_new"] = table["area_ha_all"]
    keys = ["region"] if "region" in table.columns else []
    if keys:
        table["area_ha_cumulative"] = table.groupby(keys)["area_ha_all"].cumsum()
    else:
        table["area_ha_cumulative"] = table["area_ha_all"].cumsum()
    return table[keys + COLUMNS + EXTRA_COLUMNS]


SOURCE_COLUMNS = ["period", "source", "detections", "area_ha", "area_ha_listed", "basis"]


def source_table(db, by: str = "year", sources: list[str] | None = None,
                 include_hidden: bool = False, context: ContextFilter = None,
                 frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per period and source: each source on its own (SOURCE_METHOD), so sources
    can be compared; basis says how its area was measured. `frame` as in trend_table."""
    frame = labelled_frame(db, by, sources, include_hidden, context) if frame is None else frame.copy()
    if frame.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    frame["counted"] = counted_areas(frame.assign(_group=frame["period"] + "\n" + frame["source"]),
                                     group="_group")
    frame["_attribute"] = _has_attribute(frame)
    rows = []
    for (period, source), part in frame.groupby(["period", "source"], sort=True):
        attribute = part["_attribute"].any()
        rows.append({"period": period, "source": source, "detections": len(part),
                     "area_ha": part["counted"].sum(), "area_ha_listed": part["area_ha"].fillna(0).sum(),
                     "basis": ("mined-area attribute" if part["_attribute"].all() else
                               "attribute and footprints" if attribute else "union of footprints")})
    return pd.DataFrame(rows, columns=SOURCE_COLUMNS)


def has_quarters(db, sources: list[str] | None = None, include_hidden: bool = False,
                 context: ContextFilter = None) -> bool:
    """Whether any detection's period lies within one quarter (else by quarter = by year)."""
    frame = _labelled(db, "quarter", sources, include_hidden, context)
    return bool(frame["period"].astype(str).str.contains("Q").any()) if len(frame) else False


def _precision(verified: int, false_positive: int) -> tuple[float, float, float]:
    reviewed = verified + false_positive
    low, high = wilson_interval(verified, reviewed)
    return (verified / reviewed if reviewed else math.nan), low, high


def totals_by_period(table: pd.DataFrame) -> pd.DataFrame:
    """One row per period of a trend table, summed over its regions if it has them, with
    precision, its Wilson interval and the cumulative areas computed again from the sums,
    plus the cumulative verified area."""
    if "region" in table.columns:
        summed = [c for c in COLUMNS[1:] if not c.startswith("precision") and c != "area_ha_cumulative"]
        table = table.groupby("period", as_index=False, sort=True)[summed].sum()
        table["area_ha_cumulative"] = table["area_ha_all"].cumsum()
        values = [_precision(int(v), int(f)) for v, f in zip(table["verified"], table["false_positive"])]
        for position, column in enumerate(("precision", "precision_low", "precision_high")):
            table[column] = pd.Series([v[position] for v in values], index=table.index, dtype=float)
    table = table[COLUMNS].copy()
    table["area_ha_verified_cumulative"] = table["area_ha_verified"].astype(float).cumsum()
    return table


def precision_by_period(totals: pd.DataFrame) -> pd.DataFrame:
    """The periods of a totals table with reviewed detections: precision, its 95% Wilson
    interval, and the distances from the estimate down and up to the interval's ends
    (what an error bar draws)."""
    reviewed = totals[(totals["verified"] + totals["false_positive"]) > 0]
    out = reviewed[["period", "verified", "false_positive", "precision", "precision_low",
                    "precision_high"]].reset_index(drop=True)
    out["below"] = (out["precision"] - out["precision_low"]).astype(float)
    out["above"] = (out["precision_high"] - out["precision"]).astype(float)
    return out


def area_basis(table: pd.DataFrame) -> str:
    """How the areas in a table were measured, in words for a chart caption."""
    attribute = table["area_ha_from_attribute"].sum() if len(table) else 0
    footprint = table["area_ha_from_footprint"].sum() if len(table) else 0
    if attribute and footprint:
        return (f"{attribute:,.0f} ha from the sources' mined-area attribute, {footprint:,.0f} ha "
                "from footprints in an equal-area projection; ground covered by several "
                "detections is counted once")
    if attribute:
        return ("areas from the sources' mined-area attribute (e.g. Mined area (ha)); a site "
                "that several sources give is counted once")
    return ("areas from detection footprints in an equal-area projection; overlapping "
            "footprints are counted once")
