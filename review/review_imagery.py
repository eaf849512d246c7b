"""Imagery for reviewing one detection: the before and after views a person judges.

Stored scenes that cover the detection (the one of its period and the latest one
before it), or dated Esri Wayback releases (the one before its period and the latest),
rendered as chips of the same ground. Sentinel-2 composites of a detection's period and
of the year before can be fetched around its footprint (through fetch) and stored as
scenes, and a tile uploaded as the 'before' view is stored the same way.
"""
from __future__ import annotations

from datetime import date

import shapely

from . import chips, wayback
from .chips import Chip, chip_bounds
from .fetch import FetchError, Request, Source, composite
from .imagery import Tile, open_tile
from .progress import Progress
from .runs import scene_record
from .store import add_scene

REVIEW_BANDS = ("B2", "B3", "B4", "B8")


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
