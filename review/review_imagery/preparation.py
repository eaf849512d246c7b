"""Imagery for reviewing one detection: the before and after views a person judges.

Stored scenes that cover the detection (the one of its period and the latest one
before it), or dated Esri Wayback releases (the one before its period and the latest),
rendered as chips of the same ground. Sentinel-2 composites of a detection's period and
of the year before can be fetched around its footprint (through fetch) and stored as
scenes, and a tile uploaded as the 'before' view is stored the same way.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import date

import rasterio
import shapely

from .. import settings
from ..detection.fetch import FetchError, Request, Source, composite
from ..detection.imagery import Tile, open_tile
from ..detection.runs import scene_record
from ..errors import ReviewError
from ..judging.queue import Filters, count, matching
from ..progress import Progress
from ..store import add_scene
from . import chip_cache, chips, wayback
from .chip_cache import Prepared
from .chips import Chip, chip_bounds

REVIEW_BANDS = ("B2", "B3", "B4", "B8")
# What the two views need, and no more: true colour (B4 B3 B2), false colour (B12 B8 B4).
VIEW_BANDS = ("B2", "B3", "B4", "B8", "B12")
TIMEOUT_S = 20.0          # the longest one catalogue or tile request may take


def _shift_year(day: str, years: int) -> str:
    year, rest = int(day[:4]), day[4:]
    if rest == "-02-29":
        rest = "-02-28"
    return f"{year + years:04d}{rest}"


def review_periods(detection: dict) -> tuple[tuple[str, str], tuple[str, str]]:
    """(before, after) periods for a detection: its own period and the same dates a year
    earlier; a period shorter than two months (a visit date) widens to its calendar year."""
    start, end = detection.get("period_start"), detection.get("period_end") or detection.get("period_start")
    if not start:
        raise FetchError(f"detection {detection['id']} has no period, so there is no 'after' to fetch")
    if (date.fromisoformat(end) - date.fromisoformat(start)).days < 60:
        start, end = f"{start[:4]}-01-01", f"{start[:4]}-12-31"
    return (_shift_year(start, -1), _shift_year(end, -1)), (start, end)


def before_after(db, detection: dict, source: Source | None = None,
                 progress: Progress | None = None) -> list[int]:
    """Fetch (or take from the cache) the composites of a detection's period and of the
    year before, around its footprint, and store them as scenes for the Review page."""
    source = source or Source()
    bounds = chip_bounds(shapely.from_geojson(detection["geometry"]))
    scene_ids = []
    for start, end in review_periods(detection):
        request = Request(bbox=bounds, start=start, end=end, bands=REVIEW_BANDS)
        path = composite(source, request, progress=progress)
        scene_ids.append(add_scene(db, scene_record(open_tile(path))))
    return scene_ids


def footprint(detection: dict) -> shapely.Geometry:
    return shapely.from_geojson(detection["geometry"])


def unit_place(unit: dict) -> dict:
    """An area-assessment unit as the imagery machinery sees a place: a point (drawn as a
    crosshair, never a detection's outline), the ground around it and the design's period.
    Its id is negative, so its prepared chips and their claims never mix with a detection's."""
    lon, lat, pad = float(unit["lon"]), float(unit["lat"]), chips.POINT_PAD_DEG
    return {"id": -int(unit["id"]), "geometry": json.dumps({"type": "Point", "coordinates": [lon, lat]}),
            "lon": lon, "lat": lat, "west": lon - pad, "east": lon + pad, "south": lat - pad,
            "north": lat + pad, "period_start": unit["period_start"],
            "period_end": unit["period_end"], "scene_id": None}


def scene_views(db, detection: dict) -> list[Chip]:
    """Chips of the stored scenes to judge a detection by: [before, after], [after] when
    no earlier scene covers it, [] when none does. Raises ImageryError if a scene that
    covers it cannot be read."""
    before, after = chips.pick_before_after(chips.scenes_covering(db, detection), detection)
    shown = [s for s in (before, after) if s is not None]
    return chips.render_pair(shown, footprint(detection)) if shown else []


def wayback_views(releases: list[wayback.Release], detection: dict) -> tuple[list[Chip], str | None]:
    """Chips of the Wayback release before the detection's period and of the latest one,
    with a note when no release predates the period (then the latest alone)."""
    before, latest = wayback.pick(releases, detection.get("period_start"))
    shown = [latest] if before is None or before.id == latest.id else [before, latest]
    geometry = footprint(detection)
    note = None if before else "No Wayback release predates this detection's period."
    return [wayback.chip(release, geometry) for release in shown], note


def add_tile(db, path, bands: str | None = None) -> Tile:
    """Register a tile (e.g. an uploaded 'before' view) as a scene; its period comes from
    its tags. Returns the opened tile."""
    tile = open_tile(path, bands=bands)
    add_scene(db, scene_record(tile))
    return tile


# ------------------------------------------------------------------ prepared imagery

def chip_sources() -> tuple[str, ...]:
    """The imagery sources to prepare from, best first (REVIEW_CHIP_SOURCES, comma separated)."""
    wanted = os.environ.get("REVIEW_CHIP_SOURCES")
    if not wanted:
        return chip_cache.SOURCES
    names = tuple(n.strip() for n in wanted.split(",") if n.strip())
    unknown = [n for n in names if n not in chip_cache.SOURCES]
    if unknown:
        raise ReviewError(f"unknown imagery source {unknown[0]!r}: use "
                          f"{', '.join(chip_cache.SOURCES)}")
    return names


def _from_scenes(db, detection: dict, source: Source | None):
    before, after = chips.pick_before_after(chips.scenes_covering(db, detection), detection)
    if after is None:
        raise FetchError("no stored scene covers this detection")
    shown = [s for s in (before, after) if s is not None]
    pair = chips.render_pair(shown, footprint(detection))
    note = None if before else "No earlier stored scene covers this detection."
    return (pair[0] if before else None), pair[-1], note


def _composite_label(path) -> str:
    with rasterio.open(path) as src:
        tags = src.tags()
    scenes = len([i for i in tags.get("STAC_ITEMS", "").split(",") if i])
    product = (tags.get("PRODUCT") or "S2 median composite").replace("S2 ", "Sentinel-2 ")
    product = product.replace("median composite", "median")
    return f"{product} of {scenes} scene{'s' if scenes != 1 else ''} (clouds masked)"


def _from_sentinel2(db, detection: dict, source: Source | None):
    source = source or Source(timeout=TIMEOUT_S)
    bounds = chip_bounds(footprint(detection))
    (before_period, after_period) = review_periods(detection)
    tiles, note = [], None
    for start, end in (before_period, after_period):
        try:
            path = composite(source, Request(bbox=bounds, start=start, end=end, bands=VIEW_BANDS))
        except FetchError as exc:
            if start == after_period[0]:
                raise
            note = f"No Sentinel-2 view of the year before: {exc}."
            continue
        tiles.append({"path": str(path), "name": path.name, "product": None, "bands": None,
                      "period_start": start, "period_end": end, "label": _composite_label(path)})
    pair = chips.render_pair(tiles, footprint(detection))
    return (pair[0] if len(pair) == 2 else None), pair[-1], note


_RELEASES: dict[str, tuple[float, list]] = {}


def _releases(url: str | None = None) -> list[wayback.Release]:
    url = url or settings.wayback_config_url()
    cached = _RELEASES.get(url)
    if cached and time.time() - cached[0] < 3600:
        return cached[1]
    found = wayback.releases(url, timeout=TIMEOUT_S)
    _RELEASES[url] = (time.time(), found)
    return found


def _from_wayback(db, detection: dict, source: Source | None, wayback_url: str | None = None):
    pictures, note = wayback_views(_releases(wayback_url), detection)
    return (pictures[0] if len(pictures) == 2 else None), pictures[-1], note


_MAKERS = {"scenes": _from_scenes, "sentinel-2": _from_sentinel2, "wayback": _from_wayback}


def prepare(db, detection: dict, source: Source | None = None,
            sources: tuple[str, ...] | None = None, retry_seconds: float | None = None,
            wayback_url: str | None = None, cache: chip_cache.Cache | None = None) -> Prepared | None:
    """Before and after chips for a detection, from the best source that has them, kept
    in the chip cache (taken from it when already there). A source that fails is noted
    with its reason and skipped until it is due again; None when no source gave a view.
    `cache` is the database's chip cache (needed when `db` is None: a background worker)."""
    sources = sources or chip_sources()
    cache = cache or chip_cache.cache_for(db)
    retry = chip_cache.RETRY_SECONDS if retry_seconds is None else retry_seconds
    found = cache.lookup(detection, sources)
    for name in sources:
        if found is not None and sources.index(found.source) <= sources.index(name):
            return found
        if name != "scenes" and not cache.due(detection, name, retry):
            continue            # stored scenes are local and quick: always looked at
        try:
            if name == "wayback":
                before, after, note = _from_wayback(db, detection, source, wayback_url)
            else:
                before, after, note = _MAKERS[name](db, detection, source)
        except ReviewError as exc:
            cache.record_failure(detection, name, str(exc))
            continue
        return cache.store(detection, name, before, after, note)
    return found


@dataclass
class QueuePreparation:
    """What `prepare_queue` did: of `total` detections, how many it prepared, how many were
    already in the chip cache, and how many got no imagery (noted, tried again later)."""
    total: int
    prepared: int = 0
    cached: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (f"{self.total:,} detections: {self.prepared:,} prepared, {self.cached:,} already "
                f"in the cache, {self.failed:,} without imagery (noted with the reason; tried "
                f"again on a later run)")


def prepare_queue(db, filters: Filters, order: str = "score", limit: int | None = None,
                  retry: bool = False, progress: Progress | None = None) -> QueuePreparation:
    """Prepare before/after chips ahead of reviewers for the detections `filters` select, in
    queue `order` (at most `limit`): each is taken from the chip cache when its best source
    is there, else prepared (`prepare`); sources that failed are tried again now with
    `retry`, else when due. `progress(done, total, "")` at the start and after each one."""
    total = count(db, filters)
    total = min(total, limit) if limit is not None else total
    return prepare_places(db, matching(db, filters, order), total, retry, progress)


def prepare_places(db, places, total: int, retry: bool = False,
                   progress: Progress | None = None) -> QueuePreparation:
    """Prepare chips for the first `total` places (detections, or assessment points as
    `unit_place` gives them), each from the chip cache when its best source is there."""
    sources = chip_sources()
    cache = chip_cache.cache_for(db)
    done = QueuePreparation(total)
    if progress:
        progress(0, total, "")
    for number, place in enumerate(places):
        if number >= total:
            break
        had = cache.lookup(place, sources)
        got = prepare(db, place, sources=sources, retry_seconds=0 if retry else None, cache=cache)
        if had is not None and got is not None and got.source == had.source:
            done.cached += 1
        elif got is not None:
            done.prepared += 1
        else:
            done.failed += 1
        if progress:
            progress(number + 1, total, "")
    return done


def _plain(reason: str) -> str:
    """A failure's reason without the library's own detail (errno, connection pools)."""
    return re.split(r" \((?:HTTP|Max retries|Connection|<|\[Errno|[A-Za-z]+Error)|: \[Errno|: <urlopen",
                    reason, maxsplit=1)[0].strip()


_UNREACHABLE = re.compile(r"could not (?:be )?reach|could not be reached|no internet|Errno|timed out",
                          re.IGNORECASE)


def _phrase(source: str, reason: str) -> str:
    """One source's failure as a clause of a sentence."""
    if source == "scenes":
        return "no stored scene covers it"
    if _UNREACHABLE.search(reason):
        return f"{chip_cache.SOURCE_NAMES[source]} cannot be reached from this machine"
    text = _plain(reason).split(". ")[0].rstrip(".")
    return f"{chip_cache.SOURCE_NAMES[source]}: {text[:1].lower()}{text[1:]}"


def unavailable(cache: chip_cache.Cache, detection: dict,
                sources: tuple[str, ...] | None = None) -> str:
    """Why a detection has no prepared imagery, in plain words."""
    notes = cache.failures(detection)
    parts = [_phrase(s, notes[s]["reason"]) for s in (sources or chip_sources()) if s in notes]
    if not parts:
        return "Imagery for this detection is being prepared."
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    if any("cannot be reached" in p for p in parts):
        listed += "; there may be no internet, or the network blocks it"
    return (f"No imagery of this place could be prepared ({listed}); it is tried again later, "
            "and you can still decide on what you know.")
