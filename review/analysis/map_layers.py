"""What the Map page draws: every detection that matches the filters, as columns.

A million detections have to reach the browser in seconds, so nothing is drawn from a JSON
row per detection. The detections are read here in bulk into columns (ids, positions,
status codes, sources, periods, scores) and, where the sizes allow, their footprints as one
array of ring vertices with start offsets; `review.analysis.map_payload` packs the columns
as typed arrays for deck.gl's binary attributes.

- Detections are ordered pending first and verified last, so reviewed ones lie on top.
- Footprints are simplified for the screen (a few metres) and cut into their polygon parts
  (outer rings only). Up to FOOTPRINT_LIMIT matching detections they are all sent, as long
  as their vertices stay within VERTEX_BUDGET; beyond that, the reviewed ones' footprints
  are sent and the rest are dots (the browser asks for the footprints in view when zoomed in).
- After a verdict only the detections whose status changed since the columns were read are
  sent again (`changes_since`), not the columns.
- The tooltip is put together in the browser from the columns; the text about the last
  verdict leaves out a detection waiting for its blind second look.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from .. import settings
from ..judging import verdicts
from ..judging.queue import Filters

# Drawn in this order: later ones lie on top.
DRAW_ORDER = ("pending", "false_positive", "unsure", "needs_second_opinion", "disputed", "verified")
STATUS_COLOURS = {
    "pending": (150, 150, 150),
    "false_positive": (43, 131, 186),
    "unsure": (253, 174, 97),
    "needs_second_opinion": (171, 82, 185),
    "disputed": (118, 42, 131),
    "verified": (215, 48, 31),
}
STATUS_LABELS = {"pending": "pending", "false_positive": "false positive", "unsure": "unsure",
                 "needs_second_opinion": "needs a second opinion", "disputed": "disputed",
                 "verified": "verified"}
SIMPLIFY_DEGREES = 0.00003      # about 3 m: finer than any screen shows a mining footprint
# Footprints of every matching detection are sent up to this many detections and this many
# ring vertices (8 bytes each); beyond them, a dot each and the reviewed ones' footprints.
# Measured: bench/map_browser.py.
FOOTPRINT_LIMIT = settings.MAP_FOOTPRINTS
VERTEX_BUDGET = 2_500_000
# Footprints the browser asks for when zoomed in on a map of dots only, at most this many.
VIEWPORT_FOOTPRINTS = 30_000


def hex_colour(status: str) -> str:
    return "#%02x%02x%02x" % STATUS_COLOURS.get(status, (0, 0, 0))


def period_label(period: str | None) -> str:
    """A period start as the tooltip shows it: the year for a calendar year, else the date."""
    if not period:
        return ""
    return period[:4] if period.endswith("-01-01") else period


def last_text(last: tuple | None) -> str | None:
    """The tooltip's words about the last verdict on a detection: (reviewer, verdict, note)."""
    if not last:
        return None
    reviewer, verdict, note = last
    return f"last: {verdict.replace('_', ' ')} by {reviewer}" + (f" ({note})" if note else "")


@dataclass
class Footprints:
    """Polygon parts (outer rings) as one vertex array: part k's ring is
    xy[starts[k]:starts[k + 1]], closed, and belongs to detection `owner[k]` (a row of the
    MapColumns it was read with)."""
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.uint32))
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    @property
    def parts(self) -> int:
        return len(self.owner)

    @property
    def vertices(self) -> int:
        return len(self.xy)


@dataclass
class MapColumns:
    """Every matching detection, one row each, pending first and verified last."""
    ids: np.ndarray                 # int64
    lonlat: np.ndarray              # float32 (n, 2): the dot
    status: np.ndarray              # uint8: index into `statuses`
    source: np.ndarray              # uint16: index into `sources`
    period: np.ndarray              # uint16: index into `periods` (labels as the tooltip shows)
    score: np.ndarray               # float32, NaN where there is none
    statuses: list[str]
    sources: list[str]
    periods: list[str]
    last: dict[int, str]            # id -> the tooltip's words on its last verdict (not blind ones)
    footprints: Footprints
    all_footprints: bool            # every detection's footprint is in `footprints`
    no_footprint: int               # detections drawn as a dot only: empty or unreadable footprint
    bounds: tuple[float, float, float, float] | None
    verdict_mark: int               # the last verdict these columns reflect

    @property
    def detections(self) -> int:
        return len(self.ids)

    def counts(self, changes: list[tuple] = ()) -> dict[str, int]:
        """Detections per status, in drawing order, after these changes (changes_since)."""
        tally = np.bincount(self.status, minlength=len(self.statuses)).astype(int)
        counts = dict(zip(self.statuses, tally.tolist()))
        if changes:
            rows = self.rows_of([c[0] for c in changes])
            for row, change in zip(rows, changes):
                counts[self.statuses[self.status[row]]] -= 1
                counts[change[1]] = counts.get(change[1], 0) + 1
        return {status: n for status, n in counts.items() if n}

    def rows_of(self, ids) -> np.ndarray:
        """The rows of these detection ids (each must be in the columns)."""
        order = np.argsort(self.ids, kind="stable")
        return order[np.searchsorted(self.ids, np.asarray(ids, np.int64), sorter=order)]

    def holds(self, ids) -> np.ndarray:
        """Which of these detection ids are in the columns."""
        return np.isin(np.asarray(ids, np.int64), self.ids)


def _status_order(found: set[str]) -> list[str]:
    return list(DRAW_ORDER) + sorted(found - set(DRAW_ORDER))


def _codes(values: list, table: list) -> np.ndarray:
    index = {value: k for k, value in enumerate(table)}
    return np.fromiter((index[v] for v in values), np.int64, len(values))


def read_footprints(texts: list[str | None], owners: np.ndarray) -> tuple[Footprints, int]:
    """The footprints (GeoJSON text) of these rows, simplified for the screen, as outer rings;
    and how many had none to draw (empty, unreadable or not a polygon)."""
    if not len(texts):
        return Footprints(), 0
    geometry = shapely.from_geojson(np.array(texts, dtype=object), on_invalid="ignore")
    usable = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    geometry, owners = geometry[usable], np.asarray(owners)[usable]
    display = geometry.copy()
    detailed = shapely.get_num_coordinates(geometry) > 16     # squares need no simplifying
    display[detailed] = shapely.simplify(geometry[detailed], SIMPLIFY_DEGREES, preserve_topology=True)
    parts, which = shapely.get_parts(display, return_index=True)
    polygonal = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, which = parts[polygonal], which[polygonal]
    drawn = np.zeros(len(owners), bool)
    drawn[which] = True
    missing = int((~usable).sum() + (~drawn).sum())
    rings = shapely.get_exterior_ring(parts)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    starts = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(np.bincount(ring, minlength=len(rings)), out=starts[1:])
    return Footprints(owners[which].astype(np.int32), starts.astype(np.uint32),
                      xy.astype(np.float32)), missing


def read_columns(db, filters: Filters | None = None, footprint_limit: int = FOOTPRINT_LIMIT,
                 vertex_budget: int = VERTEX_BUDGET) -> MapColumns:
    """Every detection matching the filters, as columns; footprints as the sizes allow."""
    filters = filters or Filters(status=None)
    where, params = filters.where()
    mark = db.execute("select coalesce(max(id), 0) from verdicts").fetchone()[0]
    shape = ", geometry" if filters.area is not None else ""
    records = db.execute(f"select id, source, status, score, period_start, lon, lat, west, south, "
                         f"east, north{shape} from detections where {where}", params).fetchall()
    if filters.area is not None and records:
        texts = [r[11] for r in records]
        geometry = shapely.from_geojson(np.array(texts, dtype=object), on_invalid="ignore")
        missing = shapely.is_missing(geometry)       # unreadable footprint: its dot decides
        if missing.any():
            geometry[missing] = shapely.points([r[5:7] for r, m in zip(records, missing) if m])
        keep = shapely.intersects(geometry, filters.area)
        records = [r for r, k in zip(records, keep) if k]
    statuses = _status_order({r[2] for r in records})
    status = _codes([r[2] for r in records], statuses)
    ids = np.fromiter((r[0] for r in records), np.int64, len(records))
    order = np.lexsort((ids, status))
    records = [records[k] for k in order]
    ids, status = ids[order], status[order]
    sources = sorted({r[1] or "" for r in records})
    labels = {start: period_label(start) for start in {r[4] for r in records}}
    periods = sorted(set(labels.values()))
    lonlat = np.array([(r[5], r[6]) for r in records], np.float64).reshape(-1, 2)
    score = np.array([np.nan if r[3] is None else r[3] for r in records], np.float64)
    box = np.array([r[7:11] for r in records], np.float64).reshape(-1, 4)
    bounds = (float(box[:, 0].min()), float(box[:, 1].min()), float(box[:, 2].max()),
              float(box[:, 3].max())) if len(records) else None
    reviewed = status != statuses.index("pending")
    every = len(records) <= footprint_limit
    chosen = np.arange(len(records)) if every else np.flatnonzero(reviewed)
    footprints, missing = read_footprints(_geometry_of(db, ids[chosen]), chosen)
    if every and footprints.vertices > vertex_budget:
        every = False
        keep = reviewed[footprints.owner]
        footprints = _subset(footprints, keep)
    # Blind second opinions: the map is the same for everyone, so nobody's tooltip says who
    # decided what on a detection still waiting for its second look.
    blind = set(ids[status == statuses.index("needs_second_opinion")].tolist())
    inside = set(ids.tolist())
    last = {ident: last_text(words) for ident, words in verdicts.latest(db).items()
            if ident in inside and ident not in blind}
    return MapColumns(ids, lonlat.astype(np.float32), status.astype(np.uint8),
                      _codes([r[1] or "" for r in records], sources).astype(np.uint16),
                      _codes([labels[r[4]] for r in records], periods).astype(np.uint16),
                      score.astype(np.float32), statuses, sources, periods, last, footprints,
                      every, missing, bounds, mark)


def _geometry_of(db, ids: np.ndarray) -> list[str | None]:
    """The stored footprints of these detections, in this order."""
    if not len(ids):
        return []
    found: dict[int, str] = {}
    values = ids.tolist()
    if len(values) > 5000:
        wanted = set(values)
        for ident, text in db.execute("select id, geometry from detections"):
            if ident in wanted:
                found[ident] = text
    else:
        for start in range(0, len(values), 900):
            chunk = values[start:start + 900]
            found.update(db.execute(f"select id, geometry from detections where id in "
                                    f"({','.join('?' * len(chunk))})", chunk).fetchall())
    return [found.get(i) for i in values]


def _subset(footprints: Footprints, keep: np.ndarray) -> Footprints:
    """The parts of these footprints where keep is true."""
    lengths = np.diff(footprints.starts.astype(np.int64))[keep]
    starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    vertex_keep = np.repeat(keep, np.diff(footprints.starts.astype(np.int64)))
    return Footprints(footprints.owner[keep], starts.astype(np.uint32), footprints.xy[vertex_keep])


def changes_since(db, columns: MapColumns) -> list[tuple[int, str, str | None]]:
    """Detections of these columns with a verdict recorded after they were read: (id, status
    now, the tooltip's words on its last verdict or None). What the map sends after a verdict."""
    touched = [r[0] for r in db.execute(
        "select distinct detection_id from verdicts where id > ? and detection_id is not null",
        [columns.verdict_mark])]
    touched = [i for i, inside in zip(touched, columns.holds(touched)) if inside]
    changes = []
    for start in range(0, len(touched), 900):
        chunk = touched[start:start + 900]
        marks = ",".join("?" * len(chunk))
        statuses = dict(db.execute(f"select id, status from detections where id in ({marks})", chunk))
        last = {row[0]: row[1:] for row in db.execute(
            f"select v.detection_id, v.reviewer, v.verdict, v.note from verdicts v join "
            f"(select detection_id, max(id) as id from verdicts where detection_id in ({marks}) "
            f"group by detection_id) m on v.id = m.id", chunk)}
        for ident in chunk:
            status = statuses.get(ident)
            if status is None:
                continue
            words = None if status == "needs_second_opinion" else last_text(last.get(ident))
            changes.append((int(ident), status, words))
    return sorted(changes)


def highest_scores(db, columns: MapColumns, limit: int) -> list[dict]:
    """The `limit` detections of the columns with the highest scores (no score last, then by
    id), as rows for the Map's table: picked from the columns in memory, not by sorting the
    whole table in SQL (seconds at a million detections)."""
    score = columns.score.astype(np.float64)
    missing = np.isnan(score)
    order = np.lexsort((columns.ids, -np.where(missing, 0, score), missing))[:limit]
    ids = columns.ids[order].tolist()
    found = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        cursor = db.execute(f"select id, source, status, score, area_ha, period_start from "
                            f"detections where id in ({','.join('?' * len(chunk))})", chunk)
        names = [d[0] for d in cursor.description]
        found.update({row[0]: dict(zip(names, row)) for row in cursor})
    return [found[i] for i in ids if i in found]


def footprints_in_view(db, columns: MapColumns, view: tuple[float, float, float, float],
                       limit: int = VIEWPORT_FOOTPRINTS) -> tuple[Footprints, bool]:
    """The footprints of the columns' detections whose boxes meet this view (west, south,
    east, north), at most `limit` detections; and whether that is all of them."""
    west, south, east, north = view
    rows = db.execute("select id from detections where east >= ? and west <= ? and north >= ? "
                      "and south <= ? limit ?", [west, east, south, north, limit * 4 + 1]).fetchall()
    ids = np.array([r[0] for r in rows], np.int64)
    ids = ids[columns.holds(ids)] if len(ids) else ids
    if len(ids) and columns.footprints.parts:       # already sent with the columns
        ids = ids[~np.isin(ids, columns.ids[columns.footprints.owner])]
    complete = len(rows) <= limit * 4 and len(ids) <= limit
    ids = ids[:limit]
    owners = columns.rows_of(ids) if len(ids) else np.zeros(0, np.int64)
    footprints, _ = read_footprints(_geometry_of(db, ids), owners)
    return footprints, complete


def view_state(bounds: tuple[float, float, float, float] | None, width_px: int = 900,
               height_px: int = 560) -> dict:
    """A deck.gl view (centre and zoom) that shows these bounds whole."""
    if bounds is None:
        return {"longitude": -60.0, "latitude": -5.0, "zoom": 3}
    west, south, east, north = bounds
    lon = (west + east) / 2
    lat = (south + north) / 2

    def mercator_y(latitude: float) -> float:
        latitude = max(min(latitude, 85.0), -85.0)
        return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))

    span_x = max(east - west, 1e-4) / 360
    span_y = max(mercator_y(north) - mercator_y(south), 1e-6) / (2 * math.pi)
    zoom = min(math.log2(width_px / 512 / span_x), math.log2(height_px / 512 / span_y)) - 0.2
    centre_y = (mercator_y(north) + mercator_y(south)) / 2
    lat = math.degrees(2 * math.atan(math.exp(centre_y)) - math.pi / 2)
    return {"longitude": lon, "latitude": lat, "zoom": max(0.0, min(zoom, 17.0))}


def raster_style(tile_url: str, attribution: str = "") -> str:
    """A MapLibre style for one XYZ raster basemap, as a data: URL (the map's own code is
    served by the app; only the tiles come from the basemap's server)."""
    style = {"version": 8,
             "sources": {"basemap": {"type": "raster", "tiles": [tile_url], "tileSize": 256,
                                     "attribution": attribution, "maxzoom": 19}},
             "layers": [{"id": "background", "type": "background",
                         "paint": {"background-color": "#e8e8e8"}},
                        {"id": "basemap", "type": "raster", "source": "basemap"}]}
    return "data:application/json;base64," + base64.b64encode(json.dumps(style).encode()).decode()
