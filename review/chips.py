"""Before and after pictures of a detection, from stored scenes, for a person to judge.

Both chips cover the same ground (the footprint's box plus a margin), use the same
stretch, and have the footprint outlined, so a change between them is a change on the
ground and not in the rendering.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from PIL import Image, ImageDraw
from pyproj import Transformer
from rasterio.errors import WindowError
from rasterio.windows import Window, from_bounds

from .errors import ImageryError
from .imagery import Tile, open_tile
from .verdicts import Imagery

TRUE_COLOUR = ("B4", "B3", "B2")
MARGIN = 0.5               # fraction of the footprint's size added on every side
MIN_SIDE_PX = 320          # small chips are enlarged (nearest neighbour) to at least this
OUTLINE = (255, 214, 0)


def stretch_limits(values: np.ndarray,
                   percentiles: tuple[float, float] = (2, 98)) -> tuple[float, float]:
    """One low/high pair over valid pixel values of all bands, so colours keep their balance."""
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, percentiles)
    return float(low), float(high if high > low else low + 1)


def to_image(rgb: np.ndarray, valid: np.ndarray, low: float, high: float) -> Image.Image:
    """A (3, rows, cols) array stretched linearly between low and high; nodata black."""
    scaled = np.clip((rgb - low) / (high - low), 0, 1) * 255
    scaled[:, ~valid] = 0
    return Image.fromarray(np.moveaxis(scaled.astype(np.uint8), 0, -1), mode="RGB")


@dataclass
class Chip:
    image: Image.Image
    imagery: Imagery          # what a verdict records as having been shown
    scene_id: int | None = None

    @property
    def caption(self) -> str:
        return self.imagery.label()


def scenes_covering(db, detection: dict) -> list[dict]:
    """Stored scenes whose footprint contains the detection's box, oldest first."""
    rows = db.execute(
        "select * from scenes where west <= ? and east >= ? and south <= ? and north >= ? "
        "order by coalesce(period_end, period_start, added_at)",
        [detection["west"], detection["east"], detection["south"], detection["north"]])
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r)) for r in rows.fetchall() if Path(r[1]).exists()]


def pick_before_after(scenes: list[dict], detection: dict) -> tuple[dict | None, dict | None]:
    """After: the scene of the detection's period (else the latest); before: the latest
    scene that ends before the after scene begins."""
    if not scenes:
        return None, None
    start = detection.get("period_start")
    after = None
    if start:
        after = next((s for s in reversed(scenes)
                      if (s["period_start"] or "") <= (detection.get("period_end") or start)
                      and (s["period_end"] or s["period_start"] or "") >= start), None)
    after = after or scenes[-1]
    after_start = after["period_start"] or after["period_end"]
    before = None
    if after_start:
        before = next((s for s in reversed(scenes) if s is not after
                       and (s["period_end"] or s["period_start"] or "9999") < after_start), None)
    return before, after


def _scene_tile(scene: dict) -> Tile:
    # The stored names are the ones the run used (a user's --bands mapping included).
    names = [b or "-" for b in scene["bands"].split(",")] if scene.get("bands") else []
    mapping = names if any(n != "-" for n in names) else None
    return open_tile(scene["path"], bands=mapping, period=(scene["period_start"], scene["period_end"]))


def _window(tile: Tile, bounds_lonlat) -> Window:
    west, south, east, north = bounds_lonlat
    to_tile = Transformer.from_crs("EPSG:4326", tile.crs, always_xy=True)
    xs, ys = to_tile.transform([west, east, west, east], [south, south, north, north])
    window = from_bounds(min(xs), min(ys), max(xs), max(ys), tile.transform)
    window = window.round_offsets().round_lengths()
    full = Window(0, 0, tile.width, tile.height)
    try:
        return window.intersection(full)
    except WindowError as exc:
        raise ImageryError(f"{tile.name} does not cover this detection") from exc


def chip_bounds(geometry: shapely.Geometry, margin: float = MARGIN) -> tuple[float, float, float, float]:
    west, south, east, north = geometry.bounds
    pad_x, pad_y = (east - west) * margin, (north - south) * margin
    pad = max(pad_x, pad_y, 0.001)
    return west - pad, south - pad, east + pad, north + pad


def render_pair(scenes: list[dict], geometry: shapely.Geometry,
                margin: float = MARGIN) -> list[Chip]:
    """True-colour chips of the same ground and stretch, footprint outlined, for each scene."""
    bounds = chip_bounds(geometry, margin)
    reads = []
    for scene in scenes:
        tile = _scene_tile(scene)
        indexes = [tile.band_index(b) for b in TRUE_COLOUR]
        if None in indexes:
            raise ImageryError(f"{tile.name} has no true-colour bands (B4, B3, B2)")
        window = _window(tile, bounds)
        with tile.reader() as reader:
            rgb, valid = reader.read(window, indexes)
        reads.append((scene, tile, window, rgb, valid))
    if not reads:
        return []
    # One stretch for all chips, from the valid pixels of all of them.
    low, high = stretch_limits(np.concatenate([rgb[:, valid] for *_, rgb, valid in reads], axis=1))
    chips = []
    for scene, tile, window, rgb, valid in reads:
        image = to_image(rgb, valid, low, high)
        factor = max(1, int(np.ceil(MIN_SIDE_PX / max(image.size))))
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
        _outline(image, geometry, tile, window, factor)
        chips.append(Chip(image=image, scene_id=scene.get("id"),
                          imagery=Imagery(source=f"{scene['name']} ({scene.get('product') or 'GeoTIFF'})",
                                          start=scene["period_start"], end=scene["period_end"])))
    return chips


def _outline(image: Image.Image, geometry: shapely.Geometry, tile: Tile, window: Window,
             factor: int) -> None:
    to_tile = Transformer.from_crs("EPSG:4326", tile.crs, always_xy=True)
    inverse = ~tile.transform
    draw = ImageDraw.Draw(image)
    polygons = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    for polygon in polygons:
        xs, ys = polygon.exterior.xy
        tx, ty = to_tile.transform(list(xs), list(ys))
        points = []
        for x, y in zip(tx, ty):
            col, row = inverse * (x, y)
            points.append(((col - window.col_off) * factor, (row - window.row_off) * factor))
        draw.line(points, fill=OUTLINE, width=max(2, factor // 2))
