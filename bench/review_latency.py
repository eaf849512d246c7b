"""Benchmark: server time from a verdict click to the next detection shown (Review page).

Imports a real 5,000-polygon earthrise website layer into a fresh database, then drives
the Review page with Streamlit's AppTest: each sample is one click on "Verified" and the
full script run that records it and renders the next detection.

    .venv/bin/python -m bench.review_latency [--clicks 200] [--fixture PATH]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DEFAULT_FIXTURE = (REPO.parent / "shared" / "fixtures" / "detections" / "earthrise" /
                   "mining_202400_simplified.geojson")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    args = parser.parse_args()
    if not args.fixture.exists():
        print(f"error: {args.fixture} not found", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="review-bench-"))
    os.environ["REVIEW_DB"] = str(folder / "review.db")
    os.environ["REVIEW_DATA_DIR"] = str(folder)
    os.environ["REVIEW_BASEMAP_URL"] = "http://127.0.0.1:9/{z}/{x}/{y}.png"

    from streamlit.testing.v1 import AppTest

    from review.detection.importers import import_file
    from review.store import connect

    db = connect(os.environ["REVIEW_DB"])
    started = time.perf_counter()
    report = import_file(db, args.fixture)
    import_seconds = time.perf_counter() - started

    at = AppTest.from_file(str(REPO / "app_pages" / "2_Review.py"), default_timeout=120).run()
    at.text_input(key="reviewer").input("bench").run()
    samples, shown = [], set()
    for _ in range(args.clicks):
        before = at.subheader[0].value
        tick = time.perf_counter()
        at.button(key="verdict_verified").click().run()
        samples.append((time.perf_counter() - tick) * 1000)
        after = at.subheader[0].value
        assert after != before and after not in shown, "the next detection was not shown"
        shown.add(after)
    assert connect(os.environ["REVIEW_DB"])["verdicts"].count == args.clicks
    samples.sort()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"imported {report.features:,} detections from {args.fixture.name} in {import_seconds:.2f} s")
    print(f"verdict click -> next detection, {args.clicks} clicks (AppTest, server time):")
    print(f"  median {statistics.median(samples):.1f} ms, p90 {samples[int(0.9 * len(samples))]:.1f} ms, "
          f"max {samples[-1]:.1f} ms  (target: median under 150 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
