"""Sentinel-2 composites for an area and a period, straight from a STAC API.

Search (pystac-client) a catalogue for scenes under a cloud limit, read only the
window each band needs over HTTP (rasterio / GDAL range requests on cloud-optimised
GeoTIFFs), mask clouds and shadows with the scene classification layer (L2A), bring
20 m and 60 m bands onto the 10 m grid, and take the per-pixel median. The result is a
GeoTIFF with band names and its period in its tags, kept in a tile cache.

Downloads are resumable: every (scene, band) window is written to its own file, atomically,
before the composite is built; a run that dies halfway leaves finished windows behind and
a retry fetches only what is missing. The composite itself appears only when complete.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from .. import files, settings
from ..errors import ReviewError, first_line
from ..progress import Progress
from .imagery import canonical_band, utm_crs_for

RESOLUTION = 10.0
# Scene classification (L2A SCL) classes kept: vegetation, bare soil, water, unclassified,
# snow. Masked: no data, saturated, dark/shadow, cloud shadow, clouds, cirrus.
SCL_CLEAR = (4, 5, 6, 7, 11)
SCL_NAMES = ("scl", "SCL")
ALL_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
L2A_BANDS = tuple(b for b in ALL_BANDS if b != "B10")       # L2A has no cirrus band


def default_bands(collection: str) -> tuple[str, ...]:
    """Every band a Sentinel-2 collection has: L2A's lack B10, L1C's have all 13."""
    return L2A_BANDS if "l2a" in collection.lower() else ALL_BANDS


class FetchError(ReviewError):
    """Imagery could not be found or fetched; nothing incomplete was kept."""


class NoImagery(FetchError):
    """The catalogue answered, and has no usable scene over the area in the period."""


@dataclass
class Source:
    """Where imagery comes from: a STAC API and one of its collections."""

    url: str = field(default_factory=lambda: settings.stac_url())
    collection: str = field(default_factory=lambda: settings.stac_collection())
    cloud_limit: float = 40.0        # percent, per scene
    max_items: int = 60
    timeout: float = 30.0

    @property
    def product(self) -> str:
        return "L2A" if "l2a" in self.collection.lower() else (
            "L1C" if "l1c" in self.collection.lower() else self.collection)


@dataclass
class Request:
    bbox: tuple[float, float, float, float]      # west, south, east, north (lon/lat)
    start: str
    end: str
    bands: tuple[str, ...] = L2A_BANDS
    crs: str | None = None      # force a UTM zone (region tiles share their region's zone)

    def __post_init__(self):
        west, south, east, north = self.bbox
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise FetchError(f"bbox {self.bbox} is not W,S,E,N in degrees with W < E and S < N")
        if not (self.start and self.end and self.start <= self.end):
            raise FetchError(f"the period {self.start} to {self.end} is empty")

    def area_km2(self) -> float:
        west, south, east, north = self.bbox
        mid = math.radians((south + north) / 2)
        return (east - west) * 111.32 * math.cos(mid) * (north - south) * 110.57


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise FetchError(f"the area must be four numbers W,S,E,N in degrees, e.g. -56.3,-6.8,-56.2,-6.7 "
                         f"(got {text!r})")
    return values  # type: ignore[return-value]


def target_grid(bbox, crs=None) -> tuple[rasterio.crs.CRS, Affine, int, int]:
    """The local UTM grid at 10 m covering the box, snapped to multiples of 10 m."""
    west, south, east, north = bbox
    crs = rasterio.crs.CRS.from_user_input(crs) if crs else utm_crs_for((west + east) / 2, (south + north) / 2)
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, *bbox, densify_pts=21)
    left, top = math.floor(left / RESOLUTION) * RESOLUTION, math.ceil(top / RESOLUTION) * RESOLUTION
    width = int(math.ceil((right - left) / RESOLUTION))
    height = int(math.ceil((top - bottom) / RESOLUTION))
    return crs, Affine(RESOLUTION, 0, left, 0, -RESOLUTION, top), width, height


def cache_key(source: Source, request: Request) -> str:
    text = json.dumps([source.url, source.collection, source.cloud_limit, [round(v, 7) for v in request.bbox],
                       request.start, request.end, list(request.bands)] + ([request.crs] if request.crs else []))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- search


def search(source: Source, request: Request) -> list:
    """STAC items over the box in the period, under the cloud limit, least cloudy first."""
    import requests
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    headers = json.loads(os.environ["REVIEW_STAC_HEADERS"]) if os.environ.get("REVIEW_STAC_HEADERS") else None
    try:
        client = Client.open(source.url, headers=headers, timeout=source.timeout,
                             modifier=_signer())
        found = client.search(collections=[source.collection], bbox=list(request.bbox),
                              datetime=f"{request.start}/{request.end}", max_items=source.max_items)
        items = list(found.items())
    except (APIError, requests.RequestException) as exc:
        if not _unreachable(exc):
            raise FetchError(f"the Sentinel-2 catalogue at {source.url} did not answer properly; "
                             "try again later", details=first_line(exc, 2000)) from exc
        raise FetchError(f"could not reach the Sentinel-2 catalogue at {source.url}: there is "
                         "no internet connection, or the network blocks it. Tiles already stored "
                         "on this machine, uploads and reviewing still work",
                         details=first_line(exc, 2000)) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FetchError(f"the catalogue at {source.url} answered something that is not "
                         "a STAC catalogue; check the catalogue address setting",
                         details=first_line(exc, 2000)) from exc
    clear = [i for i in items if (i.properties.get("eo:cloud_cover") or 0) <= source.cloud_limit]
    if not clear:
        more = f" ({len(items)} over the {source.cloud_limit:g}% cloud limit)" if items else ""
        raise NoImagery(f"no {source.collection} scenes over W,S,E,N {','.join(f'{v:.4f}' for v in request.bbox)} between "
                         f"{request.start} and {request.end}{more}")
    return sorted(clear, key=lambda i: (i.properties.get("eo:cloud_cover") or 0, i.id))


def _unreachable(exc: BaseException) -> bool:
    """Whether an error (or one it came from) is a failure to connect at all."""
    import requests

    seen = exc
    while seen is not None:
        if isinstance(seen, (requests.ConnectTimeout, ConnectionRefusedError)):
            return True
        text = str(seen)
        if any(k in text for k in ("Connection refused", "Name or service not known", "No route to host",
                                   "Failed to establish a new connection",
                                   "Temporary failure in name resolution")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or url


def _signer():
    if os.environ.get("REVIEW_STAC_SIGN") != "planetary-computer":
        return None
    try:
        import planetary_computer
    except ImportError as exc:
        raise FetchError("REVIEW_STAC_SIGN=planetary-computer needs `pip install planetary-computer`") from exc
    return planetary_computer.sign_inplace



def asset_for(item, band: str):
    """The item's asset holding a band, by name (B02, blue, nir08, ...)."""
    for key, asset in item.assets.items():
        if canonical_band(key) == band:
            return asset
        for entry in asset.extra_fields.get("eo:bands", []) or []:
            if canonical_band(entry.get("name")) == band or canonical_band(entry.get("common_name")) == band:
                return asset
    return None


def scl_asset(item):
    return next((item.assets[k] for k in SCL_NAMES if k in item.assets), None)


# ------------------------------------------------------------------------ composite


def _read_window(href: str, crs, transform, width, height, resampling) -> np.ndarray:
    # Windows are kept on disk by this module, so GDAL need not cache the file; and a
    # cached "404" would make an in-process retry fail after the server has recovered.
    with rasterio.Env(GDAL_HTTP_MAX_RETRY="3", GDAL_HTTP_RETRY_DELAY="1",
                      GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
                      CPL_VSIL_CURL_NON_CACHED=f"/vsicurl/{href}"):
        with rasterio.open(href) as src, WarpedVRT(src, crs=crs, transform=transform, width=width,
                                                  height=height, resampling=resampling,
                                                  src_nodata=src.nodata if src.nodata is not None else 0,
                                                  nodata=0) as vrt:
            return vrt.read(1)


def _part(folder: Path, item_id: str, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item_id)
    return folder / f"{safe}__{name}.npy"


def _fetch_part(path: Path, href: str, grid, resampling) -> np.ndarray:
    if path.exists():
        return np.load(path)
    crs, transform, width, height = grid
    try:
        data = _read_window(href, crs, transform, width, height, resampling)
    except RasterioError as exc:
        raise FetchError(f"could not read imagery from {_host(href)}; run the same request again "
                         "to resume where it stopped", details=f"{href}: {first_line(exc, 2000)}") from exc
    with files.replacing(path) as partial:
        np.save(partial, data)
    return data


def composite(source: Source, request: Request, out: Path | None = None,
              progress: Progress | None = None) -> Path:
    """Build (or take from the cache) the median composite; returns the GeoTIFF path."""
    key = cache_key(source, request)
    cache = settings.tile_cache_dir()
    cached = cache / f"s2_{request.start}_{request.end}_{key}.tif"
    final = Path(out) if out else cached
    if cached.exists():
        if out and Path(out) != cached:
            _copy(cached, Path(out))
        return final
    items = search(source, request)
    grid = target_grid(request.bbox, request.crs)
    crs, transform, width, height = grid
    parts = cache / "parts" / key
    parts.mkdir(parents=True, exist_ok=True)
    steps = len(items) * (len(request.bands) + 1)
    done = 0
    stacks = {band: [] for band in request.bands}
    used = []
    for item in items:
        scl = scl_asset(item)
        clear = None
        if scl is not None:
            classes = _fetch_part(_part(parts, item.id, "SCL"), scl.href, grid, Resampling.nearest)
            clear = np.isin(classes, SCL_CLEAR)
        done += 1
        missing = [b for b in request.bands if asset_for(item, b) is None]
        if missing:
            raise FetchError(f"scene {item.id} in {source.collection} has no asset for "
                             f"{', '.join(missing)}; ask for fewer bands")
        for band in request.bands:
            data = _fetch_part(_part(parts, item.id, band), asset_for(item, band).href, grid,
                               Resampling.nearest).astype(np.float32)
            valid = data > 0
            if clear is not None:
                valid &= clear
            data[~valid] = np.nan
            stacks[band].append(data)
            done += 1
            if progress:
                progress(done, steps, f"{item.id} {band}")
        used.append(item.id)
    cube = np.zeros((len(request.bands), height, width), dtype=np.uint16)
    for index, band in enumerate(request.bands):
        stack = np.stack(stacks[band])
        seen = ~np.all(np.isnan(stack), axis=0)          # pixels with a clear observation
        median = np.zeros(stack.shape[1:], dtype=np.float32)
        if seen.any():
            median[seen] = np.nanmedian(stack[:, seen], axis=0)
        cube[index] = np.round(median).astype(np.uint16)
    _write(cached, cube, request, source, crs, transform, used)
    if out and Path(out) != cached:
        _copy(cached, Path(out))
    return final


def _write(path: Path, cube, request: Request, source: Source, crs, transform, items) -> None:
    profile = dict(driver="GTiff", width=cube.shape[2], height=cube.shape[1], count=cube.shape[0],
                   dtype="uint16", crs=crs, transform=transform, nodata=0, compress="deflate",
                   tiled=True, blockxsize=256, blockysize=256)
    with files.replacing(path) as partial, rasterio.open(partial, "w", **profile) as dst:
        dst.write(cube)
        for index, band in enumerate(request.bands, start=1):
            dst.set_band_description(index, band)
        dst.update_tags(PERIOD_START=request.start, PERIOD_END=request.end,
                        PRODUCT=f"S2 {source.product} median composite",
                        STAC_URL=source.url, STAC_COLLECTION=source.collection,
                        STAC_ITEMS=",".join(items), CLOUD_LIMIT=str(source.cloud_limit))


def _copy(src: Path, dst: Path) -> None:
    import shutil

    with files.replacing(dst, make_folder=False) as partial:
        shutil.copyfile(src, partial)
