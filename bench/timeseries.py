"""Benchmark: a site's three-year Sentinel-2 time series, against a loopback STAC service and
from the cache (issue 27).

Builds 219 dated L2A scenes (one every 5 days, 2020-01-01 to 2022-12-31: Sentinel-2A and 2B's
revisit) from the real fixture pairs (tests.stac_server.forest_to_bare_scenes: a 1.44 km
mosaic of real forest in which a 1 ha patch turns bare in July 2021), under a seeded sky
(about half the scenes cloudy over the site, some cloudy elsewhere only), served by a
STAC API on 127.0.0.1 in pages of 100, as Earth Search pages. Then times, in a fresh
database and tile cache each time:

- cold: `spectral_series.fetch` of the site's default window (search, every scene's SCL
  window, the five band windows of each scene clear over the site, stored);
- the same with a delay added to every asset request (`--latency`, default 50 ms: a cloud
  bucket's round trip), with 8 scenes read at once and with 1;
- from the cache: the same call again (the window is stored: no request), and the whole
  `python -m review timeseries SITE` command in a fresh process;
- what the site view pays to open the chart: stored rows, the onset and the Plotly figure.

    .venv/bin/python -m bench.timeseries [--repeat 3] [--latency 0.05] [--no-serial]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PAIRS = REPO.parent / "shared" / "fixtures" / "imagery" / "amazon_change_pairs_val"


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{model}, {'avx512f' if 'avx512f' in text else 'no avx512f'}"


def _sky(dates: list[str], seed: int = 27) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["clear", "site", "elsewhere", "part", "shadow", "cirrus"], size=len(dates),
                       p=[0.40, 0.38, 0.12, 0.04, 0.03, 0.03])
    return dict(zip(dates, kinds.tolist()))


def _fresh(folder: Path, info: dict):
    from review.store import connect
    from tests import stac_server

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ["REVIEW_TILE_CACHE"] = str(folder / "tiles")
    db = connect(folder / "review.db")
    return db, stac_server.site_over_patch(db, info)


def _cold(server, info, folder: Path, workers: int) -> tuple[float, object, object, int]:
    from review.analysis import spectral_series
    from review.detection.fetch import Source

    db, site = _fresh(folder, info)
    spectral_series.WORKERS = workers
    server.requests.clear()
    started = time.perf_counter()
    summary = spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url))
    return time.perf_counter() - started, summary, db, site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold fetches to time")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to each asset request")
    parser.add_argument("--no-serial", action="store_true", help="skip the one-scene-at-a-time run")
    args = parser.parse_args()
    if not PAIRS.is_dir():
        print(f"error: {PAIRS} not found", file=sys.stderr)
        return 2
    from review.analysis import onset, spectral_series
    from review.detection.fetch import Source
    from tests import stac_server

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu()}, no GPU, "
          f"Python {platform.python_version()}")
    work = Path(tempfile.mkdtemp(prefix="review-bench-series-"))
    dates = [str(d) for d in np.arange(np.datetime64("2020-01-01"), np.datetime64("2023-01-01"), 5)]
    built = time.perf_counter()
    items, info = stac_server.forest_to_bare_scenes(PAIRS, work / "files", dates, "2021-07-01", _sky(dates))
    print(f"{len(items)} scenes (one every 5 days, 2020-2022) built in {time.perf_counter() - built:.1f} s")
    server = stac_server.StacServer(work / "files", items)
    server.page_size = 100
    try:
        runs = []
        for _ in range(args.repeat):
            seconds, summary, db, site = _cold(server, info, work / "run", spectral_series.WORKERS)
            runs.append(seconds)
        asked = len(server.requests)
        print(f"cold, no added latency, {spectral_series.WORKERS} at once: median "
              f"{statistics.median(runs):.2f} s ({', '.join(f'{s:.2f}' for s in runs)}); "
              f"{asked} HTTP requests")
        print("  " + "\n  ".join(summary.lines()))
        server.requests.clear()
        cached = []
        for _ in range(5):
            started = time.perf_counter()
            again = spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url))
            cached.append(time.perf_counter() - started)
        print(f"from the cache: median {statistics.median(cached) * 1000:.1f} ms over 5 calls, "
              f"{len(server.requests)} HTTP requests ({again.lines()[0]})")
        import subprocess

        command = [sys.executable, "-m", "review", "timeseries", str(site), "--stac-url", server.url,
                   "--quiet", "--db", str(work / "run" / "review.db")]
        shell = []
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
            shell.append(time.perf_counter() - started)
        print(f"from the cache, the whole command in a fresh process (`python -m review timeseries "
              f"{site}`, {len(done.stdout.splitlines()) - 1} rows printed): median "
              f"{statistics.median(shell):.2f} s, {len(server.requests)} HTTP requests")
        opened = []
        for _ in range(5):
            started = time.perf_counter()
            rows = spectral_series.stored(db, spectral_series.site_place(site))
            found = onset.for_site(db, site)
            periods, verdicts = spectral_series.marks(db, spectral_series.site_place(site))
            spectral_series.figure(rows, periods, verdicts, onset=found).to_json()
            opened.append(time.perf_counter() - started)
        print(f"opening the chart (stored rows, onset, marks, Plotly figure as JSON): median "
              f"{statistics.median(opened) * 1000:.1f} ms; {found.words}")
        server.asset_delay = args.latency
        for workers in (spectral_series.WORKERS,) + (() if args.no_serial else (1,)):
            seconds, summary, _, _ = _cold(server, info, work / "run", workers)
            print(f"cold, {args.latency * 1000:.0f} ms added to each asset request, {workers} at once: "
                  f"{seconds:.2f} s ({len(server.requests)} requests)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
