"""Benchmark: Map page load to detections drawn, in Chromium, for 20,000 and 200,000 polygons.

Builds a temporary review database of synthetic detections shaped like the earthrise
website layers' footprints (12-vertex polygons a few hundred metres across, spread over
the Amazon; one in fifty verified), starts `streamlit run` on 127.0.0.1, opens the Map
page in Debian's Chromium (Playwright, software WebGL, every request beyond 127.0.0.1
aborted, as offline) and times from navigation to the first frame in which detections
are drawn (pixels of the status colours inside the map canvas). Each size is loaded twice:
cold (the server prepares the layers) and warm (the prepared layers are cached).

    .venv/bin/python -m bench.map_browser [--sizes 20000 200000] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VERTICES = 12


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """n footprint polygons (12 vertices, 150-450 m across) over the Amazon."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-75, -50, n)
    lat = rng.uniform(-15, 5, n)
    radius = rng.uniform(0.0007, 0.002, n)
    angles = np.linspace(0, 2 * np.pi, VERTICES, endpoint=False)
    wobble = rng.uniform(0.7, 1.0, (n, VERTICES))
    xs = lon[:, None] + radius[:, None] * wobble * np.cos(angles)
    ys = lat[:, None] + radius[:, None] * wobble * np.sin(angles)
    rows = []
    for i in range(n):
        ring = [[round(x, 6), round(y, 6)] for x, y in zip(xs[i], ys[i])]
        ring.append(ring[0])
        rows.append({"source": "synthetic", "external_id": f"s{i}",
                     "geometry": json.dumps({"type": "Polygon", "coordinates": [ring]}),
                     "lon": lon[i], "lat": lat[i], "west": xs[i].min(), "south": ys[i].min(),
                     "east": xs[i].max(), "north": ys[i].max(), "score": float(rng.random()),
                     "area_ha": 10.0, "area_source": "footprint", "period_start": "2023-01-01",
                     "period_end": "2023-12-31", "properties": "{}",
                     "status": "verified" if i % 50 == 0 else "pending"})
    return rows


def build_database(path: Path, n: int) -> None:
    from review.store import connect, transaction

    db = connect(path)
    rows = synthetic_rows(n)
    with transaction(db):
        db["detections"].insert_all(rows, batch_size=5000)
    db.conn.close()


def server_preparation(path: Path) -> tuple[float, int]:
    """Seconds to prepare the layers (review.analysis.map_layers) and the JSON's size in bytes."""
    from review.analysis.map_layers import deck_json, map_data
    from review.judging.queue import Filters
    from review.store import connect

    db = connect(path)
    started = time.perf_counter()
    spec = deck_json(map_data(db, Filters(status=None)))
    seconds = time.perf_counter() - started
    db.conn.close()
    return seconds, len(spec.encode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_streamlit(db_path: Path, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "REVIEW_DB": str(db_path), "REVIEW_DATA_DIR": str(data_dir),
           "REVIEW_BASEMAP_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("streamlit did not start")


def drawn(page) -> bool:
    """True once the map canvas shows detection colours (pending grey or verified red)."""
    import io

    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    chart = page.locator('[data-testid="stDeckGlJsonChart"]')
    try:
        if chart.count() == 0:
            return False
        box = chart.first.bounding_box(timeout=5000)
        if not box or box["width"] < 10:
            return False
        shot = page.screenshot(clip=box, timeout=20_000)
    except PlaywrightTimeout:
        return False
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    grey = (np.abs(image - (150, 150, 150)).max(axis=2) < 14).sum()
    red = (np.abs(image - (215, 48, 31)).max(axis=2) < 30).sum()
    return grey + red > 200


def time_page(browser, url: str, timeout_s: float = 300) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else route.abort())
    started = time.perf_counter()
    page.goto(url + "/Map")
    while time.perf_counter() - started < timeout_s:
        if drawn(page):
            seconds = time.perf_counter() - started
            page.close()
            return seconds
        time.sleep(0.1)
    page.close()
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    avx512 = "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, avx512f: {'yes' if avx512 else 'no'}, "
          f"Python {platform.python_version()}, Chromium {args.chromium} (software WebGL)")
    for n in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="review-map-bench-"))
        db_path = folder / "review.db"
        started = time.perf_counter()
        build_database(db_path, n)
        print(f"{n:,} synthetic detections written in {time.perf_counter() - started:.1f} s")
        prep, size = server_preparation(db_path)
        print(f"  server: layers prepared in {prep:.2f} s, {size / 1e6:.1f} MB of deck.gl JSON")
        process, url = start_streamlit(db_path, folder / "data")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                cold = time_page(browser, url)
                warm = time_page(browser, url)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(f"  page load -> detections drawn: cold {cold:.1f} s, warm (layers cached) {warm:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
