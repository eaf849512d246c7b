"""A place's spectral time series: every Sentinel-2 L2A acquisition over a site's or a
detection's footprint, reduced to a few numbers per date, stored, and drawn.

Per acquisition: the median NDVI, bare-soil index (BSI) and MNDWI of the footprint's clear
pixels and of a ring around it (100-500 m outside by default), and the share of each that
is clear (the pixels: spectral_pixels). Clouds are judged over the footprint from the scene
classification layer (SCL), never from the scene's `eo:cloud_cover`: a scene that is 58%
cloud can be clear over the site. So every item in the window is read, from every page of
the search, and an acquisition counts as clear when at least half of its footprint is
(CLEAR_SHARE). The default window runs from two years before the place's first detection
period to the end of its last.

Reading goes through fetch's STAC machinery (pystac-client search, only the window each band
needs read from the COGs), a few scenes at a time; a scene cloudy over the whole footprint
costs one read (its SCL). Stored scenes covering the place count too, offline.

Resumable, and never half stored: each scene read is staged in a file of its own under the
tile cache; the series (observations, failures, the window) enters the database in one
transaction only once every scene of the window was read, or could not be for a reason that
will not change (one line per reason). A window already stored is answered from the
database without asking the network anything. A service that cannot be reached leaves the
stored scenes' observations, and the summary says what was not fetched.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import shapely

from .. import files, settings
from ..errors import ReviewError
from ..judging.verdicts import REASONS, VERDICTS, decisions
from ..progress import Progress
from ..store import now, transaction

if TYPE_CHECKING:
    from .spectral_pixels import Ground

# The pixels (rasterio, GDAL, the STAC client) are imported when a series is fetched, so
# reading a stored series (sites list, the charts) stays light.

RING = (100.0, 500.0)           # metres outside the footprint
MAX_RING_M = 5_000.0
CLEAR_SHARE = 0.5               # share of the footprint's pixels that must be clear
YEARS_BEFORE = 2                # the default window starts this long before the first period
WORKERS = 8                     # scenes read at once: the time goes to HTTP round trips
COLUMNS = ("acquired", "item_id", "source", "kind", "scene_cloud_cover", "clear_share",
           "ring_clear_share", "ndvi", "bsi", "mndwi", "ring_ndvi", "ring_bsi", "ring_mndwi",
           "footprint_pixels", "ring_pixels")


class SeriesError(ReviewError):
    """A place's time series cannot be made or read as asked."""


class NoClearObservation(SeriesError):
    """Every acquisition in the window was cloudy over the footprint; nothing was stored."""


# --------------------------------------------------------------------------- places


def site_place(site_id: int) -> str:
    return f"site:{int(site_id)}"


def detection_place(detection_id: int) -> str:
    return f"detection:{int(detection_id)}"


@dataclass(frozen=True)
class Place:
    key: str                     # 'site:12'
    label: str                   # 'site 12'
    geometry: shapely.Geometry   # lon/lat
    text: str                    # the footprint as stored, to notice that it changed
    first_day: str | None        # its detections' periods
    last_day: str | None
    site_id: int | None = None
    detection_id: int | None = None


def place_of(db, place: str) -> Place:
    """The footprint and dates of 'site:ID' or 'detection:ID'."""
    kind, _, number = str(place).partition(":")
    if kind not in ("site", "detection") or not number.isdigit():
        raise SeriesError(f"{place!r} is not a place: give site:ID or detection:ID")
    ident = int(number)
    if kind == "site":
        row = db.execute("select geometry from sites where id = ?", [ident]).fetchone()
        if row is None:
            raise SeriesError(_missing_site(db, ident))
        days = db.execute("select min(d.period_start), max(coalesce(d.period_end, d.period_start)) "
                          "from site_members m join detections d on d.id = m.detection_id "
                          "where m.site_id = ?", [ident]).fetchone()
        return Place(site_place(ident), f"site {ident}", shapely.from_geojson(row[0]), row[0],
                     *days, site_id=ident)
    row = db.execute("select geometry, period_start, coalesce(period_end, period_start) "
                     "from detections where id = ?", [ident]).fetchone()
    if row is None:
        raise SeriesError(f"there is no detection {ident}")
    return Place(detection_place(ident), f"detection {ident}", shapely.from_geojson(row[0]),
                 row[0], row[1], row[2], detection_id=ident)


def _missing_site(db, site_id: int) -> str:
    if db.execute("select count(*) from site_builds").fetchone()[0] == 0:
        return "sites have not been built yet; build them first (python -m review sites build)"
    row = db.execute("select into_id from site_merges where absorbed_id = ? order by id desc "
                     "limit 1", [site_id]).fetchone()
    return f"site {site_id} was merged into site {row[0]}" if row else f"there is no site {site_id}"


def _day(text: str, name: str) -> str:
    try:
        return dt.date.fromisoformat(str(text)[:10]).isoformat()
    except ValueError:
        raise SeriesError(f"the {name} must be a date YYYY-MM-DD (got {text!r})") from None


def window(place: Place, start: str | None = None, end: str | None = None) -> tuple[str, str]:
    """The dates asked for, or by default from two years before the place's first period to
    the end of its last."""
    start = _day(start, "start") if start else None
    end = _day(end, "end") if end else None
    if start is None or end is None:
        if not place.first_day:
            raise SeriesError(f"{place.label} has no dated detection, so its series has no "
                              "default window; give a start and an end")
        first = dt.date.fromisoformat(place.first_day[:10])
        earlier = first.replace(year=first.year - YEARS_BEFORE, day=min(first.day, 28)
                                if first.month == 2 else first.day)
        start = start or earlier.isoformat()
        end = end or _day(place.last_day, "end")
    if start > end:
        raise SeriesError(f"the window {start} to {end} is empty: its start is after its end")
    return start, end


def check_ring(ring) -> tuple[float, float]:
    try:
        inner, outer = (float(v) for v in ring)
    except (TypeError, ValueError):
        raise SeriesError(f"the ring is two distances in metres, INNER,OUTER (got {ring!r})") from None
    if not (0 <= inner < outer <= MAX_RING_M):
        raise SeriesError(f"the ring must lie from 0 to {MAX_RING_M:,.0f} m outside the "
                          f"footprint with its inner edge inside its outer (got {inner:g}-{outer:g} m)")
    return inner, outer


# --------------------------------------------------------------------------- fetching


@dataclass
class Summary:
    """What a fetch did, in lines a person reads (one per reason a scene was left out)."""

    place: str
    label: str
    start: str
    end: str
    observations: int = 0        # stored in the window
    clear: int = 0
    found: int = 0               # catalogue scenes in the window
    read: int = 0                # read over the network this time
    resumed: int = 0             # staged by an interrupted run, not read again
    scenes: int = 0              # stored scenes used this time
    failures: dict[str, int] = field(default_factory=dict)
    unfetched: str | None = None
    cached: bool = False
    seconds: float = 0.0

    def lines(self) -> list[str]:
        head = (f"{self.label}, {self.start} to {self.end}: {self.observations} observations, "
                f"{self.clear} clear over the footprint")
        if self.cached:
            head += " (stored; nothing fetched)"
        elif self.unfetched:
            head += f" ({self.scenes} from stored scenes; {self.seconds:.1f} s)"
        else:
            extra = (f", {self.resumed} kept from an interrupted run" if self.resumed else "") + (
                f", {self.scenes} from stored scenes" if self.scenes else "")
            head += f" ({self.found} catalogue scenes, {self.read} read now{extra}; {self.seconds:.1f} s)"
        lines = [head] + [f"{count} scene{'s' if count != 1 else ''} left out: {reason}"
                          for reason, count in sorted(self.failures.items())]
        return lines + ([self.unfetched] if self.unfetched else [])

    def summary(self) -> str:
        return "; ".join(self.lines())


def _staging(place: Place, ring, source) -> Path:
    key = json.dumps([place.key, place.text, list(ring), source.url, source.collection])
    return settings.tile_cache_dir() / "series" / hashlib.sha256(key.encode()).hexdigest()[:20]


def _staged_path(folder, item_id: str):
    return folder / ("".join(c if c.isalnum() or c in "-_." else "_" for c in item_id) + ".json")


def _search(source, bbox, start: str, end: str) -> list:
    from ..detection import fetch as stac
    from .spectral_pixels import date_of

    # Every scene, however cloudy the catalogue says it is, from every page.
    everything = replace(source, max_items=None, cloud_limit=100.0)
    try:
        items = stac.search(everything, stac.Request(bbox=bbox, start=start, end=end))
    except stac.NoImagery:
        return []
    return sorted(items, key=lambda item: (date_of(item), item.id))


def _read_items(items: list, ground: Ground, folder, label: str, summary: Summary,
                progress: Progress | None) -> tuple[list[dict], dict[str, str]]:
    """Observations of the items and the permanent reasons some gave none; staged one file
    each, so an interrupted run resumes. Raises FetchError when the service failed."""
    from ..detection import fetch as stac
    from .spectral_pixels import Skip, read_item

    rows, skipped, pending = [], {}, []
    for item in items:
        path = _staged_path(folder, item.id)
        if path.exists():
            outcome = json.loads(path.read_text())
            summary.resumed += 1
            if "skip" in outcome:
                skipped[item.id] = outcome["skip"]
            else:
                rows.append(outcome)
        else:
            pending.append(item)
    total, done, failed = len(items), len(items) - len(pending), []
    if progress:
        progress(done, total, "")
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(read_item, item, ground, label): item for item in pending}
        for future in as_completed(futures):
            item = futures[future]
            try:
                outcome = future.result()
            except CancelledError:
                continue
            except stac.FetchError as exc:
                if not failed:               # the service is failing: ask it nothing more
                    for other in futures:
                        other.cancel()
                failed.append(exc)
                continue
            except Skip as skip:
                outcome = {"skip": skip.reason}
                skipped[item.id] = skip.reason
            else:
                rows.append(outcome)
            summary.read += 1
            with files.replacing(_staged_path(folder, item.id)) as partial:
                partial.write_text(json.dumps(outcome))
            done += 1
            if progress:
                progress(done, total, item.id)
    if failed:
        raise stac.FetchError(
            f"reading scenes stopped after {done} of {total}: {failed[0]}; nothing was stored: "
            f"fetch again to resume from the {done} scenes read",
            details=failed[0].details)
    return rows, skipped


def fetch(db, place: str, start: str | None = None, end: str | None = None, source=None,
          progress: Progress | None = None, *, ring=RING) -> Summary:
    """Fetch (or find stored) the place's series over the window; returns what was done."""
    from ..detection import fetch as stac
    from .spectral_pixels import ground_of, host, stored_scenes

    started = time.perf_counter()
    spot = place_of(db, place)
    start, end = window(spot, start, end)
    ring = check_ring(ring)
    summary = Summary(spot.key, spot.label, start, end)
    if db.execute("select 1 from series_windows where place = ? and done = 1 and start <= ? and "
                  "end >= ? and geometry = ? and ring_inner_m = ? and ring_outer_m = ?",
                  [spot.key, start, end, spot.text, *ring]).fetchone():
        summary.cached = True
        return _counted(db, summary, started)
    # Rows of another footprint (a rebuilt site) or ring are all read again, then replaced.
    fresh = db.execute("select 1 from series_windows where place = ? and (geometry != ? or "
                       "ring_inner_m != ? or ring_outer_m != ?)", [spot.key, spot.text, *ring]
                       ).fetchone() is not None
    known = set() if fresh else {r[0] for r in db.execute(
        "select item_id from series_observations where place = ? union "
        "select item_id from series_failures where place = ?", [spot.key, spot.key])}
    ground = ground_of(spot.geometry, *ring)
    rows, skipped = stored_scenes(db, ground, start, end, known)
    summary.scenes = len(rows)
    old = [] if fresh else stored(db, spot.key, start, end)
    source = source or stac.Source()
    try:
        items = _search(source, ground.bbox, start, end)
    except stac.FetchError as exc:
        if not rows and not old:
            raise
        items = None
        summary.unfetched = (f"not fetched: {exc}; the series shows what is stored (from stored "
                             "scenes and earlier fetches) until it is fetched again")
    if items is not None:
        summary.found = len(items)
        label = f"{source.collection} ({host(source.url)})"
        folder = _staging(spot, ring, source)
        found, more = _read_items([i for i in items if i.id not in known], ground, folder, label,
                                  summary, progress)
        rows += found
        skipped.update(more)
    if not any(is_clear(r) for r in rows + old):
        seen = len(rows) + len(old)
        if seen:
            why = f"all {seen} scenes were cloudy over it (judged by their scene classification)"
        elif skipped:
            why = f"the {len(skipped)} scenes gave none ({'; '.join(sorted(set(skipped.values())))})"
        else:
            why = "no scene covers it"
        raise NoClearObservation(f"no clear observation of {spot.label} between {start} and "
                                 f"{end}: {why}; nothing was stored")
    _store(db, spot, start, end, ring, rows, skipped, done=items is not None, fresh=fresh)
    if items is not None:
        shutil.rmtree(_staging(spot, ring, source), ignore_errors=True)
    return _counted(db, summary, started)


def _store(db, place: Place, start, end, ring, rows, skipped, done: bool, fresh: bool) -> None:
    stamp = now()
    with transaction(db):
        if fresh:
            for table in ("series_observations", "series_windows", "series_failures"):
                db.execute(f"delete from {table} where place = ?", [place.key])
        db.conn.executemany(
            f"insert or replace into series_observations (place, {', '.join(COLUMNS)}, fetched_at) "
            f"values ({', '.join('?' * (len(COLUMNS) + 2))})",
            [(place.key, *(row[c] for c in COLUMNS), stamp) for row in rows])
        db.conn.executemany("insert or replace into series_failures (place, item_id, reason, at) "
                            "values (?, ?, ?, ?)",
                            [(place.key, item_id, reason, stamp) for item_id, reason in skipped.items()])
        if done:
            count = db.execute("select count(*) from series_observations where place = ? and "
                               "acquired between ? and ?", [place.key, start, end]).fetchone()[0]
            db.execute("insert or replace into series_windows (place, start, end, geometry, "
                       "ring_inner_m, ring_outer_m, items, done, updated_at) values "
                       "(?, ?, ?, ?, ?, ?, ?, 1, ?)", [place.key, start, end, place.text, *ring, count, stamp])


def _counted(db, summary: Summary, started: float) -> Summary:
    rows = stored(db, summary.place, summary.start, summary.end)
    summary.observations, summary.clear = len(rows), sum(r["clear"] for r in rows)
    summary.failures = dict(db.execute("select reason, count(*) from series_failures where "
                                       "place = ? group by reason", [summary.place]).fetchall())
    summary.seconds = time.perf_counter() - started
    return summary


# --------------------------------------------------------------------------- reading


def is_clear(row: dict) -> bool:
    """Whether an observation shows the footprint: at least CLEAR_SHARE of it clear."""
    return (row.get("clear_share") or 0) >= CLEAR_SHARE and row.get("ndvi") is not None


def stored(db, place: str, start: str | None = None, end: str | None = None) -> list[dict]:
    """The place's stored observations (in the window, when given), by date; each with
    `clear` (see is_clear)."""
    cursor = db.execute(f"select {', '.join(COLUMNS)}, fetched_at from series_observations "
                        "where place = ? and acquired >= ? and acquired <= ? order by acquired, item_id",
                        [place, start or "", end or "9999"])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    for row in rows:
        row["clear"] = is_clear(row)
    return rows


def windows(db, place: str) -> list[dict]:
    """The windows stored whole for the place, oldest start first."""
    cursor = db.execute("select start, end, items, ring_inner_m, ring_outer_m, updated_at from "
                        "series_windows where place = ? and done = 1 order by start", [place])
    return [dict(zip([d[0] for d in cursor.description], r)) for r in cursor.fetchall()]


def marks(db, place: str, with_verdicts: bool = True) -> tuple[list[dict], list[dict]]:
    """What the chart marks: the detection periods (period, start, end, state) and each
    standing verdict (date: the end of the after imagery it saw, else of its detection's
    period; label: the verdict in words; no reviewer names)."""
    spot = place_of(db, place)
    if spot.site_id is not None:
        periods = db.execute(
            "select m.period, min(d.period_start), max(coalesce(d.period_end, d.period_start)), "
            "p.state from site_members m join detections d on d.id = m.detection_id left join "
            "site_periods p on p.site_id = m.site_id and p.period = m.period where m.site_id = ? "
            "and m.period is not null group by m.period order by m.period", [spot.site_id]).fetchall()
        members = db.execute("select d.id, d.period_end from site_members m join detections d on "
                             "d.id = m.detection_id where m.site_id = ? order by d.id",
                             [spot.site_id]).fetchall()
    else:
        periods = [(f"{spot.first_day} to {spot.last_day}", spot.first_day, spot.last_day, None)]
        members = [(spot.detection_id, spot.last_day)]
    spans = [{"period": p, "start": s, "end": e, "state": state} for p, s, e, state in periods if s]
    found = []
    for detection_id, period_end in members if with_verdicts else ():
        cursor = db.execute("select * from verdicts where detection_id = ? order by id", [detection_id])
        names = [d[0] for d in cursor.description]
        history = [dict(zip(names, r)) for r in cursor.fetchall()]
        for verdict in decisions(history, lambda h: h["verdict"]):
            when = verdict.get("after_end") or verdict.get("after_start") or period_end
            if not when:
                continue
            words = VERDICTS.get(verdict["verdict"], verdict["verdict"])
            if verdict.get("reason"):
                words += f" ({REASONS.get(verdict['reason'], verdict['reason'])})"
            found.append({"date": str(when)[:10], "label": f"{words}, detection {detection_id}",
                          "verdict": verdict["verdict"]})
    return spans, found


# --------------------------------------------------------------------------- the chart

TRACES = (("ndvi", "NDVI", "#1a9850"), ("bsi", "bare-soil index", "#a6611a"),
          ("mndwi", "MNDWI (water)", "#2c7bb6"))
VERDICT_COLOURS = {"verified": "#d7301f", "false_positive": "#2b83ba", "unsure": "#fdae61"}


def _span(period) -> tuple:
    if isinstance(period, dict):
        return (period.get("period") or period.get("label"), period.get("start"), period.get("end"),
                period.get("state"))
    return (*tuple(period), None)[:4]


def _mark(verdict) -> tuple:
    if isinstance(verdict, dict):
        return verdict.get("date"), verdict.get("label") or verdict.get("verdict"), verdict.get("verdict")
    return (*tuple(verdict), None)[:3]


def figure(rows: list[dict], periods=(), verdicts=(), onset=None, height: int = 420):
    """A Plotly chart of the clear observations: footprint (solid) against ring (dotted) for
    NDVI, BSI and MNDWI; detection periods shaded, verdicts marked at the top; the onset's
    bracket shaded red when `onset` (onset.Onset) was found."""
    import plotly.graph_objects as go

    clear = [r for r in rows if is_clear(r)]
    chart = go.Figure()
    dates = [r["acquired"] for r in clear]
    hover = [[r["clear_share"], r["source"]] for r in clear]
    for name, words, colour in TRACES:
        chart.add_scatter(x=dates, y=[r[name] for r in clear], mode="lines+markers",
                          name=f"{words}, footprint", line={"color": colour, "width": 2},
                          marker={"size": 5}, customdata=hover, legendgroup=name,
                          hovertemplate=f"%{{x}}: {words} %{{y:.2f}} over the footprint "
                                        "(%{customdata[0]:.0%} clear; %{customdata[1]})<extra></extra>")
        chart.add_scatter(x=dates, y=[r["ring_" + name] for r in clear], mode="lines",
                          name=f"{words}, ring", legendgroup=name,
                          line={"color": colour, "width": 1, "dash": "dot"},
                          hovertemplate=f"%{{x}}: {words} %{{y:.2f}} in the ring<extra></extra>")
    for period in periods:
        label, start, end, state = _span(period)
        if start:
            chart.add_vrect(x0=start, x1=end or start, fillcolor="#888", opacity=0.12, line_width=0,
                            annotation_text=f"{label}" + (f" · {state.replace('_', ' ')}" if state else ""),
                            annotation_position="top left", annotation_font_size=10)
    marked = [_mark(v) for v in verdicts]
    marked = [m for m in marked if m[0]]
    if marked:
        chart.add_scatter(x=[m[0] for m in marked], y=[1.08] * len(marked), mode="markers",
                          name="verdicts", text=[m[1] for m in marked],
                          marker={"symbol": "triangle-down", "size": 11,
                                  "color": [VERDICT_COLOURS.get(m[2], "#555") for m in marked]},
                          hovertemplate="%{x}: %{text}<extra></extra>")
    if onset is not None and getattr(onset, "status", None) == "found":
        chart.add_vrect(x0=onset.last_before, x1=onset.first_after, fillcolor="#d7301f",
                        opacity=0.18, line_width=0, annotation_text=f"onset {onset.month}",
                        annotation_position="bottom left", annotation_font_color="#a50f15")
    if not clear:
        chart.add_annotation(text="No clear observation over the footprint", showarrow=False,
                             xref="paper", yref="paper", x=0.5, y=0.5)
    chart.update_layout(height=height, yaxis={"range": [-1, 1.15], "title": "index (median)"},
                        margin={"t": 30, "b": 30, "l": 50, "r": 10},
                        legend={"orientation": "h", "y": -0.12}, hovermode="closest")
    return chart
