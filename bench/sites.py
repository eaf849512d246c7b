"""Benchmark: building sites through time from all seven earthrise website layers.

Imports mining_2018..2024 00_simplified.geojson (about 39,000 polygons) into a fresh
database, then times `review.analysis.sites.build` (default 100 m, by year): a first build, and a
rebuild (ids kept) after the 2024 layer is added to the other six.

    .venv/bin/python -m bench.sites [--repeat 3] [--folder PATH]
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
DEFAULT_FOLDER = REPO.parent / "shared" / "fixtures" / "detections" / "earthrise"
YEARS = range(2018, 2025)


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return "avx512f" if "avx512f" in text else "no avx512f"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="full builds to time")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args()
    files = [args.folder / f"mining_{year}00_simplified.geojson" for year in YEARS]
    missing = [f for f in files if not f.exists()]
    if missing:
        print(f"error: {missing[0]} not found", file=sys.stderr)
        return 2

    import shapely

    from review.analysis import sites
    from review.detection.importers import import_file
    from review.store import connect

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu_flags()}, "
          f"Python {platform.python_version()}, shapely {shapely.__version__} "
          f"(GEOS {shapely.geos_version_string})")
    folder = Path(tempfile.mkdtemp(prefix="review-bench-sites-"))
    db = connect(folder / "review.db")
    started = time.perf_counter()
    for path in files[:-1]:
        import_file(db, path)
    six = sites.build(db)
    print(f"2018-2023 (six layers): {six.detections:,} detections -> {six.sites:,} sites "
          f"in {six.seconds:.2f} s")
    import_file(db, files[-1])
    rebuild = sites.build(db)
    print(f"+ 2024, rebuild: {rebuild.detections:,} detections -> {rebuild.sites:,} sites, "
          f"{rebuild.new_sites:,} new ids, {rebuild.merged:,} merged, in {rebuild.seconds:.2f} s")
    times = []
    for _ in range(args.repeat):
        report = sites.build(db)
        times.append(report.seconds)
    print(f"all seven layers, build x{args.repeat}: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s  (target: under 60 s)")
    print(report.summary())
    table = sites.site_table(db)
    counts = table.groupby(["period", "state"]).size().unstack(fill_value=0)
    print(counts.to_string())
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total wall time including imports: {time.perf_counter() - started:.1f} s; "
          f"peak memory {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
