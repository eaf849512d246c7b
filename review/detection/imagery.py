"""Reading satellite tiles: band names, georeferencing, nodata, periods, windows.

A `Tile` describes a GeoTIFF without holding its pixels; `Tile.reader()` opens it and
reads windows, so a tile of any size is processed in bounded memory.

Tiles in a geographic CRS (degrees) are warped on the fly to their local UTM zone at
10 m (nearest neighbour, so pixel values are kept as they are). The detectors were
trained on 10 m Sentinel-2 pixels; a patch of 48 pixels in degrees would be neither
square nor 480 m wide.
"""
from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine, array_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from .. import settings
from ..errors import BandError, ImageryError, first_line

# GDAL's block cache defaults to 5% of RAM; strips are read once, so a small cache keeps
# memory bounded on big tiles without slowing anything (MB; the user's setting wins).
os.environ.setdefault("GDAL_CACHEMAX", "128")

WARP_RESOLUTION_M = 10.0

# Sentinel-2 common names (STAC eo:bands, Earth Search asset keys) to band ids.
_COMMON_NAMES = {
    "coastal": "B1", "blue": "B2", "green": "B3", "red": "B4",
    "rededge1": "B5", "rededge2": "B6", "rededge3": "B7", "nir": "B8",
    "nir08": "B8A", "nir09": "B9", "cirrus": "B10", "swir16": "B11", "swir22": "B12",
}
_S2_BAND = re.compile(r"^(?:S2[AB]?[_-])?B0?(\d{1,2})(A?)$", re.IGNORECASE)
IGNORED_BAND = "-"

_PERIOD_TAGS = (("PERIOD_START", "PERIOD_END"), ("START_DATE", "END_DATE"),
                ("start_date", "end_date"), ("period_start", "period_end"))
_DATE = re.compile(r"^(\d{4})[-:](\d{2})[-:](\d{2})")


def canonical_band(name: str | None) -> str | None:
    """'B02', 'b2', 'S2A_B02' -> 'B2'; 'B8A'/'B08A'/'nir08' -> 'B8A'; other names upper-cased."""
    if name is None:
        return None
    text = name.strip()
    if not text:
        return None
    if text == IGNORED_BAND:
        return IGNORED_BAND
    common = _COMMON_NAMES.get(text.lower())
    if common:
        return common
    match = _S2_BAND.match(text)
    if match:
        return f"B{int(match.group(1))}{match.group(2).upper()}"
    return text.upper()


def parse_band_mapping(text: str | Sequence[str] | None) -> list[str] | None:
    """'B2,B3,B4,B8,-' -> ['B2', 'B3', 'B4', 'B8', '-'] (canonical, in file order)."""
    if text is None:
        return None
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [canonical_band(n) for n in names]
    if any(n is None for n in names):
        raise BandError("the band mapping has an empty name; write one name per band "
                        "in file order, '-' for a band to ignore (e.g. B2,B3,B4,B8,-)")
    named = [n for n in names if n != IGNORED_BAND]
    duplicates = sorted({n for n in named if named.count(n) > 1})
    if duplicates:
        raise BandError(f"the band mapping names {', '.join(duplicates)} more than once")
    return names


def _date(text: str | None) -> str | None:
    if not text:
        return None
    match = _DATE.match(str(text).strip())
    return "-".join(match.groups()) if match else None


def period_from_tags(tags: dict) -> tuple[str | None, str | None]:
    for start_key, end_key in _PERIOD_TAGS:
        if start_key in tags or end_key in tags:
            return _date(tags.get(start_key)), _date(tags.get(end_key))
    if "PERIOD" in tags and "/" in tags["PERIOD"]:
        start, end = tags["PERIOD"].split("/", 1)
        return _date(start), _date(end)
    for key in ("ACQUISITION_DATE", "DATE_ACQUIRED", "TIFFTAG_DATETIME"):
        day = _date(tags.get(key))
        if day:
            return day, day
    return None, None


def utm_crs_for(lon: float, lat: float) -> CRS:
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@dataclass(frozen=True)
class Tile:
    """A GeoTIFF as the engine sees it: named bands on a projected grid."""

    path: Path
    band_names: tuple[str | None, ...]   # canonical name per file band, in file order
    crs: CRS                             # working CRS (UTM when warped)
    transform: Affine                    # working grid
    width: int
    height: int
    dtype: str
    nodata: float | None
    period_start: str | None = None
    period_end: str | None = None
    product: str | None = None
    source_crs: CRS | None = None        # set when the file was warped from degrees
    tags: dict = field(default_factory=dict, compare=False, repr=False)
    value_scale: float = 1.0             # pixels are multiplied by this when read

    @property
    def rescaled_note(self) -> str | None:
        """How the pixel values were reinterpreted when read, in words (None if not)."""
        if self.value_scale == 1.0:
            return None
        return (f"{self.name} holds reflectance as fractions (0-1), read as digital numbers "
                f"(x {self.value_scale:g})")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def pixel_size(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def warped(self) -> bool:
        return self.source_crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return west, south, east, north

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        return transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21)

    def band_index(self, name: str) -> int | None:
        """1-based file index of a band by (canonical) name, or None."""
        wanted = canonical_band(name)
        for index, band in enumerate(self.band_names, start=1):
            if band == wanted:
                return index
        return None

    @contextmanager
    def reader(self) -> Iterator["TileReader"]:
        try:
            with rasterio.open(self.path) as dataset:
                if self.warped:
                    # Without a nodata value, an alpha band marks pixels outside the source.
                    with WarpedVRT(dataset, crs=self.crs, transform=self.transform,
                                   width=self.width, height=self.height,
                                   resampling=Resampling.nearest,
                                   add_alpha=dataset.nodata is None) as vrt:
                        alpha = vrt.count if dataset.nodata is None else None
                        yield TileReader(self, vrt, alpha_index=alpha)
                else:
                    yield TileReader(self, dataset)
        except RasterioError as exc:
            raise ImageryError(f"{self.name}: could not be read ({first_line(exc)})") from exc


class TileReader:
    """An open tile: reads windows of named bands as float32 plus a validity mask."""

    def __init__(self, tile: Tile, dataset, alpha_index: int | None = None):
        self.tile = tile
        self.dataset = dataset
        self.alpha_index = alpha_index

    def read(self, window: Window, indexes: Sequence[int],
             out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (pixels as float32 (bands, rows, cols), valid mask (rows, cols))."""
        shape = None if out_shape is None else (len(indexes), *out_shape)
        try:
            data = self.dataset.read(list(indexes), window=window, out_shape=shape,
                                     out_dtype="float32", resampling=Resampling.nearest)
            masks = self.dataset.read_masks(list(indexes), window=window, out_shape=shape,
                                            resampling=Resampling.nearest)
            if self.alpha_index is not None:
                alpha = self.dataset.read(self.alpha_index, window=window, out_shape=out_shape,
                                          resampling=Resampling.nearest)
                masks = np.concatenate([masks, alpha[None]])
        except RasterioError as exc:
            raise ImageryError(
                f"{self.tile.name}: pixels could not be read near row {int(window.row_off)} "
                f"({first_line(exc)}); the file is truncated or corrupt") from exc
        valid = np.all(masks > 0, axis=0)
        if np.issubdtype(np.dtype(self.tile.dtype), np.floating):
            valid &= np.all(np.isfinite(data), axis=0)
        if self.tile.value_scale != 1.0:
            data *= np.float32(self.tile.value_scale)
        return data, valid



def open_tile(path: str | Path, bands: str | Sequence[str] | None = None,
              period: tuple[str | None, str | None] | None = None,
              max_pixels: int | None = None) -> Tile:
    """Describe a GeoTIFF, checking everything that can be checked without reading pixels.

    bands: explicit names in file order (overrides the file's band descriptions).
    period: (start, end) ISO dates (overrides the file's tags).
    """
    path = Path(path)
    if not path.exists():
        raise ImageryError(f"{path}: no such file")
    try:
        dataset = rasterio.open(path)
    except RasterioError as exc:
        raise ImageryError(f"{path.name}: not a raster GDAL can open ({first_line(exc)})") from exc
    with dataset:
        if dataset.count == 0:
            raise ImageryError(f"{path.name}: the file holds no raster bands")
        if dataset.crs is None or dataset.transform == Affine.identity():
            raise ImageryError(
                f"{path.name}: has no georeferencing (no CRS or geotransform); "
                "export it as a GeoTIFF with its coordinate system")
        if dataset.transform.b != 0 or dataset.transform.d != 0:
            raise ImageryError(f"{path.name}: the raster is rotated; warp it to a north-up grid first")
        names = _band_names(path.name, dataset, bands)
        tags = dataset.tags()
        start, end = period_from_tags(tags)
        if period is not None:
            start = _date(period[0]) or start
            end = _date(period[1]) or end
        tile = Tile(path=path, band_names=tuple(names), crs=dataset.crs,
                    transform=dataset.transform, width=dataset.width, height=dataset.height,
                    dtype=dataset.dtypes[0], nodata=dataset.nodata,
                    period_start=start, period_end=end,
                    product=tags.get("PRODUCT"), tags=tags,
                    value_scale=fraction_scale(dataset, names))
        if dataset.crs.is_geographic:
            tile = _warp_to_utm(tile, dataset)
    limit = settings.max_tile_pixels() if max_pixels is None else max_pixels
    if tile.width * tile.height > limit:
        raise ImageryError(
            f"{path.name}: {tile.width}x{tile.height} pixels is larger than the limit of "
            f"{limit:,} pixels; cut it into smaller tiles or raise REVIEW_MAX_TILE_PIXELS")
    return tile


FRACTION_SCALE = 10000.0
# Reflectance as digital numbers is at least a few tens even over dark water; as fractions
# it stays under about 1.5 even over cloud.
_FRACTION_LIMIT = 2.0
_SAMPLE = 512


def fraction_scale(dataset, names: Sequence[str | None]) -> float:
    """10000 when a floating-point file holds Sentinel-2 reflectance as fractions (0-1),
    as exports that divided by 10000 do (a common Earth Engine habit), else 1.

    Every model here takes reflectance x 10000; fractions would reach it as near-black
    pixels and be scored without any error. Judged from the named Sentinel-2 bands in a
    central window of at most 512 x 512 pixels (the whole file is not read)."""
    if not np.issubdtype(np.dtype(dataset.dtypes[0]), np.floating):
        return 1.0
    spectral = [i for i, name in enumerate(names, start=1)
                if name and _S2_BAND.match(name)]
    if not spectral:
        return 1.0
    rows, cols = min(dataset.height, _SAMPLE), min(dataset.width, _SAMPLE)
    window = Window((dataset.width - cols) // 2, (dataset.height - rows) // 2, cols, rows)
    try:
        data = dataset.read(spectral, window=window, out_dtype="float64")
        masks = dataset.read_masks(spectral, window=window)
    except RasterioError:
        return 1.0                   # unreadable pixels are reported when they are read
    values = data[(masks > 0) & np.isfinite(data) & (data != 0)]
    if values.size < 16:
        return 1.0
    high = float(np.percentile(np.abs(values), 99))
    return FRACTION_SCALE if high <= _FRACTION_LIMIT else 1.0


def _band_names(filename: str, dataset, bands) -> list[str | None]:
    mapping = parse_band_mapping(bands)
    if mapping is not None:
        if len(mapping) != dataset.count:
            raise BandError(
                f"{filename}: the band mapping gives {len(mapping)} names but the file has "
                f"{dataset.count} bands; name every band in file order, '-' for one to ignore")
        return mapping
    names = [canonical_band(d) for d in dataset.descriptions]
    named = [n for n in names if n is not None]
    duplicates = sorted({n for n in named if named.count(n) > 1})
    if duplicates:
        raise BandError(f"{filename}: band names {', '.join(duplicates)} appear more than "
                        "once; name the bands in file order, '-' for one to ignore")
    return names


def _warp_to_utm(tile: Tile, dataset) -> Tile:
    west, south, east, north = dataset.bounds
    utm = utm_crs_for((west + east) / 2, (south + north) / 2)
    left, bottom, right, top = transform_bounds(dataset.crs, utm, west, south, east, north,
                                                densify_pts=21)
    res = WARP_RESOLUTION_M
    # Snap the warped grid to multiples of 10 m so warped tiles share one patch grid.
    left, top = math.floor(left / res) * res, math.ceil(top / res) * res
    width = int(math.ceil((right - left) / res))
    height = int(math.ceil((top - bottom) / res))
    return replace(tile, crs=utm, transform=Affine(res, 0, left, 0, -res, top),
                   width=width, height=height, source_crs=dataset.crs)
