"""Shared fixtures: real data from ../shared/fixtures, tiny generated tiles and models."""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import Affine, from_origin

from tests import stac_server

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("REVIEW_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
MODELS = FIXTURES / "models" / "earthrise"
SLOVENIA = sorted((FIXTURES / "imagery" / "eolearn_slovenia_l1c").glob("reference_scene_*.tif"))
GHANA = FIXTURES / "imagery" / "ghana_galamsey"

needs_fixtures = pytest.mark.skipif(
    not MODELS.is_dir() or not SLOVENIA,
    reason=f"real fixtures not found at {FIXTURES} (the shared/ folder beside the repo); "
           "set REVIEW_SHARED_FIXTURES to their location")

# Sums of `Mined area (ha)` in the Amazon Mining Watch website layers, from the fixtures README.
WEBSITE_LAYER_HA = {2018: 225598.8, 2019: 31182.3, 2020: 28765.8, 2021: 28486.9,
                    2022: 33541.8, 2023: 25806.4, 2024: 78930.7}

TINY_BANDS = ("B2", "B3", "B4", "B8")
UTM33_ORIGIN = (500000.0, 5000000.0)
TINY_PATCH = 16


# Slovenia scene 0 put exactly on the 10 m grid (its file says 9.99 m; 0.1% off).
ON_GRID = Affine(10, 0, 465180, 0, -10, 5080260)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "tiles"
    monkeypatch.setenv("REVIEW_TILE_CACHE", str(folder))
    return folder


@pytest.fixture
def l1c_server(tmp_path):
    files = tmp_path / "files"
    assets = stac_server.split_bands(SLOVENIA[0], files, "scene0", transform=ON_GRID)
    item = stac_server.make_item("S2A_L1C_20170614", "2017-06-14", assets, collection="sentinel-2-l1c")
    server = stac_server.StacServer(files, [item])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own data folder and an empty model cache."""
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "model-cache"))
    monkeypatch.delenv("REVIEW_DB", raising=False)
    monkeypatch.delenv("REVIEW_LOG_KEY", raising=False)
    # Anything a test does not point at its own local server goes to a closed local port,
    # never to the public services the product uses by default.
    nowhere = "http://127.0.0.1:9/"
    for name in ("REVIEW_MODEL_BASE_URL", "REVIEW_STAC_URL", "REVIEW_EXAMPLE_URL",
                 "REVIEW_WAYBACK_CONFIG_URL"):
        monkeypatch.setenv(name, nowhere)
    monkeypatch.setenv("REVIEW_BASEMAP_URL", nowhere + "{z}/{x}/{y}.png")


@pytest.fixture
def real_model_cache(monkeypatch):
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(MODELS))
    return MODELS


def write_tile(path, data, names=None, crs="EPSG:32633", origin=(500000.0, 5000000.0),
               pixel=10.0, nodata=None, tags=None, dtype=None, compress=None):
    """Write a (bands, rows, cols) array as a GeoTIFF with band descriptions."""
    data = np.asarray(data)
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1],
                   count=data.shape[0], dtype=dtype or data.dtype)
    if crs is not None:
        profile.update(crs=crs, transform=from_origin(origin[0], origin[1], pixel, pixel))
    if nodata is not None:
        profile["nodata"] = nodata
    if compress:
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
        if names:
            for index, name in enumerate(names, start=1):
                dst.set_band_description(index, name)
        if tags:
            dst.update_tags(**tags)
    return Path(path)


def random_reflectance(bands, rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(200, 6000, size=(bands, rows, cols)).astype("uint16")


def mine_tile(path, size=64, block=(16, 48), seed=4, **kwargs):
    """Random background with a bright-red square: the tiny model's idea of a mine."""
    data = random_reflectance(4, size, size, seed=seed)
    lo, hi = block
    data[2, lo:hi, lo:hi] = 9000
    return write_tile(path, data, TINY_BANDS, **kwargs)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A small real Keras model (16x16x4 -> sigmoid) with its JSON card beside it.

    Its score is sigmoid(10 * mean(B2 - B3 + 2*B4 + 0.5*B8) - 10) over the patch, in
    reflectance: random background scores about 0.1, a patch full of bright red about 1,
    and every band moves the score differently, so band order matters.
    """
    from review.detection.tensorflow_runtime import tensorflow

    tensorflow()
    import keras

    model = keras.Sequential([
        keras.Input((TINY_PATCH, TINY_PATCH, len(TINY_BANDS))),
        keras.layers.Conv2D(1, 1, use_bias=False),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.layers[0].set_weights([np.array([1.0, -1.0, 2.0, 0.5]).reshape(1, 1, 4, 1)])
    model.layers[2].set_weights([np.array([[10.0]]), np.array([-10.0])])
    folder = tmp_path_factory.mktemp("tiny-model")
    path = folder / "tiny.keras"
    model.save(path)
    (folder / "tiny.json").write_text(json.dumps({
        "id": "tiny", "patch_size": TINY_PATCH, "bands": list(TINY_BANDS),
        "scaling": "reflectance", "output": "sigmoid", "t_main": 0.5, "t_iso": 0.8}))
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    from review.detection.models import load, read_card_beside

    return load(read_card_beside(tiny_model_path), tiny_model_path)


@pytest.fixture
def db(tmp_path):
    """An empty, migrated review database in the test's own folder."""
    from review.store import connect

    return connect(tmp_path / "review.db")


def add_detections(db, n, source="s", **extra):
    """n small square detections in a row along the equator of Pará, scores 0.3 + 0.07 i,
    periods cycling 2018-2022; returns their ids in order."""
    rows = []
    for i in range(n):
        lon, lat = -57.0 + i * 0.01, -5.0
        box = shapely.box(lon, lat, lon + 0.004, lat + 0.004)
        rows.append({"source": source, "external_id": f"{source}-{i}", "geometry": shapely.to_geojson(box),
                     "lon": lon + 0.002, "lat": lat + 0.002, "west": lon, "south": lat,
                     "east": lon + 0.004, "north": lat + 0.004, "score": round(0.3 + 0.07 * i, 2),
                     "threshold": 0.5, "period_start": f"{2018 + i % 5}-01-01",
                     "period_end": f"{2018 + i % 5}-12-31", "model_id": "48px_v4.21", **extra})
    db["detections"].insert_all(rows)
    return [r["id"] for r in db["detections"].rows_where("source = ?", [source], order_by="id")]


def import_squares(db, tmp_path, n=6):
    """n 0.01° squares (pred 0.9; country BR for the first four, PE after) imported from a
    GeoJSON whose name gives the period 2023 Q3."""
    from review.detection.importers import import_file

    features = [{"type": "Feature", "properties": {"pred": 0.9, "country": "BR" if i < 4 else "PE"},
                 "geometry": json.loads(shapely.to_geojson(shapely.box(-60 + i, -5, -60 + i + 0.01, -4.99)))}
                for i in range(n)]
    path = tmp_path / "d_2023-07-01_2023-09-30.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return import_file(db, path)


@pytest.fixture
def file_server():
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder -> base URL."""
    servers = []

    def serve(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def detections_with_imagery(db, tmp_path, n=3):
    """n detections (2023) inside two stored tiles (2022 and 2023, true-colour bands,
    UTM 33N): detections whose before and after imagery exists."""
    from pyproj import Transformer

    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.store import add_scene

    for year, seed in ((2022, 1), (2023, 2)):
        path = write_tile(tmp_path / f"s2_{year}.tif", random_reflectance(3, 200, 200, seed=seed),
                          ["B4", "B3", "B2"], origin=UTM33_ORIGIN,
                          tags={"PERIOD_START": f"{year}-01-01", "PERIOD_END": f"{year}-12-31"})
        add_scene(db, scene_record(open_tile(path)))
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    rows = []
    for i in range(n):
        left, top = UTM33_ORIGIN[0] + 400 + 450 * i, UTM33_ORIGIN[1] - 800
        xs, ys = to_lonlat.transform([left, left + 200], [top - 200, top])
        box = shapely.box(min(xs), min(ys), max(xs), max(ys))
        rows.append({"source": "t", "external_id": f"t-{i}", "geometry": shapely.to_geojson(box),
                     "lon": box.centroid.x, "lat": box.centroid.y, "west": box.bounds[0],
                     "south": box.bounds[1], "east": box.bounds[2], "north": box.bounds[3],
                     "score": 0.9, "period_start": "2023-01-01", "period_end": "2023-12-31"})
    db["detections"].insert_all(rows)
    return [r["id"] for r in db["detections"].rows_where("source = 't'", order_by="id")]


# ----------------------------------------------------------------- real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="Debian's chromium is not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def streamlit_server(tmp_path):
    yield from run_streamlit(tmp_path)


def run_streamlit(tmp_path, address: str | None = "127.0.0.1", **env_extra):
    """`streamlit run app.py` on a free port (on `address`; None: as .streamlit/config.toml
    says), against a database in tmp_path; yields (url on 127.0.0.1, database path)."""
    port = _free_port()
    db = tmp_path / "review.db"
    env = {**os.environ, "REVIEW_DB": str(db), "REVIEW_DATA_DIR": str(tmp_path / "data"),
           "REVIEW_BASEMAP_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png", "PYTHONPATH": str(REPO),
           **env_extra}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
         "--server.headless", "true", *(["--server.address", address] if address else []),
         "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start: " + process.stdout.read().decode()[-2000:])
    try:
        yield url, db
    finally:            # also when the caller closes the generator early (server.close())
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def local_browser(playwright, extra_args: tuple = ()):
    """Debian's Chromium with a page that reaches nothing beyond 127.0.0.1."""
    from playwright.sync_api import expect

    # A shared 2-core machine can take seconds to rerun a page: wait up to 30 s, not 5.
    expect.set_options(timeout=30_000)
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", *extra_args])
    page = browser.new_page()
    page.set_default_timeout(60_000)

    def local_only(route):
        # Map components ask CDNs for Leaflet; tests reach nothing beyond 127.0.0.1.
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", local_only)
    return browser, page


# ------------------------------------------------------------------ field photos

def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def jpeg_with_gps(path, lon=None, lat=None, taken="2024:05:31 10:20:30", gps=None, colour="red"):
    """A real JPEG written by Pillow, with EXIF capture time and (optionally) GPS."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    if taken:
        exif[ExifTags.Base.DateTime] = taken
    if gps is not None:
        exif[ExifTags.IFD.GPSInfo] = gps
    elif lon is not None:
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "S" if lat < 0 else "N", ExifTags.GPS.GPSLatitude: _dms(lat),
            ExifTags.GPS.GPSLongitudeRef: "W" if lon < 0 else "E", ExifTags.GPS.GPSLongitude: _dms(lon)}
    Image.new("RGB", (120, 90), colour).save(path, "JPEG", exif=exif)
    return path


FORBIDDEN_IN_MESSAGES = ("Errno", "Traceback", "HTTPSConnectionPool", "--")


def assert_plain(message: str) -> None:
    """A message for people: a sentence, with no errno text, traceback, HTTP library text or flag."""
    for word in FORBIDDEN_IN_MESSAGES:
        assert word not in message, message
    first = message.split(" ", 1)[0]
    # A sentence starts with a capital, unless it starts with a name spelt as its owner
    # spelt it (a file name).
    assert (message[0].isupper() or "." in first.rstrip(".:")) and message.rstrip().endswith("."), \
        message
