"""A small STAC API and static file server on 127.0.0.1, started and stopped by tests.

It answers the landing page and /search (collection, bbox and datetime filters, GET or
POST), and serves asset files with HTTP range requests, as a cloud bucket does. Knobs
let a test make the catalogue slow, answer garbage, or make an asset fail.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

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
            return self._json(handler, {"type": "FeatureCollection", "features": self._search(params),
                                        "links": []})
        self._json(handler, {"code": "NotFound"}, 404)

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
