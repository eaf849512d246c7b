"""Areas people give the dashboard: a rectangle drawn on a map, a typed W,S,E,N box to
fetch imagery for, and an uploaded area of interest to filter detections by."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import shapely

from ..detection.fetch import ALL_BANDS, FetchError, Request, parse_bbox
from ..errors import ReviewError
from .trends import read_regions


class AreaTooLarge(FetchError):
    """The area is more than the dashboard fetches at once."""


def bbox_text(geometry: dict) -> str:
    """A drawn shape (a GeoJSON geometry in lon/lat) as W,S,E,N text, as `--bbox` takes it."""
    try:
        west, south, east, north = shapely.geometry.shape(geometry).bounds
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise ReviewError(f"the drawn shape is not a usable geometry ({exc})") from exc
    return f"{west:.5f},{south:.5f},{east:.5f},{north:.5f}"


def fetch_request(bbox: str, start: str, end: str, max_km2: float) -> Request:
    """A fetch of a typed or drawn box for a period, refused when larger than max_km2."""
    request = Request(bbox=parse_bbox(bbox), start=start, end=end)
    if request.area_km2() > max_km2:
        raise AreaTooLarge(
            f"The area is {request.area_km2():,.0f} km², more than the dashboard fetches at once "
            f"({max_km2:,.0f} km²): draw a smaller area, or run this area from the command line "
            "(the details give the command)",
            details=f"python -m review detect --bbox={bbox} --start {start} --end {end}")
    return request


def for_model(request: Request, model_bands) -> Request:
    """The request narrowed to the bands a model reads (in the order fetch writes them)."""
    return replace(request, bands=tuple(b for b in ALL_BANDS if b in model_bands))


def read_area(path: str | Path) -> shapely.Geometry:
    """An area of interest file (polygons, any CRS) as one lon/lat geometry."""
    return shapely.union_all([geometry for _, geometry in read_regions(path)])
