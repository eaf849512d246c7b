"""A small STAC API and static file server on 127.0.0.1, started and stopped by tests.

It answers the landing page and /search (collection, bbox and datetime filters, GET or
POST; pages of `page_size` items with `next` links when that is set, as Earth Search pages
at 100), and serves asset files with HTTP range requests, as a cloud bucket does. Knobs
let a test make the catalogue slow, answer garbage, make an asset fail, or close every
connection for an asset after `fail_after` asset requests (a service that dies halfway).

`forest_to_bare_scenes` builds a dated series of L2A scenes from the fixture pairs' real
pixels in which a known patch turns from forest to bare ground in a known month.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import rasterio
from rasterio.warp import transform_bounds

CONFORMANCE = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"]

# Earth Search's asset keys for the six L2A bands the Amazon pairs carry.
L2A_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22"}


def inner_bbox(transform, width, height, inset=150.0):
    """Lon/lat box of a UTM 33N scene's grid, `inset` metres inside its edges."""
    left, top = transform.c, transform.f
    right, bottom = left + width * transform.a, top + height * transform.e
    return transform_bounds("EPSG:32633", "EPSG:4326", left + inset, bottom + inset,
                            right - inset, top - inset)


def make_item(item_id: str, when: str, assets: dict[str, Path], cloud_cover: float = 5.0,
              collection: str = "sentinel-2-l2a") -> dict:
    """A STAC item whose footprint is the first asset's bounds; hrefs filled in by the server."""
    with rasterio.open(next(iter(assets.values()))) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    polygon = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
            "bbox": [west, south, east, north],
            "geometry": {"type": "Polygon", "coordinates": [polygon]},
            "properties": {"datetime": f"{when}T10:00:00Z", "eo:cloud_cover": cloud_cover},
            "links": [], "assets": {key: {"href": path.name, "type": "image/tiff"}
                                    for key, path in assets.items()}}


class StacServer:
    def __init__(self, folder: Path, items: list[dict]):
        self.folder = Path(folder)
        self.items = items
        self.requests: list[str] = []
        self.search_delay = 0.0
        self.asset_delay = 0.0
        self.garbage = False
        self.failing_assets: set[str] = set()
        self.page_size: int | None = None       # None: every match on one page
        self.fail_after: int | None = None      # asset requests answered before it dies
        self.asset_requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self, "GET", b"")

            def do_HEAD(self):
                server._handle(self, "HEAD", b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                server._handle(self, "POST", self.rfile.read(length))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -------------------------------------------------------------------- handlers

    def _json(self, handler, payload, status=200):
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler, method: str, body: bytes) -> None:
        url = urlparse(handler.path)
        self.requests.append(f"{method} {url.path}")
        if url.path.startswith("/files/"):
            return self._file(handler, method, url.path[len("/files/"):])
        if url.path in ("/", ""):
            return self._json(handler, {
                "type": "Catalog", "id": "loopback", "stac_version": "1.0.0",
                "description": "test catalogue", "conformsTo": CONFORMANCE,
                "links": [{"rel": "self", "href": self.url}, {"rel": "root", "href": self.url},
                          {"rel": "search", "href": self.url + "search", "method": "GET", "type": "application/geo+json"},
                          {"rel": "search", "href": self.url + "search", "method": "POST", "type": "application/geo+json"}]})
        if url.path == "/search":
            if self.search_delay:
                time.sleep(self.search_delay)
            if self.garbage:
                payload = b"<html>502 Bad Gateway</html>"
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(payload)))
                handler.end_headers()
                handler.wfile.write(payload)
                return
            params = json.loads(body) if body else {k: v[0] for k, v in parse_qs(url.query).items()}
            return self._json(handler, self._page(params, method))
        self._json(handler, {"code": "NotFound"}, 404)

    def _page(self, params: dict, method: str) -> dict:
        found = self._search(params)
        size = min(int(params.get("limit") or 10**9), self.page_size or 10**9)
        first = int(params.get("token") or 0)
        links = []
        if first + size < len(found):
            following = {**params, "token": str(first + size)}
            if method == "POST":
                links.append({"rel": "next", "href": self.url + "search", "method": "POST",
                              "body": following, "type": "application/geo+json"})
            else:
                query = "&".join(f"{k}={quote(str(v), safe=',:/')}" for k, v in following.items())
                links.append({"rel": "next", "href": f"{self.url}search?{query}",
                              "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": found[first:first + size], "links": links,
                "numberMatched": len(found)}

    def _search(self, params: dict) -> list[dict]:
        collections = params.get("collections")
        if isinstance(collections, str):
            collections = collections.split(",")
        bbox = params.get("bbox")
        if isinstance(bbox, str):
            bbox = [float(v) for v in bbox.split(",")]
        start, _, end = (params.get("datetime") or "../..").partition("/")
        found = []
        for item in self.items:
            if collections and item["collection"] not in collections:
                continue
            w, s, e, n = item["bbox"]
            if bbox and (w > bbox[2] or e < bbox[0] or s > bbox[3] or n < bbox[1]):
                continue
            day = item["properties"]["datetime"][:10]
            if start not in ("", "..") and day < start[:10]:
                continue
            if end not in ("", "..") and day > end[:10]:
                continue
            copy = json.loads(json.dumps(item))
            for asset in copy["assets"].values():
                asset["href"] = self.url + "files/" + asset["href"]
            found.append(copy)
        return found

    def _file(self, handler, method: str, name: str) -> None:
        path = self.folder / name
        with self._lock:
            self.asset_requests += 1
            dead = self.fail_after is not None and self.asset_requests > self.fail_after
        if dead:               # the service died: connections closed without an answer
            handler.close_connection = True
            return
        if name in self.failing_assets or not path.is_file():
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if self.asset_delay:
            time.sleep(self.asset_delay)
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        status = 200
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start = int(first) if first else 0
            end = min(int(last), len(data) - 1) if last else len(data) - 1
            status = 206
        handler.send_response(status)
        handler.send_header("Content-Type", "image/tiff")
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(data[start:end + 1])


def split_bands(source: Path, folder: Path, prefix: str, keys: dict[str, str] | None = None,
                pixel: float | None = None, transform=None, overrides: dict[str, np.ndarray] | None = None
                ) -> dict[str, Path]:
    """Write each band of a real raster as its own COG, as catalogues publish Sentinel-2.

    keys maps the file's band description to the asset key (default: the description).
    transform: a replacement geotransform (to put a scene exactly on the 10 m grid).
    overrides: replacement pixels for some bands, by description.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with rasterio.open(source) as src:
        profile = src.profile.copy()
        for index, name in enumerate(src.descriptions, start=1):
            key = (keys or {}).get(name, name)
            if keys is not None and name not in keys:
                continue
            data = (overrides or {}).get(name, src.read(index))
            band_profile = dict(driver="COG", width=src.width, height=src.height, count=1,
                                dtype=data.dtype, crs=src.crs,
                                transform=transform or src.transform, nodata=0, compress="deflate")
            path = folder / f"{prefix}_{key}.tif"
            with rasterio.open(path, "w", **band_profile) as dst:
                dst.write(data, 1)
            out[key] = path
    del profile
    return out


def write_scl(path: Path, like: Path, classes: np.ndarray, transform=None) -> Path:
    with rasterio.open(like) as src:
        profile = dict(driver="COG", width=src.width, height=src.height, count=1, dtype="uint8",
                       crs=src.crs, transform=transform or src.transform, nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes.astype("uint8"), 1)
    return path


def pair_as_l2a_server(pair_folder: Path, files: Path, pair: str = "mining_1003",
                       dates=("2020-06-01", "2021-06-01")) -> StacServer:
    """A STAC API on 127.0.0.1 serving a real fixture pair's before and after tiles as
    L2A scenes (one item each, all pixels clear in the scene classification)."""
    items = []
    for side, when in zip(("t0", "t1"), dates):
        name = f"{pair}_{side}"
        assets = split_bands(pair_folder / f"{name}.tif", files, name, keys=L2A_KEYS)
        assets["scl"] = write_scl(files / f"{name}_scl.tif", pair_folder / f"{name}.tif",
                                  np.full((48, 48), 4))
        items.append(make_item(name, when, assets))
    return StacServer(files, items)


# ------------------------------------------------------- a site turning bare, month by month

SERIES_PAIR = "mining_1084"                # forest at t0; mined at t1 in the patch below
SERIES_PATCH = (14, 26, 10)                # row, column and side (px) of a patch bare at t1
SERIES_FOREST = ("mining_248", "mining_644", "mining_2173", "mining_1952", "mining_1556",
                 "mining_2001", "mining_284", "mining_1620")   # all-forest t0 tiles around it
SERIES_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
# What the sky does over a date: cloud over the patch (site), cloud over most of the scene
# but not the patch (elsewhere), cirrus or cloud shadow over the patch, 40% of the patch
# under cloud (part), or the patch outside the scene's swath (nodata).
SKY_COVER = {"clear": 3.0, "site": 14.0, "elsewhere": 78.0, "cirrus": 9.0, "shadow": 11.0,
             "part": 22.0, "nodata": 4.0}
CLOUD_DN = np.array([6500, 6300, 6200, 6800, 5200, 4000])[:, None, None]


def _mosaic(pair_folder: Path, centre: str) -> np.ndarray:
    """3 x 3 tiles of 48 px: forest t0 tiles around the centre one (6, 144, 144)."""
    names = [f"{n}_t0" for n in SERIES_FOREST[:4]] + [centre] + [f"{n}_t0" for n in SERIES_FOREST[4:]]
    cube = np.zeros((6, 144, 144), dtype=np.float64)
    for index, name in enumerate(names):
        with rasterio.open(pair_folder / f"{name}.tif") as src:
            assert tuple(src.descriptions) == SERIES_BANDS, src.descriptions
            row, col = divmod(index, 3)
            cube[:, row * 48:(row + 1) * 48, col * 48:(col + 1) * 48] = src.read()
    return cube


def _sky(kind: str, patch: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """SCL classes (144 x 144) and where the scene has no data, for a kind of sky."""
    rows, cols = np.mgrid[0:144, 0:144]
    centre_r, centre_c = (patch[0].start + patch[0].stop) / 2, (patch[1].start + patch[1].stop) / 2
    near = np.hypot(rows - centre_r, cols - centre_c)
    scl = np.full((144, 144), 4, dtype="uint8")
    nodata = np.zeros((144, 144), dtype=bool)
    if kind == "site":
        scl[near <= 15] = 9
        scl[(np.hypot(rows - centre_r - 18, cols - centre_c - 12) <= 8)] = 3
    elif kind == "elsewhere":
        scl[near > 35] = 8
        scl[near > 50] = 9
    elif kind == "cirrus":
        scl[near <= 15] = 10
    elif kind == "shadow":
        scl[near <= 15] = 3
    elif kind == "part":
        scl[patch[0].start:patch[0].start + 4, patch[1]] = 9
    elif kind == "nodata":
        nodata[:, : patch[1].stop + 10] = True
        scl[nodata] = 0
    elif kind != "clear":
        raise ValueError(kind)
    return scl, nodata


def forest_to_bare_scenes(pair_folder: Path, files: Path, dates: list[str], bare_from: str,
                          sky: dict[str, str] | None = None, baseline_4_from: str = "2022-01-25"
                          ) -> tuple[list[dict], dict]:
    """Dated L2A scenes (one item per date, six band COGs and an SCL each) over one place: a
    1.44 km mosaic of real forest tiles whose centre is SERIES_PAIR's t0 until `bare_from`
    and its t1 from then on, so the SERIES_PATCH patch turns from forest to bare ground.
    Each date's reflectance is the real pixels times a small seasonal factor per band; under
    cloud (SCL 8, 9, 10) pixels are bright and under shadow (3) dark, so a cloud not masked
    would show. eo:cloud_cover follows the sky (SKY_COVER), not the patch. From
    `baseline_4_from` on, as ESA's processing baseline 04.00 did, every pixel with data carries
    +1000 DN and the item says `s2:processing_baseline` 04.00; every other such item also
    gives the offset in its assets' raster:bands, as Earth Search does.

    Returns the items and what a test needs to check them: crs, transform, the patch as a
    UTM box and as lon/lat, each item's files (band -> path, 'scl' -> path) and DN offset."""
    from rasterio.transform import Affine
    from shapely import box
    from shapely.ops import transform as reproject
    from pyproj import Transformer

    sky = sky or {}
    with rasterio.open(pair_folder / f"{SERIES_PAIR}_t0.tif") as src:
        crs, origin = src.crs, src.transform
    transform = Affine(10.0, 0.0, origin.c - 480.0, 0.0, -10.0, origin.f + 480.0)
    row, col, side = SERIES_PATCH
    patch = (slice(48 + row, 48 + row + side), slice(48 + col, 48 + col + side))
    left, top = transform.c + patch[1].start * 10.0, transform.f - patch[0].start * 10.0
    patch_utm = box(left, top - side * 10.0, left + side * 10.0, top)
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    patch_lonlat = reproject(to_lonlat.transform, patch_utm)
    before, after = _mosaic(pair_folder, f"{SERIES_PAIR}_t0"), _mosaic(pair_folder, f"{SERIES_PAIR}_t1")
    files.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="COG", width=144, height=144, count=1, crs=crs, transform=transform,
                   nodata=0, compress="deflate")
    items, paths, offsets = [], {}, {}
    amplitude = np.array([0.03, 0.03, 0.06, -0.04, 0.05, 0.03])[:, None, None]
    for number, when in enumerate(dates):
        kind = sky.get(when, "clear")
        doy = (np.datetime64(when, "D") - np.datetime64(when[:4] + "-01-01", "D")).astype(int)
        cube = (after if when >= bare_from else before) * (1 + amplitude * np.sin(2 * np.pi * doy / 365))
        scl, nodata = _sky(kind, patch)
        cube = np.where(np.isin(scl, (8, 9, 10))[None], CLOUD_DN + (np.arange(144) % 37)[None, None, :], cube)
        cube = np.where((scl == 3)[None], 120.0, cube)
        data = np.clip(np.round(cube), 1, 20000).astype("int16")
        shifted = when >= baseline_4_from
        if shifted:
            data = data + np.int16(1000)
        data[:, nodata] = 0
        item_id = f"S2_T21_{when.replace('-', '')}_{number}_L2A"
        offsets[item_id] = -1000 if shifted else 0
        assets = {}
        for index, band in enumerate(SERIES_BANDS):
            path = files / f"{item_id}_{L2A_KEYS[band]}.tif"
            with rasterio.open(path, "w", dtype="int16", **profile) as dst:
                dst.write(data[index], 1)
            assets[L2A_KEYS[band]] = path
        assets["scl"] = files / f"{item_id}_scl.tif"
        with rasterio.open(assets["scl"], "w", dtype="uint8", **profile) as dst:
            dst.write(scl, 1)
        item = make_item(item_id, when, assets, cloud_cover=SKY_COVER[kind])
        item["properties"]["s2:processing_baseline"] = "04.00" if shifted else "02.14"
        if shifted and number % 2:
            for key in L2A_KEYS.values():
                item["assets"][key]["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]
        items.append(item)
        paths[item_id] = {**{band: assets[L2A_KEYS[band]] for band in SERIES_BANDS}, "scl": assets["scl"]}
    return items, {"crs": crs, "transform": transform, "patch_utm": patch_utm,
                   "patch_lonlat": patch_lonlat, "files": paths, "offsets": offsets,
                   "bare_from": bare_from}


def monthly(first: str, last: str, day: int = 15) -> list[str]:
    """The `day` of every month from first to last (YYYY-MM)."""
    months = np.arange(np.datetime64(first, "M"), np.datetime64(last, "M") + 1)
    return [f"{m}-{day:02d}" for m in months.astype(str)]


def site_over_patch(db, info: dict, year: int = 2022) -> int:
    """One detection of `year` whose footprint is the patch, grouped into a site (its id)."""
    import shapely

    from review.analysis import sites

    patch = info["patch_lonlat"]
    west, south, east, north = patch.bounds
    db["detections"].insert({"source": "series", "external_id": f"patch-{year}",
                             "geometry": shapely.to_geojson(patch), "lon": patch.centroid.x,
                             "lat": patch.centroid.y, "west": west, "south": south, "east": east,
                             "north": north, "score": 0.9, "period_start": f"{year}-01-01",
                             "period_end": f"{year}-12-31"})
    sites.build(db)
    return sites.site_of(db, db.execute("select max(id) from detections").fetchone()[0])


SERIES_DATES = monthly("2020-01", "2022-12")        # three years, one scene a month
# name: (the first day the patch is bare, the sky over some dates)
SCENARIOS = {
    # Clear observations bracket the change closely: the last before (June) is a scene 78%
    # cloudy elsewhere; clouds, cirrus and shadow over the site, a partly cloudy scene and one
    # outside the swath at other dates.
    "bracketed": ("2021-07-01", {"2020-03-15": "site", "2020-05-15": "elsewhere",
                                 "2020-08-15": "nodata", "2020-10-15": "part",
                                 "2020-11-15": "cirrus", "2021-02-15": "site",
                                 "2021-06-15": "elsewhere", "2022-05-15": "shadow"}),
    # One month cloudy over the site inside the bracket: still within a month.
    "cloud_in_bracket": ("2020-11-01", {"2020-11-15": "site", "2021-04-15": "elsewhere"}),
    # Clouds over the site from March to November hide the change.
    "hidden": ("2021-07-01", {f"2021-{m:02d}-15": "site" for m in range(3, 12)}),
}


def scenario_scenes(name: str, pair_folder: Path, files: Path) -> tuple[list[dict], dict]:
    bare_from, sky = SCENARIOS[name]
    return forest_to_bare_scenes(pair_folder, files, SERIES_DATES, bare_from, sky)
