"""Benchmark: what a reviewer waits for in a real browser, from a key press to the next
detection fully on screen (its header and both chips loaded).

Imports a real earthrise website layer (5,232 detections) into a fresh database, puts
prepared chips in the chip cache for the detections the run will visit (real Sentinel-2
pixels: the Amazon before/after fixture pairs, rendered by the product's own chip code),
starts `streamlit run` on 127.0.0.1 and drives Debian's Chromium with Playwright. Each
sample is measured inside the page: from the keydown event of "V" to the first animation
frame where the header names another detection and both new chips have loaded.

    .venv/bin/python -m bench.review_browser [--presses 100] [--fixture PATH]
"""
from __future__ import annotations

import argparse
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
DEFAULT_FIXTURE = FIXTURES / "detections" / "earthrise" / "mining_202400_simplified.geojson"
PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
CHROMIUM = "/usr/bin/chromium"

# Installed before each press: note the keydown, then watch every frame for the next
# detection's header and both of its chips, loaded.
WATCH = """(old) => {
  window.__t0 = undefined; window.__t1 = undefined;
  window.addEventListener('keydown', () => { if (window.__t0 === undefined) window.__t0 = performance.now(); },
                          {capture: true, once: true});
  const ready = () => {
    const heading = [...document.querySelectorAll('h3')].find(h => h.innerText.startsWith('Detection #'));
    if (!heading || heading.innerText.split(' · ')[0] === old.heading) return false;
    const images = [...document.querySelectorAll('[data-testid="stMain"] img')].filter(i => i.src.includes('/media/'));
    if (images.length < 2) return false;
    return images.every(i => i.complete && i.naturalWidth > 0 && !old.srcs.includes(i.src));
  };
  const tick = () => { if (window.__t0 !== undefined && ready()) { window.__t1 = performance.now(); return; }
                       requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""
STATE = """() => ({heading: ([...document.querySelectorAll('h3')].find(h => h.innerText.startsWith('Detection #'))
                  || {innerText: ''}).innerText.split(' · ')[0],
                 srcs: [...document.querySelectorAll('[data-testid="stMain"] img')].map(i => i.src)})"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_chips(db, count: int) -> int:
    """Chips for the first `count` detections of the queue, from the real fixture pairs."""
    import shapely

    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.judging import queue
    from review.review_imagery import chip_cache, chips

    pairs = sorted(PAIRS.glob("*_t0.tif"))[:20]
    rendered = []
    for t0 in pairs:
        t1 = t0.with_name(t0.name.replace("_t0", "_t1"))
        after_tile = open_tile(t1)
        west, south, east, north = after_tile.lonlat_bounds()
        cx, cy, dx, dy = (west + east) / 2, (south + north) / 2, (east - west) / 6, (north - south) / 6
        footprint = shapely.box(cx - dx, cy - dy, cx + dx, cy + dy)
        scenes = [{**scene_record(open_tile(p)), "label": f"Sentinel-2 fixture pair {t0.stem[:-3]}"}
                  for p in (t0, t1)]
        rendered.append(chips.render_pair(scenes, footprint, margin=0.0))
    rows = queue.listing(db, queue.Filters(), "score", limit=count)
    for number, detection in enumerate(rows):
        before, after = rendered[number % len(rendered)]
        chip_cache.cache_for(db).store(detection, "sentinel-2", before, after)
    return len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    args = parser.parse_args()
    if not args.fixture.exists() or not PAIRS.exists():
        print(f"error: {args.fixture} or {PAIRS} not found", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="review-browser-bench-"))
    env = {**os.environ, "REVIEW_DB": str(folder / "review.db"), "REVIEW_DATA_DIR": str(folder),
           "REVIEW_CHIP_SOURCES": "sentinel-2", "REVIEW_STAC_URL": "http://127.0.0.1:9/",
           "REVIEW_WAYBACK_CONFIG_URL": "http://127.0.0.1:9/", "PYTHONPATH": str(REPO)}
    os.environ.update(env)

    from playwright.sync_api import expect, sync_playwright

    from review.detection.importers import import_file
    from review.store import connect

    db = connect(env["REVIEW_DB"])
    report = import_file(db, args.fixture)
    started = time.perf_counter()
    prepared = prepare_chips(db, args.presses + 30)
    prepare_seconds = time.perf_counter() - started
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    samples = []
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
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
                       else route.abort())
            page.set_default_timeout(60_000)
            page.goto(url + "/Review")
            page.get_by_label("Your name (recorded with every verdict)").fill("bench")
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Detection #")).to_be_visible()
            expect(page.locator('[data-testid="stMain"] img')).to_have_count(2)
            page.get_by_text("False positive, with its reason").click()      # focus off the text box
            for _ in range(3):                                                 # warm-up presses
                page.evaluate(WATCH, page.evaluate(STATE))
                page.keyboard.press("v")
                page.wait_for_function("window.__t1 !== undefined")
            for _ in range(args.presses):
                page.evaluate(WATCH, page.evaluate(STATE))
                page.keyboard.press("v")
                page.wait_for_function("window.__t1 !== undefined")
                samples.append(page.evaluate("window.__t1 - window.__t0"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    recorded = connect(env["REVIEW_DB"])["verdicts"].count
    assert recorded == args.presses + 3, f"{recorded} verdicts for {args.presses + 3} presses"
    samples.sort()
    avx = "avx512f" if "avx512f" in Path("/proc/cpuinfo").read_text() else "no avx512f"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {avx}, Python {platform.python_version()}")
    print(f"{report.features:,} detections from {args.fixture.name}; chips prepared for "
          f"{prepared} of them in {prepare_seconds:.1f} s")
    print(f"key press -> next detection with header and both chips loaded, {args.presses} presses "
          f"(Chromium, streamlit run):")
    print(f"  median {statistics.median(samples):.0f} ms, p90 {samples[int(0.9 * len(samples))]:.0f} ms, "
          f"max {samples[-1]:.0f} ms  (target: median under 300 ms, p90 under 600 ms)")
    print(f"  {recorded} verdicts recorded, one per press")
    return 0


if __name__ == "__main__":
    sys.exit(main())
