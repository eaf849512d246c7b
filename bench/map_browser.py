"""Benchmark: the Map page at Amazon scale in Chromium (issue 28): 39,227, 200,000 and
1,000,000 detections, cold and warm (page load to drawn, click to Review, JS heap).

Databases (built once, cached under --cache keyed by size, copied for each run so a run's
verdicts never reach the cache; the schema is the product's, review.store.connect):

- 39,227: the seven Amazon Mining Watch website layers (the fixtures'
  detections/earthrise/mining_{2018..2024}00_simplified.geojson), imported with
  review.detection.importers.import_file;
- any other size: 480 m squares (GeoJSON polygons) on a regular grid over the Amazon
  (75-50 W, 15 S-5 N; 500 x 400 for 200,000), pending, one in fifty verified (at random), written by
  bulk inserts.

Per size, `streamlit run app.py` on 127.0.0.1 (offline: basemap, STAC and Wayback URLs on a
closed local port) and Debian's Chromium (Playwright, software WebGL, every request beyond
127.0.0.1 aborted):

1. cold: a fresh server process and a new browser context; from navigation start to
   - drawn: the first frame issued with the detections' layers (`window.__reviewMap.drawn()`,
     deck.gl's onAfterRender);
   - on screen: the end of that frame's main-thread task (with software WebGL the compositor
     reads the canvas back, GLES2::ReadPixels, and waits for the frame to be rendered);
   - settled: the page's first script run done and no long task (50 ms or more) on the
     main thread for a second (later redraws finished);
   and the JS heap (CDP Performance.getMetrics JSHeapUsedSize; Runtime.getHeapUsage's
   array-buffer backing stores, where typed arrays live, reported beside it);
2. warm: the same server, a new context (a new session), the same timings;
3. clicks: on drawn pending detections, each confirmed with the map's own pick() first: for
   the website layers, at the whole-map view on dots with no other dot within 8 px; for the
   grids, after setView to zoom 12 centred on the square. Before each click the page is
   settled, and again after the pointer moved over the dot (the hover's redraw).
   Click (pointerdown's timeStamp) to the Review page's heading "Detection #ID"
   (in-page, each animation frame); then history back to the Map: drawn, on screen and
   settled again (the revisit);
4. verdict colour: on the last clicked detection in Review, once the page's script run is
   over, "v"; history back to the Map; seconds until the map draws it as verified (the
   first frame after return, if the map's columns said "verified" by then; else when they
   did); the dot's pixel colour is checked in a screenshot.

Screenshots go to --shots (<size>.png: the drawn map, cold; <size>-zoom12.png for the grids).

    .venv/bin/python -m bench.map_browser [--sizes 39227 200000 1000000] [--clicks N]
        [--cache /tmp/mapbench] [--shots /tmp/mapbench] [--json PATH] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURES = Path(os.environ.get("REVIEW_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
LAYERS = [FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson"
          for year in range(2018, 2025)]
WEBSITE_LAYERS = 39_227          # detections in the seven layers together
WEST, EAST, SOUTH, NORTH = -75.0, -50.0, -15.0, 5.0
SQUARE_M = 480.0
VERIFIED_EVERY = 50
CLICK_ZOOM = 12
ISOLATED_PX = 8
QUIET_MS = 1000                  # settled: no long task on the page's main thread for this long
VERIFIED_RGB = (215, 48, 31)     # review.analysis.map_layers.STATUS_COLOURS["verified"]
NAME_BOX = "Your name (recorded with every verdict)"
MAP = '[data-testid="detection-map"]'

# In every page of a context, before the app's own scripts: when the script run state
# changes, and every long task (50 ms or more) of the page's main thread.
WATCH_RUNS = """(() => {
  window.__bench = {states: [], longTasks: []};
  let last = null;
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app ? app.getAttribute('data-test-script-state') : null;
    if (state !== last) { last = state; window.__bench.states.push([state, performance.now()]); }
  };
  setInterval(check, 10);
  try {
    new PerformanceObserver(list => { for (const e of list.getEntries())
      window.__bench.longTasks.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});
  } catch (e) { window.__bench.longTasks = null; }
})();"""
# The end of the page's first script run: the first notRunning after a running state.
FIRST_RUN_DONE = """() => { const s = (window.__bench || {states: []}).states;
  const k = s.findIndex(([state]) => state === 'running');
  if (k < 0) return null;
  const done = s.slice(k).find(([state]) => state === 'notRunning');
  return done ? done[1] : null; }"""
IDLE = """() => { const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'; }"""
DRAWN_AFTER = "(t) => !!window.__reviewMap && window.__reviewMap.drawn() > t"
# Before a click: note the pointerdown, then watch each frame for the Review heading.
ARM_CLICK = """(id) => {
  const c = window.__click = {id, t0: undefined, t1: undefined, heading: null};
  window.addEventListener('pointerdown', (e) => { if (c.t0 === undefined) c.t0 = Math.min(e.timeStamp, performance.now()); },
                          {capture: true, once: true});
  const tick = () => {
    if (window.__click !== c) return;
    if (c.t0 !== undefined) {
      const h = [...document.querySelectorAll('h3')].find(h => h.innerText.startsWith('Detection #'));
      if (h) { c.heading = h.innerText.split(' · ')[0].trim(); c.t1 = performance.now(); return; }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
HEADING = """() => { const h = [...document.querySelectorAll('h3')].find(h => h.innerText.startsWith('Detection #'));
  return h ? h.innerText.split(' · ')[0].trim() : null; }"""
# Before going back to the Map after a verdict: look at every frame (a long task on the main
# thread is a frame being drawn, so no sampling in between can be starved): the first frame
# seen after the map drew again, the detection's status then, and the first frame in which
# the map (statusOf reads the columns the tab keeps across visits) says "verified".
ARM_VERDICT = """(id) => { const v = window.__verdict = {t: performance.now(), drawnSeen: undefined,
    statusAtDrawn: undefined, sameFrame: undefined, flip: undefined, both: undefined};
  const f = (frame) => { const m = window.__reviewMap, now = performance.now();
    const drawn = m ? m.drawn() : 0, status = m ? m.statusOf(id) : null;
    if (drawn > v.t && v.drawnSeen === undefined) {
      v.drawnSeen = now; v.statusAtDrawn = status; v.sameFrame = drawn >= frame; }
    if (status === 'verified' && v.flip === undefined) v.flip = now;
    if (drawn > v.t && status === 'verified') { v.both = now; return; }
    requestAnimationFrame(f); };
  requestAnimationFrame(f); return v.t; }"""
SEEN_VERIFIED = "() => window.__verdict.both !== undefined"
# Every dot on screen with its page position and status.
ON_SCREEN = """(limit) => { const m = window.__reviewMap; const out = [];
  for (const id of m.onScreen(limit)) { const p = m.screenOf(id); if (p) out.push([id, p[0], p[1], m.statusOf(id)]); }
  return out; }"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


# ------------------------------------------------------------------------------ databases

def grid_shape(n: int) -> tuple[int, int]:
    """Columns and rows of a grid of at least n cells with square spacing in degrees."""
    columns = math.ceil(math.sqrt(n * (EAST - WEST) / (NORTH - SOUTH)))
    return columns, math.ceil(n / columns)


def grid_rows(n: int, seed: int = 0):
    """n rows for the detections table: 480 m squares on the grid, row by row from the
    north-west corner; one in fifty verified, drawn at random (no stripes)."""
    from review.store import now

    columns, rows = grid_shape(n)
    k = np.arange(n)
    lon = WEST + (k % columns + 0.5) * (EAST - WEST) / columns
    lat = NORTH - (k // columns + 0.5) * (NORTH - SOUTH) / rows
    half_lat = SQUARE_M / 2 / 111_320
    half_lon = half_lat / np.cos(np.radians(lat))
    west, east, south, north = lon - half_lon, lon + half_lon, lat - half_lat, lat + half_lat
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    verified = np.zeros(n, bool)
    verified[rng.choice(n, n // VERIFIED_EVERY, replace=False)] = True
    stamp = now()
    area = SQUARE_M ** 2 / 10_000
    for i in range(n):
        w, e, s, no = f"{west[i]:.6f}", f"{east[i]:.6f}", f"{south[i]:.6f}", f"{north[i]:.6f}"
        geometry = ('{"type":"Polygon","coordinates":[[[' + w + "," + s + "],[" + e + "," + s + "],["
                    + e + "," + no + "],[" + w + "," + no + "],[" + w + "," + s + "]]]}")
        yield ("grid", f"g{i}", geometry, float(lon[i]), float(lat[i]), float(west[i]),
               float(south[i]), float(east[i]), float(north[i]), float(score[i]), area, "footprint",
               "2024-01-01", "2024-12-31", "{}", stamp,
               "verified" if verified[i] else "pending")


GRID_COLUMNS = ("source", "external_id", "geometry", "lon", "lat", "west", "south", "east", "north",
                "score", "area_ha", "area_source", "period_start", "period_end", "properties",
                "added_at", "status")


def build_database(path: Path, n: int) -> str:
    """The review database for n detections at path; what it holds, in words."""
    from review.store import connect, transaction

    db = connect(path)
    if n == WEBSITE_LAYERS:
        from review.detection.importers import import_file

        for layer in LAYERS:
            import_file(db, layer)
        what = "the seven Amazon Mining Watch website layers"
    else:
        sql = (f"insert into detections ({', '.join(GRID_COLUMNS)}) "
               f"values ({', '.join('?' * len(GRID_COLUMNS))})")
        rows = grid_rows(n)
        with transaction(db):
            while True:
                chunk = [row for _, row in zip(range(50_000), rows)]
                if not chunk:
                    break
                db.conn.executemany(sql, chunk)
        columns, grid = grid_shape(n)
        what = f"{SQUARE_M:.0f} m squares on a {columns} x {grid} grid, one in {VERIFIED_EVERY} verified"
    count = db.execute("select count(*) from detections").fetchone()[0]
    if count != n:
        raise SystemExit(f"{path}: {count:,} detections, expected {n:,}")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return what


def cached_database(cache: Path, n: int) -> tuple[Path, float | None, str]:
    """The pristine database for n (built once): its path, the build's seconds (None when
    it came from the cache), and what it holds."""
    folder = cache / f"db-{n}"
    note = folder / "what.txt"
    if (folder / "review.db").exists() and note.exists():
        return folder / "review.db", None, note.read_text()
    building = cache / f"db-{n}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    started = time.perf_counter()
    what = build_database(building / "review.db", n)
    seconds = time.perf_counter() - started
    (building / "what.txt").write_text(what)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(building, folder)
    return folder / "review.db", seconds, what


def corner_ids(path: Path) -> list[int]:
    """The detections at the four corners of the data (south-west, north-west, ...)."""
    from review.store import connect

    db = connect(path)
    ids = [db.execute(f"select id from detections order by {key} limit 1").fetchone()[0]
           for key in ("lon + lat", "lon - lat", "-lon + lat", "-lon - lat")]
    db.conn.close()
    return ids


def pending_targets(path: Path, count: int, seed: int) -> list[tuple[int, float, float]]:
    """count pending detections spread over the data: (id, lon, lat)."""
    from review.store import connect

    db = connect(path)
    total = db.execute("select max(id) from detections").fetchone()[0]
    rng = random.Random(seed)
    chosen: list[tuple[int, float, float]] = []
    while len(chosen) < count:
        row = db.execute("select id, lon, lat from detections where id = ? and status = 'pending'",
                         [rng.randint(1, total)]).fetchone()
        if row and row[0] not in {c[0] for c in chosen}:
            chosen.append(tuple(row))
    db.conn.close()
    return chosen


def verdicts_of(path: Path, detection_id: int) -> list[str]:
    from review.store import connect

    db = connect(path)
    rows = [r[0] for r in db.execute("select verdict from verdicts where detection_id = ?",
                                     [detection_id]).fetchall()]
    db.conn.close()
    return rows


# ------------------------------------------------------------------------------ server

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_streamlit(db_path: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    closed = "http://127.0.0.1:9"
    env = {**os.environ, "REVIEW_DB": str(db_path), "REVIEW_DATA_DIR": str(data_dir),
           "REVIEW_BASEMAP_URL": closed + "/{z}/{x}/{y}.png", "REVIEW_STAC_URL": closed + "/",
           "REVIEW_WAYBACK_CONFIG_URL": closed + "/", "PYTHONPATH": str(REPO)}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"streamlit did not start (see {log})")


# ------------------------------------------------------------------------------ browser

def _offline(route) -> None:
    if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH_RUNS)
    context.route("**/*", _offline)
    page = context.new_page()
    page.set_default_timeout(120_000)
    return context, page


def heap(context, page) -> dict:
    """The JS heap now, in MiB: CDP's JSHeapUsedSize, V8's array-buffer backing stores
    (typed arrays live there, outside the JS heap), and performance.memory."""
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    usage = cdp.send("Runtime.getHeapUsage")
    memory = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    cdp.send("HeapProfiler.collectGarbage")
    after_gc = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.detach()
    mib = 1024 * 1024
    return {"js_heap_used_mib": metrics.get("JSHeapUsedSize", float("nan")) / mib,
            "js_heap_total_mib": metrics.get("JSHeapTotalSize", float("nan")) / mib,
            "array_buffers_mib": usage.get("backingStorageSize", float("nan")) / mib,
            "performance_memory_mib": None if memory is None else memory / mib,
            "js_heap_used_after_gc_mib": after_gc.get("JSHeapUsedSize", float("nan")) / mib}


def quiet(page, since_ms: float, timeout_s: float, window_ms: float = QUIET_MS) -> dict:
    """Wait until the page's main thread has had no long task for window_ms and the script
    is idle; the end of the last long task after since_ms (ms, in-page clock) and their sum."""
    deadline = time.perf_counter() + timeout_s
    calm = 0                  # two calm looks in a row: a long task's entry arrives a task late
    while True:
        now, tasks, idle = page.evaluate(
            "() => [performance.now(), (window.__bench || {}).longTasks, (" + IDLE + ")()]")
        later = [(start, duration) for start, duration in (tasks or []) if start + duration > since_ms]
        end = max([start + duration for start, duration in later], default=since_ms)
        calm = calm + 1 if idle and now - end >= window_ms else 0
        if calm >= 2 or time.perf_counter() > deadline:
            return {"end_ms": end, "long_tasks_ms": sum(d for _, d in later), "long_tasks": len(later),
                    "timed_out": time.perf_counter() > deadline}
        time.sleep(0.25)


def on_screen_ms(page, drawn_ms: float) -> float:
    """When the frame drawn at drawn_ms reached the screen: deck.gl's onAfterRender fires
    when the frame's commands are issued; with software WebGL the compositor then reads the
    canvas back (GLES2::ReadPixels) and the main thread waits for the frame to be rendered,
    a long task that ends when the pixels are there. Call after quiet()."""
    tasks = page.evaluate("() => (window.__bench || {}).longTasks") or []
    return max([start + duration for start, duration in tasks if start <= drawn_ms <= start + duration],
               default=drawn_ms)


def load_map(browser, url: str, timeout_s: float) -> tuple:
    """A new context's page on /Map, timed from navigation start: drawn, first run done,
    settled (drawn, the run done, and the main thread's last long task over)."""
    context, page = new_page(browser)
    started = time.perf_counter()
    page.goto(url + "/Map", wait_until="commit")
    page.wait_for_function("() => !!window.__reviewMap && window.__reviewMap.drawn() > 0",
                           timeout=timeout_s * 1000, polling=50)
    wall = time.perf_counter() - started
    drawn_ms = page.evaluate("() => window.__reviewMap.drawn()")
    page.wait_for_function(IDLE, timeout=timeout_s * 1000, polling=50)
    run_done = page.evaluate(FIRST_RUN_DONE)
    still = quiet(page, drawn_ms, timeout_s)
    shown = on_screen_ms(page, drawn_ms)
    memory = heap(context, page)
    return context, page, {"drawn_s": drawn_ms / 1000, "on_screen_s": shown / 1000, "drawn_wall_s": wall,
                           "first_run_done_s": None if run_done is None else run_done / 1000,
                           "settled_s": max(drawn_ms, run_done or 0, still["end_ms"]) / 1000,
                           "long_tasks_after_drawn_s": still["long_tasks_ms"] / 1000,
                           **memory}


def set_name(page) -> None:
    box = page.get_by_label(NAME_BOX)
    box.fill("bench")
    box.press("Enter")
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE, polling=50)


def map_box(page) -> dict:
    return page.locator(MAP).bounding_box()


def isolated(points: list, radius: float) -> list:
    """The points with no other point within radius pixels."""
    cells: dict[tuple[int, int], list] = {}
    for point in points:
        cells.setdefault((int(point[1] // radius), int(point[2] // radius)), []).append(point)
    out = []
    for point in points:
        cx, cy = int(point[1] // radius), int(point[2] // radius)
        near = [q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for q in cells.get((cx + dx, cy + dy), ())
                if q is not point and (q[1] - point[1]) ** 2 + (q[2] - point[2]) ** 2 < radius ** 2]
        if not near:
            out.append(point)
    return out


def nearest_other_px(page, ident: int, x: float, y: float) -> float | None:
    others = [p for p in page.evaluate(ON_SCREEN, 2000) if p[0] != ident]
    if not others:
        return None
    return min(math.hypot(p[1] - x, p[2] - y) for p in others)


def back_to_map(page, url: str, timeout_s: float) -> dict:
    """History back from Review to the Map: seconds to its next drawn frame, and to settled
    (the run done and the main thread quiet)."""
    t = page.evaluate("() => performance.now()")
    page.go_back(wait_until="commit")
    if not page.evaluate("() => location.pathname").endswith("/Map"):
        page.goto(url + "/Map", wait_until="commit")
        t = 0
    page.wait_for_function(DRAWN_AFTER, arg=t, timeout=timeout_s * 1000, polling=50)
    drawn_ms = page.evaluate("() => window.__reviewMap.drawn()")
    still = quiet(page, drawn_ms, timeout_s)
    return {"drawn_s": (drawn_ms - t) / 1000, "on_screen_s": (on_screen_ms(page, drawn_ms) - t) / 1000,
            "settled_s": (max(drawn_ms, still["end_ms"]) - t) / 1000,
            "long_tasks_after_drawn_s": still["long_tasks_ms"] / 1000}


def click_one(page, ident: int, timeout_s: float) -> dict:
    """Click on a detection's dot: did Review open it, and how long did it take."""
    x, y = page.evaluate("(id) => window.__reviewMap.screenOf(id)", ident)
    box = map_box(page)
    picked = page.evaluate("([x, y]) => window.__reviewMap.pick(x, y)", [x - box["x"], y - box["y"]])
    page.mouse.move(x, y)
    page.evaluate(TWO_FRAMES)
    quiet(page, 0, timeout_s, window_ms=500)     # the hover's redraw done: time the click alone
    page.evaluate(ARM_CLICK, ident)
    started = time.perf_counter()
    page.mouse.click(x, y)
    result = {"id": ident, "x": round(x, 1), "y": round(y, 1), "pick": picked,
              "pick_agreed": picked == ident}
    try:
        page.wait_for_function("() => window.__click.t1 !== undefined", timeout=timeout_s * 1000,
                               polling=50)
        click = page.evaluate("() => window.__click")
        result.update(seconds=(click["t1"] - click["t0"]) / 1000, wall_s=time.perf_counter() - started,
                      heading=click["heading"], landed=click["heading"] == f"Detection #{ident}",
                      path=page.evaluate("() => location.pathname"))
    except Exception as exc:          # noqa: BLE001 - a click that opened nothing is a result
        result.update(seconds=None, wall_s=None, heading=page.evaluate(HEADING), landed=False,
                      path=page.evaluate("() => location.pathname"), error=type(exc).__name__)
    return result


def choose_on_whole_map(page, count: int, seed: int) -> tuple[list, int]:
    """count pending dots at the whole-map view with no other dot within ISOLATED_PX."""
    points = page.evaluate(ON_SCREEN, 10_000_000)
    alone = [p for p in isolated(points, ISOLATED_PX) if p[3] == "pending"]
    rng = random.Random(seed)
    return rng.sample(alone, min(count, len(alone))), len(alone)


def pixel_colour(page, shot: Path, x: float, y: float) -> list[int]:
    from PIL import Image

    page.screenshot(path=str(shot))
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    patch = image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].reshape(-1, 3)
    distance = np.abs(patch - VERIFIED_RGB).max(axis=1)
    return patch[int(distance.argmin())].tolist()


def bench_size(browser, n: int, clicks: int, args, seed: int = 28) -> dict:
    timeout_s = args.timeout
    shots = args.shots
    result: dict = {"detections": n, "load_average_before": os.getloadavg()}
    started = time.perf_counter()
    pristine, built, what = cached_database(args.cache, n)
    result.update(database=what, build_s=built, from_cache=built is None)
    print(f"{n:,} detections ({what}): " + ("from the cache" if built is None else f"built in {built:.1f} s"),
          flush=True)
    folder = Path(tempfile.mkdtemp(prefix=f"mapbench-{n}-", dir=args.cache))
    db_path = folder / "review.db"
    shutil.copyfile(pristine, db_path)
    corners = corner_ids(db_path)
    grid = n != WEBSITE_LAYERS
    targets = pending_targets(db_path, clicks, seed) if grid else []
    result["prepare_s"] = time.perf_counter() - started
    server_started = time.perf_counter()
    result["code"] = code_version()       # the server reads the app's files on its first runs
    process, url = start_streamlit(db_path, folder / "data", folder / "streamlit.log")
    result["server_start_s"] = time.perf_counter() - server_started
    try:
        # 1. cold
        phase = time.perf_counter()
        context, page, cold = load_map(browser, url, timeout_s)
        result["cold"] = cold
        page.locator(MAP).scroll_into_view_if_needed()
        page.locator(MAP).screenshot(path=str(shots / f"{n}.png"))
        cold["corners_on_screen"] = sum(
            page.evaluate("(id) => window.__reviewMap.screenOf(id) !== null", c) is True for c in corners)
        context.close()
        result["cold_phase_s"] = time.perf_counter() - phase
        print(f"  cold: drawn {cold['drawn_s']:.1f} s, on screen {cold['on_screen_s']:.1f} s, first run done {cold['first_run_done_s'] or float('nan'):.1f} s, "
              f"settled {cold['settled_s']:.1f} s, "
              f"JS heap {cold['js_heap_used_mib']:.0f} MiB (+{cold['array_buffers_mib']:.0f} MiB array buffers), "
              f"corners on screen {cold['corners_on_screen']}/4", flush=True)
        # 2. warm
        phase = time.perf_counter()
        context, page, warm = load_map(browser, url, timeout_s)
        result["warm"] = warm
        result["warm_phase_s"] = time.perf_counter() - phase
        print(f"  warm: drawn {warm['drawn_s']:.1f} s, on screen {warm['on_screen_s']:.1f} s, first run done {warm['first_run_done_s'] or float('nan'):.1f} s, "
              f"settled {warm['settled_s']:.1f} s, "
              f"JS heap {warm['js_heap_used_mib']:.0f} MiB", flush=True)
        # 3. clicks
        phase = time.perf_counter()
        set_name(page)
        page.locator(MAP).scroll_into_view_if_needed()
        if grid:
            chosen = [(ident, lon, lat) for ident, lon, lat in targets]
            result["candidates"] = None
        else:
            picks, candidates = choose_on_whole_map(page, clicks, seed)
            chosen = [(p[0], None, None) for p in picks]
            result["candidates"] = candidates
        samples, revisits = [], []
        for number, (ident, lon, lat) in enumerate(chosen):
            quiet(page, 0, timeout_s)
            if grid:
                page.evaluate("(v) => window.__reviewMap.setView(v)",
                              {"longitude": lon, "latitude": lat, "zoom": CLICK_ZOOM})
                page.evaluate(TWO_FRAMES)
                if number == 0:
                    page.locator(MAP).screenshot(path=str(shots / f"{n}-zoom{CLICK_ZOOM}.png"))
            status = page.evaluate("(id) => window.__reviewMap.statusOf(id)", ident)
            at = page.evaluate("(id) => window.__reviewMap.screenOf(id)", ident)
            apart = nearest_other_px(page, ident, *at) if at and grid else None
            sample = click_one(page, ident, timeout_s) if at else {
                "id": ident, "landed": False, "seconds": None, "error": "not on screen"}
            sample.update(status_before=status, nearest_other_px=apart)
            samples.append(sample)
            print(f"  click {number + 1}/{len(chosen)} #{ident}: "
                  + (f"landed in {sample['seconds']:.2f} s" if sample["landed"] else
                     f"NOT landed ({sample.get('heading')}, {sample.get('path')}, {sample.get('error', '')})")
                  + f", pick {'agreed' if sample.get('pick_agreed') else 'said ' + str(sample.get('pick'))}",
                  flush=True)
            if not sample["landed"] and sample.get("path", "").endswith("/Map") and sample.get("heading") is None:
                page.screenshot(path=str(shots / f"{n}-click{number + 1}-missed.png"))
                continue
            last = number == len(chosen) - 1
            if last and sample["landed"] and status == "pending":
                break                 # the verdict below starts from this Review page
            revisits.append(back_to_map(page, url, timeout_s))
            print(f"    back to the Map: drawn {revisits[-1]['drawn_s']:.2f} s, "
                  f"on screen {revisits[-1]['on_screen_s']:.2f} s, settled {revisits[-1]['settled_s']:.1f} s",
                  flush=True)
        result["clicks"] = samples
        result["revisits"] = revisits
        result["clicks_phase_s"] = time.perf_counter() - phase
        # 4. verdict colour
        phase = time.perf_counter()
        result["verdict"] = verdict_colour(page, url, samples, db_path, grid, shots, n, timeout_s)
        result["verdict_phase_s"] = time.perf_counter() - phase
        print(f"  verdict: {result['verdict']}", flush=True)
        context.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        result["streamlit_log"] = str(folder / "streamlit.log")
    if not args.keep:
        shutil.copyfile(folder / "streamlit.log", shots / f"{n}-streamlit.log")
        result["streamlit_log"] = str(shots / f"{n}-streamlit.log")
        shutil.rmtree(folder, ignore_errors=True)
    result["total_s"] = time.perf_counter() - started
    result["load_average_after"] = os.getloadavg()
    print(f"  load average (1, 5, 15 min) before {result['load_average_before']}, after "
          f"{result['load_average_after']}; {result['total_s']:.0f} s in all", flush=True)
    return result


def verdict_colour(page, url: str, samples: list, db_path: Path, grid: bool, shots: Path, n: int,
                   timeout_s: float) -> dict:
    """On the Review page of the last clicked pending detection: "v", back to the Map,
    seconds until the map draws it as verified."""
    last = samples[-1] if samples else None
    if not last or not last["landed"] or last.get("status_before") != "pending":
        return {"error": "the last click did not open a pending detection in Review"}
    ident = last["id"]
    page.mouse.move(5, 5)                 # no button's help tooltip under the pointer
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys to the page
    # A key pressed while the Review page's script still runs (its second run, right after
    # the heading shows) records nothing: wait for the run to end, as a reviewer would.
    waited = time.perf_counter()
    page.wait_for_function(IDLE, timeout=timeout_s * 1000, polling=50)
    waited = time.perf_counter() - waited
    page.keyboard.press("v")
    try:
        page.wait_for_function(f"() => {{ const h = ({HEADING})(); return h !== 'Detection #{ident}'; }}",
                               timeout=60_000, polling=50)
    except Exception as exc:          # noqa: BLE001 - reported, with a screenshot
        page.screenshot(path=str(shots / f"{n}-verdict-not-recorded.png"))
        return {"id": ident, "error": f"no verdict: the heading stayed ({type(exc).__name__})",
                "verdicts_recorded": verdicts_of(db_path, ident)}
    after = page.evaluate(HEADING)
    recorded = verdicts_of(db_path, ident)
    review_idle = page.evaluate(IDLE)
    t = page.evaluate(ARM_VERDICT, ident)
    page.go_back(wait_until="commit")
    if not page.evaluate("() => location.pathname").endswith("/Map"):
        return {"id": ident, "error": "history back from Review did not return to the Map",
                "verdicts_recorded": recorded}
    try:
        page.wait_for_function(SEEN_VERIFIED, timeout=timeout_s * 1000, polling=50)
    except Exception as exc:          # noqa: BLE001 - reported, with a screenshot
        page.screenshot(path=str(shots / f"{n}-verdict-not-shown.png"))
        return {"id": ident, "error": f"the map never said verified ({type(exc).__name__})",
                "status_then": page.evaluate("(id) => window.__reviewMap.statusOf(id)", ident),
                "verdicts_recorded": recorded}
    drawn_ms, seen = page.evaluate("() => [window.__reviewMap.drawn(), window.__verdict]")
    # Verified in the first frame the map drew on return: the colour is in that frame. Else
    # it came in a later frame, no later than the first one seen with "verified".
    first = seen["statusAtDrawn"] == "verified"
    coloured_ms = drawn_ms if first else seen["both"]
    seconds = (coloured_ms - t) / 1000
    quiet(page, drawn_ms, timeout_s)
    shown = (on_screen_ms(page, coloured_ms) - t) / 1000
    flip_ms = seen["flip"]
    page.mouse.move(5, 5)                 # no hover ring over the dot
    if grid:                              # zoomed in: the square alone under the pixel
        from review.store import connect

        db = connect(db_path)
        lon, lat = db.execute("select lon, lat from detections where id = ?", [ident]).fetchone()
        db.conn.close()
        page.evaluate("(v) => window.__reviewMap.setView(v)",
                      {"longitude": lon, "latitude": lat, "zoom": CLICK_ZOOM})
    page.evaluate(TWO_FRAMES)
    x, y = page.evaluate("(id) => window.__reviewMap.screenOf(id)", ident) or (None, None)
    colour = pixel_colour(page, shots / f"{n}-verdict.png", x, y) if x is not None else None
    return {"id": ident, "seconds": seconds, "on_screen_s": shown, "drawn_s": (drawn_ms - t) / 1000,
            "flip_s": (flip_ms - t) / 1000, "verified_in_first_frame": first,
            "status_seen_in_drawn_frame": seen["sameFrame"],
            "review_idle_wait_s": waited, "review_idle_at_back": review_idle, "verdicts_recorded": recorded, "review_then": after,
            "pixel_rgb": colour, "pixel_is_verified": colour is not None
            and max(abs(c - v) for c, v in zip(colour, VERIFIED_RGB)) < 30}


# ------------------------------------------------------------------------------ report

def _s(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _median(values: list) -> float | None:
    return statistics.median(values) if values else None


def row(result: dict) -> str:
    clicks = result.get("clicks", [])
    landed = [c for c in clicks if c["landed"]]
    times = [c["seconds"] for c in landed]
    agreed = sum(bool(c.get("pick_agreed")) for c in clicks)
    cold, warm = result.get("cold", {}), result.get("warm", {})
    revisits = result.get("revisits", [])
    verdict = result.get("verdict", {})
    def three(d: dict) -> str:
        return f"{_s(d.get('drawn_s'))} / {_s(d.get('on_screen_s'))} / {_s(d.get('settled_s'))}"

    revisit = {key: _median([r[key] for r in revisits]) for key in ("drawn_s", "on_screen_s", "settled_s")}
    return (f"| {result['detections']:,} | {three(cold)} | {three(warm)} | {three(revisit)} "
            f"| {_s(cold.get('js_heap_used_mib'), 0)} (+{_s(cold.get('array_buffers_mib'), 0)}) "
            f"| {cold.get('corners_on_screen', '-')}/4 | {len(landed)}/{len(clicks)} | {agreed}/{len(clicks)} "
            f"| {_s(_median(times), 2)} / {_s(max(times) if times else None, 2)} "
            f"| {_s(verdict.get('seconds'), 2)} / {_s(verdict.get('on_screen_s'), 2)} |")


HEADER = ("| detections | cold: drawn / on screen / settled s | warm: drawn / on screen / settled s "
          "| revisit: drawn / on screen / settled s (medians) | JS heap MiB, cold (+ array buffers) "
          "| corners on screen | clicks landed | pick agreed | click → Review s (median / max) "
          "| verdict → colour drawn / on screen s |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in
                     subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return f"{platform.machine()}, {model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def code_version() -> str:
    """The commit the app runs from, and any uncommitted change to the app's own files (the
    server reads them once, at its start)."""
    def git(*words: str) -> str:
        try:
            return subprocess.run(["git", *words], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    changed = git("status", "--porcelain", "--", "review", "static", "app_pages", "app.py")
    return (git("rev-parse", "--short", "HEAD").strip() or "unknown") + (
        " + uncommitted: " + ", ".join(line[3:] for line in changed.splitlines()) if changed else "")


def chromium_version(path: str) -> str:
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[WEBSITE_LAYERS, 200_000, 1_000_000])
    parser.add_argument("--clicks", type=int, default=None,
                        help="clicks per size (default 20 for the website layers, 10 for the grids)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mapbench"))
    parser.add_argument("--shots", type=Path, default=Path("/tmp/mapbench"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=400, help="seconds to wait for any one step")
    parser.add_argument("--keep", action="store_true", help="keep each run's database copy and log")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    if WEBSITE_LAYERS in args.sizes and not all(p.exists() for p in LAYERS):
        print(f"error: the website layers are not all in {LAYERS[0].parent}", file=sys.stderr)
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    args.shots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    info = {"date": datetime.date.today().isoformat(), "machine": machine(),
            "chromium": chromium_version(args.chromium), "command": " ".join(sys.argv),
            "code": code_version()}
    print(f"machine: {info['machine']}; {info['chromium']} (software WebGL); code {info['code']}",
          flush=True)
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for n in args.sizes:
            clicks = args.clicks or (20 if n == WEBSITE_LAYERS else 10)
            results.append(bench_size(browser, n, clicks, args))
            if args.json:
                args.json.write_text(json.dumps({**info, "results": results}, indent=1))
        browser.close()
    print()
    print(HEADER)
    for result in results:
        print(row(result))
    if args.json:
        args.json.write_text(json.dumps({**info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
