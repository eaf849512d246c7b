"""Benchmark: an area assessment over a 40,000 km² region (issue 25).

1. Design time. A 2° × 1.633° box centred on (-56, -6) in the Amazon (about 40,000 km² in
   EPSG:6933) holding 10,000 square detections of 2024 (100-300 m sides; 60% in 50
   clusters, the rest anywhere), inserted straight into the `detections` table. Timed:
   the whole command `python -m review assess design NAME --region R.geojson --period 2024
   --n 100,100,200 --db DB` (a fresh process: start-up and imports included), and in this
   process its parts: reading the footprints, the strata geometry (`make_strata`, which
   includes the read), drawing the points, and `create` (drawing and storing in one
   transaction; storing is the difference).

2. Label latency in Chromium, measured as bench/review_browser.py measures a detection
   verdict: inside the page, from the `keydown` of M or N to the first animation frame
   where the caption names another point (its coordinates) and both of its chips have
   loaded; also to the moment the script is `notRunning` again. Two ways the chips reach
   the page: prepared in the chip cache (real Sentinel-2 pixels of the Amazon fixture
   pairs, rendered with the point's crosshair by the product's chip code, as the
   detection bench does), and stored scenes rendered by the page itself for each point
   (REVIEW_CHIP_SOURCES=scenes; two real-pixel 6-band GeoTIFFs per point, 2023 and 2024).

    .venv/bin/python -m bench.assessment [--presses 40] [--repeat 3] [--detections-too]

`--detections-too` runs `bench.review_browser --presses N` afterwards, for the detection
Review latency on the same machine minutes apart.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = Path(os.environ.get("REVIEW_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
CHROMIUM = "/usr/bin/chromium"
HALF_HEIGHT = 1.6333 / 2
REGION_BOUNDS = (-57.0, -6.0 - HALF_HEIGHT, -55.0, -6.0 + HALF_HEIGHT)
DETECTIONS = 10_000
SIZES = "100,100,200"
NAME_FIELD = "Your name (recorded with every verdict)"
QUESTION = "Is the ground at the crosshair mined?"

# Installed before each press: note the keydown, then watch every frame for the next
# point's caption (other coordinates) and both of its chips, loaded; and note when the
# script is idle again after that.
WATCH = """(old) => {
  window.__t0 = undefined; window.__t1 = undefined; window.__t2 = undefined;
  window.addEventListener('keydown', () => { if (window.__t0 === undefined) window.__t0 = performance.now(); },
                          {capture: true, once: true});
  const place = () => { const c = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                          .find(e => e.innerText.includes('waiting for you in this assessment'));
                        return c ? c.innerText.split(' · ')[1] : ''; };
  const ready = () => {
    const now = place();
    if (!now || now === old.place) return false;
    const images = [...document.querySelectorAll('[data-testid="stMain"] img')].filter(i => i.src.includes('/media/'));
    if (images.length < 2) return false;
    return images.every(i => i.complete && i.naturalWidth > 0 && !old.srcs.includes(i.src));
  };
  const idle = () => document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning';
  const tick = () => {
    if (window.__t0 !== undefined) {
      if (window.__t1 === undefined && ready()) window.__t1 = performance.now();
      if (window.__t1 !== undefined && idle()) { window.__t2 = performance.now(); return; }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
STATE = """() => {
  const c = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
              .find(e => e.innerText.includes('waiting for you in this assessment'));
  return {place: c ? c.innerText.split(' · ')[1] : '',
          srcs: [...document.querySelectorAll('[data-testid="stMain"] img')].map(i => i.src)};
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _machine() -> str:
    cpu = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("model name")), "?")
    flags = "avx512f" if "avx512f" in cpu else "no avx512f"
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0) / 1024 ** 2
    return (f"{platform.machine()}, {os.cpu_count()} cores ({model}, {flags}), {memory:.0f} GB, "
            f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}")


# ------------------------------------------------------------------ 1. the design

def region():
    import shapely

    return shapely.box(*REGION_BOUNDS)


def area_km2(geometry) -> float:
    import numpy as np
    import shapely
    from pyproj import Transformer

    to_area = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    dense = shapely.segmentize(geometry, 0.01)
    return shapely.transform(dense, lambda xy: np.column_stack(
        to_area.transform(xy[:, 0], xy[:, 1]))).area / 1e6


def add_detections(db, n: int = DETECTIONS, seed: int = 25) -> None:
    """n squares (100-300 m sides) of 2024 in the region: 60% in 50 clusters, the rest anywhere."""
    import numpy as np
    import shapely

    rng = np.random.default_rng(seed)
    west, south, east, north = REGION_BOUNDS
    clustered = int(n * 0.6)
    centres = np.column_stack([rng.uniform(west + 0.1, east - 0.1, 50),
                               rng.uniform(south + 0.1, north - 0.1, 50)])
    which = rng.integers(0, 50, clustered)
    spread = rng.normal(0, 0.05, (clustered, 2))          # about 5.5 km either way
    lon = np.concatenate([centres[which, 0] + spread[:, 0], rng.uniform(west, east, n - clustered)])
    lat = np.concatenate([centres[which, 1] + spread[:, 1], rng.uniform(south, north, n - clustered)])
    lon, lat = np.clip(lon, west + 0.005, east - 0.005), np.clip(lat, south + 0.005, north - 0.005)
    side = rng.uniform(100, 300, n)
    rows = []
    for i in range(n):
        half_y = side[i] / 2 / 110_574
        half_x = side[i] / 2 / (111_320 * np.cos(np.radians(lat[i])))
        box = shapely.box(lon[i] - half_x, lat[i] - half_y, lon[i] + half_x, lat[i] + half_y)
        west_i, south_i, east_i, north_i = box.bounds
        rows.append({"source": "bench", "external_id": f"bench-{i}", "geometry": shapely.to_geojson(box),
                     "lon": float(lon[i]), "lat": float(lat[i]), "west": west_i, "south": south_i,
                     "east": east_i, "north": north_i, "score": round(float(rng.uniform(0.5, 1)), 3),
                     "threshold": 0.5, "period_start": "2024-01-01", "period_end": "2024-12-31",
                     "model_id": "48px_v4.21"})
    db["detections"].insert_all(rows, batch_size=1000)


def time_design(db_path: Path, folder: Path, repeat: int) -> dict:
    import shapely

    from review.analysis import assessment
    from review.store import connect

    region_path = folder / "region.geojson"
    region_path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "bench region"},
         "geometry": json.loads(shapely.to_geojson(region()))}]}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole, summary = [], ""
    for run in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "review", "assess", "design", f"cli-{run}",
                               "--region", str(region_path), "--period", "2024", "--n", SIZES,
                               "--db", str(db_path)], env=env, capture_output=True, text=True)
        whole.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"assess design failed: {done.stderr or done.stdout}")
        summary = done.stdout.strip()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import review.cli, review.analysis.assessment, "
                    "review.analysis.trends"], env=env, check=True)
    imports = time.perf_counter() - started

    db = connect(db_path)
    period = assessment.parse_period("2024")
    names, near_m = assessment.parse_strata(None)
    sizes = [int(s) for s in SIZES.split(",")]
    parts = {"footprints": [], "strata": [], "draw": [], "create": []}
    units = 0
    for run in range(repeat):
        started = time.perf_counter()
        found = assessment.footprints(db, region(), period)
        parts["footprints"].append(time.perf_counter() - started)
        started = time.perf_counter()
        strata = assessment.make_strata(db, region(), period, names, near_m)
        parts["strata"].append(time.perf_counter() - started)
        started = time.perf_counter()
        drawn = [assessment.stratum_points(s.geometry, n, 1, position)
                 for position, (s, n) in enumerate(zip(strata.strata, sizes), start=1)]
        parts["draw"].append(time.perf_counter() - started)
        started = time.perf_counter()
        design = assessment.create(db, f"parts-{run}", strata, sizes, "Sizes as given.", seed=1)
        parts["create"].append(time.perf_counter() - started)
        units = sum(s["n"] for s in design.strata)
        assert units == sum(len(d) for d in drawn)
    return {"whole": whole, "imports": imports, "parts": parts, "summary": summary,
            "found": len(found), "units": units,
            "strata": {s.name: (s.area_ha / 100, len(shapely.get_parts(s.geometry)))
                       for s in strata.strata}}


# ------------------------------------------------------------------ 2. labelling in Chromium

def _fixture_pairs(count: int) -> list[tuple[Path, Path]]:
    pairs = []
    for t0 in sorted(PAIRS.glob("*_t0.tif")):
        t1 = t0.with_name(t0.name.replace("_t0", "_t1"))
        if t1.exists():
            pairs.append((t0, t1))
    return pairs[:count]


def prepare_cached_chips(db, units: list[dict]) -> None:
    """Chips of the first units in the chip cache, from the fixture pairs, crosshair drawn."""
    import shapely

    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.judging import unit_labels
    from review.review_imagery import chip_cache, chips, preparation

    rendered = []
    for t0, t1 in _fixture_pairs(20):
        west, south, east, north = open_tile(t1).lonlat_bounds()
        centre = shapely.Point((west + east) / 2, (south + north) / 2)
        scenes = [{**scene_record(open_tile(p)), "label": f"Sentinel-2 fixture pair {t0.stem[:-3]}"}
                  for p in (t0, t1)]
        rendered.append(chips.render_pair(scenes, centre))
    cache = chip_cache.cache_for(db)
    for number, unit in enumerate(units):
        before, after = rendered[number % len(rendered)]
        place = preparation.unit_place(unit_labels.unit(db, unit["unit_id"]))
        cache.store(place, "sentinel-2", before, after)


def write_scenes(db, units: list[dict], folder: Path) -> None:
    """Two 6-band GeoTIFFs (2023, 2024; 10 m, UTM 21S, 1.6 km square) around each unit, of
    real fixture pixels (a 48 px pair tiled), registered as stored scenes."""
    import numpy as np
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.store import add_scene

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True)
    pairs = _fixture_pairs(20)
    for number, unit in enumerate(units):
        x, y = to_utm.transform(unit["lon"], unit["lat"])
        for year, source in zip((2023, 2024), pairs[number % len(pairs)]):
            with rasterio.open(source) as src:
                data = np.tile(src.read(), (1, 4, 4))[:, :160, :160]
            path = folder / f"unit{unit['unit_id']}_{year}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=160, height=160, count=6, dtype="int16",
                               crs="EPSG:32721", transform=from_origin(x - 800, y + 800, 10, 10)) as dst:
                dst.write(data)
                for index, band in enumerate(("B2", "B3", "B4", "B8", "B11", "B12"), start=1):
                    dst.set_band_description(index, band)
                dst.update_tags(PERIOD_START=f"{year}-01-01", PERIOD_END=f"{year}-12-31")
            add_scene(db, scene_record(open_tile(path)))


def measure_labels(db_path: Path, folder: Path, design: str, sources: str, presses: int) -> dict:
    from playwright.sync_api import expect, sync_playwright

    from review.store import connect

    env = {**os.environ, "REVIEW_DB": str(db_path), "REVIEW_DATA_DIR": str(folder),
           "REVIEW_CHIP_SOURCES": sources, "REVIEW_STAC_URL": "http://127.0.0.1:9/",
           "REVIEW_WAYBACK_CONFIG_URL": "http://127.0.0.1:9/",
           "REVIEW_BASEMAP_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png", "PYTHONPATH": str(REPO)}
    before = connect(db_path)["verdicts"].count
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    drawn, idle = [], []
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            local = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(local) else route.abort())
            page.set_default_timeout(60_000)
            page.goto(url + "/Review")
            page.get_by_label(NAME_FIELD).fill("bench")
            page.keyboard.press("Enter")
            expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
                "data-test-script-state", "notRunning")
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
                has_text="Order").click()
            page.get_by_role("option", name=f"assessment points: {design} (2024)").click()
            expect(page.get_by_role("heading", name=QUESTION)).to_be_visible()
            expect(page.locator('[data-testid="stMain"] img')).to_have_count(2)
            expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
                "data-test-script-state", "notRunning")
            page.get_by_role("heading", name=QUESTION).click()        # focus off the note box
            for number in range(3 + presses):                          # three warm-up presses
                page.evaluate(WATCH, page.evaluate(STATE))
                page.keyboard.press("m" if number % 2 else "n")
                page.wait_for_function("window.__t2 !== undefined")
                if number >= 3:
                    drawn.append(page.evaluate("window.__t1 - window.__t0"))
                    idle.append(page.evaluate("window.__t2 - window.__t0"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    recorded = connect(db_path)["verdicts"].count - before
    assert recorded == presses + 3, f"{recorded} labels for {presses + 3} presses"
    return {"drawn": sorted(drawn), "idle": sorted(idle), "recorded": recorded}


def _stats(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"median {statistics.median(samples):.0f} ms, p90 {samples[int(0.9 * len(samples))]:.0f} ms, "
            f"max {samples[-1]:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="design timings: runs of each")
    parser.add_argument("--detections-too", action="store_true",
                        help="then run bench.review_browser with as many presses")
    args = parser.parse_args()
    if not PAIRS.exists():
        print(f"error: {PAIRS} not found", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="review-assessment-bench-"))
    os.environ.update({"REVIEW_DATA_DIR": str(folder), "REVIEW_STAC_URL": "http://127.0.0.1:9/",
                       "REVIEW_WAYBACK_CONFIG_URL": "http://127.0.0.1:9/"})
    from review.analysis import assessment
    from review.store import connect

    db_path = folder / "review.db"
    db = connect(db_path)
    print(f"machine: {_machine()}")
    started = time.perf_counter()
    add_detections(db)
    print(f"region {REGION_BOUNDS}: {area_km2(region()):,.0f} km² (EPSG:6933); {DETECTIONS:,} detections "
          f"of 2024 inserted in {time.perf_counter() - started:.1f} s")

    found = time_design(db_path, folder, args.repeat)
    print(f"`assess design --period 2024 --n {SIZES}` (default strata detected,near:1000,rest):")
    print(f"  {found['summary']}")
    print("  strata: " + "; ".join(f"{name} {km2:,.1f} km² in {parts:,} polygons"
                                    for name, (km2, parts) in found["strata"].items()))
    runs = ", ".join(f"{s:.2f}" for s in found["whole"])
    print(f"  whole command, fresh process, {args.repeat} runs: {runs} s (median "
          f"{statistics.median(found['whole']):.2f} s; start-up and imports alone {found['imports']:.2f} s)")
    parts = {k: statistics.median(v) for k, v in found["parts"].items()}
    print(f"  in this process (median of {args.repeat}): footprints read {parts['footprints']:.2f} s "
          f"({found['found']:,} found); strata geometry (make_strata, the read included) "
          f"{parts['strata']:.2f} s; drawing {found['units']} points {parts['draw']:.3f} s; "
          f"create (drawing + storing in one transaction) {parts['create']:.3f} s, so storing "
          f"{parts['create'] - parts['draw']:.3f} s")

    strata = assessment.make_strata(db, region(), assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    sizes = [int(s) for s in SIZES.split(",")]
    needed = args.presses + 3 + 12
    for name, seed in (("bench cached", 11), ("bench scenes", 12)):
        design = assessment.create(db, name, strata, sizes, "Sizes as given.", seed=seed)
        units = assessment.units(db, design)[:needed]
        started = time.perf_counter()
        if name == "bench cached":
            prepare_cached_chips(db, units)
        else:
            (folder / "scenes").mkdir()
            write_scenes(db, units, folder / "scenes")
        print(f"{name}: imagery for its first {len(units)} points made in "
              f"{time.perf_counter() - started:.1f} s")
    for name, sources, how in (("bench cached", "sentinel-2", "chips prepared in the chip cache"),
                               ("bench scenes", "scenes", "stored scenes rendered by the page")):
        result = measure_labels(db_path, folder, name, sources, args.presses)
        print(f"key press (M/N) -> next point, {args.presses} presses, {how} (Chromium, streamlit run):")
        print(f"  caption and both chips loaded: {_stats(result['drawn'])}  (target: median under 300 ms)")
        print(f"  ... and the script idle again: {_stats(result['idle'])}")
        print(f"  {result['recorded']} labels recorded, one per press")
    if args.detections_too:
        print(f"detection Review for comparison (bench.review_browser --presses {args.presses}):", flush=True)
        subprocess.run([sys.executable, "-m", "bench.review_browser", "--presses", str(args.presses)],
                       cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
