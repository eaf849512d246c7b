"""Imagery for reviewing one detection: the before and after views a person judges.

Sentinel-2 composites of a detection's period and of the year before, fetched around its
footprint (through fetch) and stored as scenes, so the Review page and the evidence
picture can show them.
"""
from __future__ import annotations

from datetime import date

import shapely

from .chips import chip_bounds
from .fetch import FetchError, Request, Source, composite
from .imagery import open_tile
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
