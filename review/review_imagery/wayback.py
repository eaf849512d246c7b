"""Esri World Imagery Wayback: dated high-resolution snapshots for before/after views.

Sentinel-2 at 10 m shows a mine's scar but not its pits. Wayback publishes every
release of the World Imagery basemap with its date; for a detection we show the release
nearest before its period and the latest one, each captioned with its release date.
The configuration URL is a setting, so tests serve releases and tiles from 127.0.0.1.
"""
from __future__ import annotations

import io
import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import shapely
from PIL import Image, ImageDraw

from .. import settings
from ..errors import ReviewError
from ..judging.verdicts import Imagery
from .chips import OUTLINE, Chip, chip_bounds, crosshair

TILE = 256
SOURCE_NAME = "Esri World Imagery Wayback"


class WaybackError(ReviewError):
    """Wayback releases or tiles could not be had."""


@dataclass(frozen=True)
class Release:
    id: str
    date: str                  # YYYY-MM-DD
    url: str                   # XYZ template with {z}, {y}, {x}

    def tile_url(self, z: int, x: int, y: int) -> str:
        return self.url.format(z=z, x=x, y=y)


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise WaybackError(f"Esri Wayback could not be reached ({getattr(exc, 'reason', exc)})",
                           details=f"could not fetch {url}") from exc


def releases(config_url: str | None = None, timeout: float = 20) -> list[Release]:
    """All releases listed in Wayback's configuration file, oldest first."""
    url = config_url or settings.wayback_config_url()
    try:
        config = json.loads(_get(url, timeout))
        found = []
        for key, entry in config.items():
            match = re.search(r"(\d{4}-\d{2}-\d{2})", entry.get("itemTitle", ""))
            template = entry.get("itemURL", "")
            if not match or not template:
                continue
            template = template.replace("{level}", "{z}").replace("{row}", "{y}").replace("{col}", "{x}")
            found.append(Release(id=str(key), date=match.group(1), url=template))
    except (ValueError, AttributeError, TypeError) as exc:
        raise WaybackError(f"{url} is not a Wayback configuration file ({exc})") from exc
    if not found:
        raise WaybackError(f"{url} lists no Wayback releases")
    return sorted(found, key=lambda r: (r.date, r.id))


def pick(all_releases: list[Release], period_start: str | None) -> tuple[Release | None, Release]:
    """The release nearest before the period (None if there is none), and the latest."""
    latest = all_releases[-1]
    if not period_start:
        return None, latest
    before = [r for r in all_releases if r.date < period_start]
    return (before[-1] if before else None), latest


def _tile_xy(lon: float, lat: float, z: int) -> tuple[float, float]:
    n = 2 ** z
    x = (lon + 180.0) / 360.0 * n
    lat_r = math.radians(max(min(lat, 85.05112878), -85.05112878))
    y = (1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n
    return x, y


def zoom_for(bounds, target_px: int = 512, max_zoom: int = 18) -> int:
    west, south, east, north = bounds
    for z in range(max_zoom, 0, -1):
        x0, y0 = _tile_xy(west, north, z)
        x1, y1 = _tile_xy(east, south, z)
        if max(x1 - x0, y1 - y0) * TILE <= target_px:
            return z
    return 1


def chip(release: Release, geometry: shapely.Geometry, target_px: int = 512,
         timeout: float = 20) -> Chip:
    """A picture of the detection's surroundings from one release, footprint outlined."""
    bounds = chip_bounds(geometry)
    z = zoom_for(bounds, target_px)
    west, south, east, north = bounds
    fx0, fy0 = _tile_xy(west, north, z)
    fx1, fy1 = _tile_xy(east, south, z)
    tx0, ty0, tx1, ty1 = int(fx0), int(fy0), int(fx1), int(fy1)
    mosaic = Image.new("RGB", ((tx1 - tx0 + 1) * TILE, (ty1 - ty0 + 1) * TILE))
    for tx in range(tx0, tx1 + 1):
        for ty in range(ty0, ty1 + 1):
            data = _get(release.tile_url(z, tx, ty), timeout)
            try:
                tile = Image.open(io.BytesIO(data)).convert("RGB")
            except OSError as exc:
                raise WaybackError(f"tile {z}/{ty}/{tx} of release {release.date} is not an image") from exc
            mosaic.paste(tile, ((tx - tx0) * TILE, (ty - ty0) * TILE))
    left, top = (fx0 - tx0) * TILE, (fy0 - ty0) * TILE
    image = mosaic.crop((int(left), int(top), int((fx1 - tx0) * TILE), int((fy1 - ty0) * TILE)))
    draw = ImageDraw.Draw(image)
    if geometry.geom_type == "Point":          # an assessment unit: a crosshair, no outline
        x, y = _tile_xy(geometry.x, geometry.y, z)
        crosshair(draw, (x - tx0) * TILE - int(left), (y - ty0) * TILE - int(top))
        return Chip(image=image, imagery=Imagery(source=f"{SOURCE_NAME} release {release.date}",
                                                 start=release.date, end=release.date))
    for polygon in getattr(geometry, "geoms", [geometry]):
        points = []
        for lon, lat in polygon.exterior.coords:
            x, y = _tile_xy(lon, lat, z)
            points.append(((x - tx0) * TILE - int(left), (y - ty0) * TILE - int(top)))
        draw.line(points, fill=OUTLINE, width=3)
    return Chip(image=image, imagery=Imagery(source=f"{SOURCE_NAME} release {release.date}",
                                             start=release.date, end=release.date))
