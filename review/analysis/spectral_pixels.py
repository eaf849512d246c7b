"""The pixels of a place's spectral time series (review.analysis.spectral_series): the
place on its local UTM grid, one Sentinel-2 scene's window read and reduced to the medians
of NDVI, BSI and MNDWI over the footprint's and the ring's clear pixels, and the same from a
stored scene.

    NDVI  = (B8 - B4) / (B8 + B4)
    BSI   = ((B11 + B4) - (B8 + B2)) / ((B11 + B4) + (B8 + B2))
    MNDWI = (B3 - B11) / (B3 + B11)

Pixels belong to the footprint or the ring by their centres (the ring: more than its inner
and at most its outer distance from the footprint, measured in UTM). Clear pixels are those
the scene classification (SCL) keeps (detection.fetch.SCL_CLEAR) with data in every band;
a scene with no SCL is not L2A and gives nothing. Only the window over the place is read
from each COG (GDAL range requests), nearest neighbour onto the 10 m grid.

Reflectance is DN + offset: the asset's raster:bands offset (over its scale) when given,
else the -1000 DN that processing baseline 04.00 (January 2022 on) added; without it the
indices of a series across 2022 would jump.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import shapely

from ..detection import fetch as stac
from ..detection.imagery import utm_crs_for
from ..errors import ReviewError, first_line

RESOLUTION = 10.0
BANDS = ("B2", "B3", "B4", "B8", "B11")
INDICES = ("ndvi", "bsi", "mndwi")
COMPOSITE_DAYS = 3              # a stored scene spanning more days is a composite
# Windows are read once: GDAL need not cache the files, and a cached failure would make a
# retry in the same process fail after the server recovered. (GDAL splits this option on
# ':', so the prefix is written without one; it matches every http and https address.)
GDAL_ENV = dict(GDAL_HTTP_MAX_RETRY="3", GDAL_HTTP_RETRY_DELAY="1",
                GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_NON_CACHED="/vsicurl/http")


class Skip(Exception):
    """A scene that gives no observation, for a reason that will not change on a retry."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Ground:
    """The place on its local UTM grid at 10 m: which pixels are footprint and ring (by
    their centres), and the footprint's lon/lat box."""

    crs: object
    transform: object
    width: int
    height: int
    footprint: np.ndarray
    ring: np.ndarray
    bbox: tuple[float, float, float, float]


def ground_of(geometry: shapely.Geometry, inner: float, outer: float) -> Ground:
    from pyproj import Transformer
    from rasterio.features import geometry_mask
    from rasterio.transform import Affine

    centre = geometry.centroid
    crs = utm_crs_for(centre.x, centre.y)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    shape = shapely.transform(geometry, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
    left, bottom, right, top = shape.bounds
    pad = outer + 2 * RESOLUTION
    left, bottom = (math.floor((v - pad) / RESOLUTION) * RESOLUTION for v in (left, bottom))
    right, top = (math.ceil((v + pad) / RESOLUTION) * RESOLUTION for v in (right, top))
    width, height = int(round((right - left) / RESOLUTION)), int(round((top - bottom) / RESOLUTION))
    transform = Affine(RESOLUTION, 0, left, 0, -RESOLUTION, top)
    footprint = geometry_mask([shape], (height, width), transform, invert=True)
    if not footprint.any():        # smaller than a pixel: the pixels it touches
        footprint = geometry_mask([shape], (height, width), transform, invert=True, all_touched=True)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    centres = shapely.points(left + (cols.ravel() + 0.5) * RESOLUTION, top - (rows.ravel() + 0.5) * RESOLUTION)
    distance = shapely.distance(shape, centres).reshape(height, width)
    ring_mask = (distance > inner) & (distance <= outer) & ~footprint
    return Ground(crs, transform, width, height, footprint, ring_mask, geometry.bounds)


def measure(bands: dict[str, np.ndarray], usable: np.ndarray, ground: Ground) -> dict:
    """The medians of the indices over the footprint's and the ring's usable pixels, and the
    share of each that is usable; an index whose bands are missing is None."""
    b = {name: np.asarray(values, dtype=np.float64) for name, values in bands.items()}
    index = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if {"B4", "B8"} <= b.keys():
            index["ndvi"] = (b["B8"] - b["B4"]) / (b["B8"] + b["B4"])
        if {"B2", "B4", "B8", "B11"} <= b.keys():
            wet, dry = b["B11"] + b["B4"], b["B8"] + b["B2"]
            index["bsi"] = (wet - dry) / (wet + dry)
        if {"B3", "B11"} <= b.keys():
            index["mndwi"] = (b["B3"] - b["B11"]) / (b["B3"] + b["B11"])
    out = {"footprint_pixels": int(ground.footprint.sum()), "ring_pixels": int(ground.ring.sum())}
    for prefix, mask in (("", ground.footprint), ("ring_", ground.ring)):
        chosen = mask & usable
        out[prefix + "clear_share"] = float(chosen.sum() / mask.sum()) if mask.any() else 0.0
        for name in INDICES:
            values = index[name][chosen] if name in index else np.empty(0)
            values = values[np.isfinite(values)]
            out[prefix + name] = float(np.median(values)) if values.size else None
    return out


def read_window(path: str, ground: Ground) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.vrt import WarpedVRT

    try:
        with rasterio.open(path) as src, WarpedVRT(
                src, crs=ground.crs, transform=ground.transform, width=ground.width,
                height=ground.height, resampling=Resampling.nearest,
                src_nodata=src.nodata if src.nodata is not None else 0, nodata=0) as vrt:
            return vrt.read(1)
    except RasterioError as exc:
        text = str(exc)
        if "HTTP response code: 404" in text or "HTTP response code: 410" in text:
            raise Skip("a band's file is missing on the server (HTTP 404)") from exc
        code = re.search(r"HTTP response code: (\d+)", text)
        said = f" (HTTP {code.group(1)})" if code else (
            " (no answer)" if "CURL error" in text else "")
        raise stac.FetchError(f"could not read imagery from {host(path)}{said}",
                              details=f"{path}: {first_line(exc, 2000)}") from exc


def host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or url


def _offset(item, asset) -> float:
    bands = asset.extra_fields.get("raster:bands") or []
    first = bands[0] if bands and isinstance(bands[0], dict) else {}
    if "offset" in first or "scale" in first:
        scale, offset = float(first.get("scale", 1.0)), float(first.get("offset", 0.0))
        return offset / scale if scale < 0.01 else offset      # reflectance offset in DN
    baseline = str(item.properties.get("s2:processing_baseline") or "")
    return -1000.0 if baseline >= "04.00" else 0.0


def date_of(item) -> str:
    props = item.properties
    return str(props.get("datetime") or props.get("start_datetime") or "")[:10]


def read_item(item, ground: Ground, source_label: str) -> dict:
    """One STAC item's observation (raises Skip, or FetchError when the service fails).
    Callable from any thread: rasterio keeps an Env per thread, so each read opens its own."""
    import rasterio

    with rasterio.Env(**GDAL_ENV):
        return _observe(item, ground, source_label)


def _observe(item, ground: Ground, source_label: str) -> dict:
    scl = stac.scl_asset(item)
    if scl is None:
        raise Skip("no scene classification layer (SCL) to mask clouds with: not an L2A scene")
    assets = {band: stac.asset_for(item, band) for band in BANDS}
    missing = [band for band, asset in assets.items() if asset is None]
    if missing:
        raise Skip(f"no {', '.join(missing)} band")
    classes = read_window(scl.href, ground)
    if not (classes[ground.footprint] > 0).any():
        raise Skip("no data over the place (it lies outside the scene's swath)")
    clear = np.isin(classes, stac.SCL_CLEAR)
    row = {"acquired": date_of(item), "item_id": item.id, "source": source_label,
           "kind": "acquisition", "scene_cloud_cover": item.properties.get("eo:cloud_cover")}
    if not (clear & ground.footprint).any():        # cloudy over the site: no band read
        return {**row, **measure({}, clear, ground)}
    raw = {band: read_window(asset.href, ground) for band, asset in assets.items()}
    usable = clear & np.all([values > 0 for values in raw.values()], axis=0)
    bands = {band: raw[band].astype(np.float64) + _offset(item, assets[band]) for band in raw}
    return {**row, **measure(bands, usable, ground)}


def scene_row(scene: dict, ground: Ground) -> dict:
    """An observation from a stored scene (bands by name; no SCL unless it has one)."""
    from ..review_imagery.chips import scene_tile

    tile = scene_tile(scene)
    names = list(tile.band_names)
    wanted = [band for band in BANDS if band in names]
    if not {"B4", "B8"} <= set(wanted):
        raise Skip("a stored scene without the red and near-infrared bands (B4, B8) NDVI needs")
    usable = np.ones((ground.height, ground.width), dtype=bool)
    bands = {}
    for band in wanted:
        values = _read_band(tile, names.index(band) + 1, ground)
        usable &= values > 0
        bands[band] = values
    if "SCL" in names:
        usable &= np.isin(_read_band(tile, names.index("SCL") + 1, ground), stac.SCL_CLEAR)
    if not (bands["B4"][ground.footprint] > 0).any():
        raise Skip("a stored scene with no data over the place")
    first = scene["period_start"][:10]
    last = (scene["period_end"] or first)[:10]
    days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days
    composite = days > COMPOSITE_DAYS
    middle = dt.date.fromisoformat(first) + dt.timedelta(days=days // 2)
    return {"acquired": middle.isoformat() if composite else first, "item_id": f"scene:{scene['id']}",
            "source": f"stored scene {scene['name']}" + (f" ({first} to {last})" if composite else ""),
            "kind": "composite" if composite else "acquisition", "scene_cloud_cover": None,
            **measure(bands, usable, ground)}


def _read_band(tile, index: int, ground: Ground) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(tile.path) as src, WarpedVRT(
            src, crs=ground.crs, transform=ground.transform, width=ground.width,
            height=ground.height, resampling=Resampling.nearest, nodata=0) as vrt:
        values = vrt.read(index).astype(np.float64)
    return values * tile.value_scale


def stored_scenes(db, ground: Ground, start: str, end: str, known: set[str]
                   ) -> tuple[list[dict], dict[str, str]]:
    from rasterio.errors import RasterioError

    from ..review_imagery.chips import scenes_covering

    west, south, east, north = ground.bbox
    rows, skipped = [], {}
    for scene in scenes_covering(db, {"west": west, "south": south, "east": east, "north": north}):
        item_id = f"scene:{scene['id']}"
        first, last = scene["period_start"], scene["period_end"] or scene["period_start"]
        if item_id in known or (first and (last[:10] < start or first[:10] > end)):
            continue
        try:
            if not first:
                raise Skip("a stored scene without a date")
            rows.append(scene_row(scene, ground))
        except Skip as skip:
            skipped[item_id] = skip.reason
        except (ReviewError, RasterioError):
            skipped[item_id] = "a stored scene that could not be read"
    return rows, skipped
