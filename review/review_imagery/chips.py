"""Before and after pictures of a detection, from stored scenes, for a person to judge.

Both chips cover the same ground (the footprint's box plus a margin), use the same
stretch, and have the footprint outlined, so a change between them is a change on the
ground and not in the rendering.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from PIL import Image, ImageDraw
from pyproj import Transformer
from rasterio.errors import WindowError
from rasterio.windows import Window, from_bounds

from ..detection.imagery import Tile, open_tile
from ..errors import ImageryError
from ..judging.verdicts import Imagery

TRUE_COLOUR = ("B4", "B3", "B2")
# The false colour mining analysts use: bare soil and water-filled pits stand out.
FALSE_COLOURS = (("B12", "B8", "B4"), ("B11", "B8", "B4"))
VIEWS = {"true": "true colour", "false": "false colour (SWIR, NIR, red)"}
MARGIN = 1.0               # the footprint's size added on every side: 3x its extent
MIN_SIDE_PX = 384          # chips are enlarged (smoothly) to at least this many pixels wide
OUTLINE = (255, 214, 0)
# A point (an area-assessment unit) is shown with this much ground on every side, and
# marked by a crosshair whose centre is left open, so the pixel judged stays visible.
POINT_PAD_DEG = 0.005
CROSSHAIR_GAP_PX, CROSSHAIR_ARM_PX = 7, 18
_CACHE_PREFIX = re.compile(r"^[0-9a-f]{16}_")


def plain_name(name: str) -> str:
    """A file name as a person gave it: without the cache's content-hash prefix."""
    return _CACHE_PREFIX.sub("", name)


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
    views: dict = field(default_factory=dict)   # other renderings, e.g. {"false": image}

    @property
    def caption(self) -> str:
        return self.imagery.label()


# A scene may fall short of a detection's box by this share of the box on a side and still
# show the place: reprojecting a chip leaves slivers at its edge (99.96% covered is covered).
COVER_TOLERANCE = 0.01


def scenes_covering(db, detection: dict) -> list[dict]:
    """Stored scenes whose footprint contains the detection's box (all but a sliver of it),
    oldest first."""
    slack_x = (detection["east"] - detection["west"]) * COVER_TOLERANCE
    slack_y = (detection["north"] - detection["south"]) * COVER_TOLERANCE
    rows = db.execute(
        "select * from scenes where west <= ? and east >= ? and south <= ? and north >= ? "
        "order by coalesce(period_end, period_start, added_at)",
        [detection["west"] + slack_x, detection["east"] - slack_x,
         detection["south"] + slack_y, detection["north"] - slack_y])
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r)) for r in rows.fetchall() if Path(r[1]).exists()]


def pick_before_after(scenes: list[dict], detection: dict) -> tuple[dict | None, dict | None]:
    """After: the tile the detector ran on (the detection's scene), else the scene of the
    detection's period, else the latest; before: the latest scene that ends before the
    after scene begins. A detector's tile stored without dates takes the detection's."""
    if not scenes:
        return None, None
    start = detection.get("period_start")
    after = None
    own = detection.get("scene_id")
    if own is not None:
        after = next((s for s in scenes if s.get("id") == own), None)
        if after is not None and not (after.get("period_start") or after.get("period_end")):
            after = {**after, "period_start": start, "period_end": detection.get("period_end")}
    if after is None and start:
        after = next((s for s in reversed(scenes)
                      if (s["period_start"] or "") <= (detection.get("period_end") or start)
                      and (s["period_end"] or s["period_start"] or "") >= start), None)
    after = after or scenes[-1]
    after_start = after["period_start"] or after["period_end"]
    before = None
    if after_start:
        before = next((s for s in reversed(scenes) if s.get("id", id(s)) != after.get("id", id(after))
                       and s is not after
                       and (s["period_end"] or s["period_start"] or "9999") < after_start), None)
    if before is None and own is not None and after.get("id") == own:
        # A tile registered beside the detector's own without dates (an uploaded 'before'
        # view with no period in its tags): shown as the before view, its dates unknown.
        before = next((s for s in reversed(scenes) if s.get("id") != own
                       and not (s.get("period_start") or s.get("period_end"))), None)
    return before, after


def scene_tile(scene: dict) -> Tile:
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
    if geometry.geom_type == "Point":
        return west - POINT_PAD_DEG, south - POINT_PAD_DEG, east + POINT_PAD_DEG, north + POINT_PAD_DEG
    pad_x, pad_y = (east - west) * margin, (north - south) * margin
    pad = max(pad_x, pad_y, 0.001)
    return west - pad, south - pad, east + pad, north + pad


def render_pair(scenes: list[dict], geometry: shapely.Geometry,
                margin: float = MARGIN, min_side: int = MIN_SIDE_PX) -> list[Chip]:
    """Chips of the same ground and stretch, footprint outlined, for each scene: true
    colour as the chip's image, and false colour in `views["false"]` when every scene has
    the bands for it. A scene dict may carry a plain-words `label` for its caption."""
    bounds = chip_bounds(geometry, margin)
    reads = []
    for scene in scenes:
        tile = scene_tile(scene)
        indexes = [tile.band_index(b) for b in TRUE_COLOUR]
        if None in indexes:
            raise ImageryError(f"{plain_name(tile.name)} has no true-colour bands (B4, B3, B2)")
        false = next(([tile.band_index(b) for b in combo] for combo in FALSE_COLOURS
                      if None not in [tile.band_index(b) for b in combo]), None)
        window = _window(tile, bounds)
        with tile.reader() as reader:
            rgb, valid = reader.read(window, indexes)
            swir = reader.read(window, false)[0] if false else None
        reads.append((scene, tile, window, rgb, valid, swir))
    if not reads:
        return []
    # One stretch for all chips, from the valid pixels of all of them.
    low, high = stretch_limits(np.concatenate([r[3][:, r[4]] for r in reads], axis=1))
    with_false = all(r[5] is not None for r in reads)
    if with_false:
        false_limits = [stretch_limits(np.concatenate([r[5][i][r[4]] for r in reads]))
                        for i in range(3)]
    chips = []
    for scene, tile, window, rgb, valid, swir in reads:
        views = {"true": to_image(rgb, valid, low, high)}
        if with_false:
            # Each false-colour band stretched on its own: SWIR and NIR differ in range.
            views["false"] = Image.merge("RGB", [
                to_image(np.repeat(swir[i:i + 1], 3, axis=0), valid, lo, hi).getchannel(0)
                for i, (lo, hi) in enumerate(false_limits)])
        factor = max(1.0, min_side / max(views["true"].size))
        for name, image in views.items():
            if factor > 1:
                image = image.resize((round(image.width * factor), round(image.height * factor)),
                                     Image.BICUBIC)
            _outline(image, geometry, tile, window, factor)
            views[name] = image
        label = scene.get("label") or f"{plain_name(scene['name'])} ({scene.get('product') or 'GeoTIFF'})"
        chips.append(Chip(image=views["true"], scene_id=scene.get("id"), views=views,
                          imagery=Imagery(source=label, start=scene["period_start"],
                                          end=scene["period_end"])))
    return chips


def haze(image: Image.Image) -> float:
    """How hazy a chip looks: the mean of its dark channel (0 clear, 1 white)."""
    pixels = np.asarray(image, dtype=np.float32) / 255
    from scipy.ndimage import minimum_filter

    return float(minimum_filter(pixels.min(axis=2), size=15).mean())


def dehaze(image: Image.Image, omega: float = 0.9, patch: int = 15,
           t_min: float = 0.2) -> Image.Image:
    """Dark-channel haze removal (He, Sun and Tang, 2009): the atmospheric light is taken
    from the haziest pixels, the transmission from the dark channel, and the haze is
    subtracted; a clear chip comes back almost unchanged."""
    from scipy.ndimage import minimum_filter

    pixels = np.asarray(image, dtype=np.float32) / 255
    dark = minimum_filter(pixels.min(axis=2), size=patch)
    brightest = np.argsort(dark.ravel())[-max(1, dark.size // 1000):]
    light = np.maximum(pixels.reshape(-1, 3)[brightest].mean(axis=0), 1e-3)
    transmission = 1 - omega * minimum_filter((pixels / light).min(axis=2), size=patch)
    transmission = np.maximum(transmission, t_min)[..., None]
    clear = (pixels - light) / transmission + light
    # Stretch the result back onto the full range, as a reviewer's eye expects.
    low, high = np.percentile(clear, (1, 99))
    clear = np.clip((clear - low) / max(high - low, 1e-3), 0, 1)
    return Image.fromarray((clear * 255).astype(np.uint8), mode="RGB")


def crosshair(draw: ImageDraw.ImageDraw, x: float, y: float, width: int = 3) -> None:
    """Mark a point with four arms around an open centre (dark edge, bright core)."""
    gap, arm = CROSSHAIR_GAP_PX, CROSSHAIR_ARM_PX
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        segment = [(x + dx * gap, y + dy * gap), (x + dx * (gap + arm), y + dy * (gap + arm))]
        draw.line(segment, fill=(0, 0, 0), width=width + 2)
        draw.line(segment, fill=OUTLINE, width=width)


def _outline(image: Image.Image, geometry: shapely.Geometry, tile: Tile, window: Window,
             factor: float) -> None:
    to_tile = Transformer.from_crs("EPSG:4326", tile.crs, always_xy=True)
    inverse = ~tile.transform
    draw = ImageDraw.Draw(image)
    if geometry.geom_type == "Point":
        col, row = inverse * to_tile.transform(geometry.x, geometry.y)
        crosshair(draw, (col - window.col_off) * factor, (row - window.row_off) * factor)
        return
    polygons = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    for polygon in polygons:
        xs, ys = polygon.exterior.xy
        tx, ty = to_tile.transform(list(xs), list(ys))
        points = []
        for x, y in zip(tx, ty):
            col, row = inverse * (x, y)
            points.append(((col - window.col_off) * factor, (row - window.row_off) * factor))
        draw.line(points, fill=OUTLINE, width=max(2, round(factor / 2)))
