"""Benchmark: each page's server time on a large database (AppTest): the first run of a
fresh session, then a rerun of the same session (what every click costs).

The database is any review database, e.g. one `bench/map_browser.py` built (its cache holds
200,000 and 1,000,000 squares). It is copied first, so the migrations a newer schema needs
run on the copy, in the first page's first run, and the cache is left as it was.

    .venv/bin/python -m bench.pages_at_scale --db /tmp/mapbench/db-1000000/review.db \
        [--pages 2_Review.py 4_Trends.py app.py ...] [--reruns 2]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = ["app.py", "2_Review.py", "3_Map.py", "4_Trends.py", "5_Export.py", "6_Sites.py",
         "6_Agreement.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--pages", nargs="+", default=PAGES)
    parser.add_argument("--reruns", type=int, default=2)
    args = parser.parse_args()
    if not args.db.is_file():
        print(f"error: no database at {args.db}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "review.db"
        shutil.copy(args.db, copy)
        os.environ["REVIEW_DB"] = str(copy)
        os.environ["REVIEW_DATA_DIR"] = tmp
        os.environ.setdefault("REVIEW_CHIP_SOURCES", "scenes")     # nothing fetched
        from streamlit.testing.v1 import AppTest

        from review.store import connect

        started = time.perf_counter()
        connect(copy)                                            # migrations, once
        print(f"migrations: {time.perf_counter() - started:.1f} s")
        count = connect(copy).execute("select count(*) from detections").fetchone()[0]
        print(f"{count:,} detections; machine: {platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}")
        for page in args.pages:
            path = REPO / page if page == "app.py" else REPO / "app_pages" / page
            at = AppTest.from_file(str(path), default_timeout=900)
            at.session_state["reviewer"] = at.session_state["reviewer_name"] = "bench"
            started = time.perf_counter()
            at.run()
            first = time.perf_counter() - started
            again = []
            for _ in range(args.reruns):
                started = time.perf_counter()
                at.run()
                again.append(time.perf_counter() - started)
            trouble = [str(e.value)[:80] for e in at.exception]
            print(f"{page}: first run {first:.2f} s, reruns "
                  f"{', '.join(f'{s:.2f}' for s in again)} s" + (f"; exception: {trouble}" if trouble else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
