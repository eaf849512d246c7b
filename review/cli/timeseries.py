"""Commands of a place's spectral time series: `timeseries` (issue 27)."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import ReviewError
from .common import Command, add_db, open_db, progress_bar


def add_timeseries(sub) -> argparse.ArgumentParser:
    series = sub.add_parser(
        "timeseries", help="a site's (or a detection's) Sentinel-2 time series: median NDVI, "
                           "bare-soil index and MNDWI of its footprint and of a ring around it, "
                           "per acquisition, and the site's onset",
        description="Fetches every Sentinel-2 L2A acquisition over the footprint in the window "
                    "(default: from two years before the first detection period to the end of "
                    "the last), clouds judged over the footprint from the scene classification; "
                    "stored, so the second time nothing is fetched. Prints one row per "
                    "acquisition (clear: at least half the footprint clear); the summary and the "
                    "onset go to standard error.")
    series.add_argument("site", nargs="?", type=int, metavar="SITE_ID", help="the site's id")
    series.add_argument("--detection", type=int, help="a detection's id, instead of a site")
    series.add_argument("--start", help="window start YYYY-MM-DD")
    series.add_argument("--end", help="window end YYYY-MM-DD")
    series.add_argument("--ring", default="100,500", metavar="INNER,OUTER",
                        help="the ring compared with the footprint, metres outside it (default 100,500)")
    series.add_argument("--format", choices=["csv", "json"], default="csv",
                        help="csv: a row per acquisition; json: one object with the onset")
    series.add_argument("--stored", action="store_true",
                        help="print what is stored and fetch nothing (offline)")
    series.add_argument("--stac-url", help="STAC API (default: REVIEW_STAC_URL or Earth Search)")
    series.add_argument("--collection", help="an L2A collection (default: REVIEW_STAC_COLLECTION "
                                             "or sentinel-2-l2a)")
    series.add_argument("--quiet", action="store_true", help="no progress bar")
    add_db(series)
    return series


def _ring(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2:
        raise ReviewError(f"--ring must be two distances in metres, INNER,OUTER, e.g. 100,500 (got {text!r})")
    return values  # type: ignore[return-value]


def cmd_timeseries(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..analysis import onset, spectral_series
    from ..detection.fetch import Source

    if (args.site is None) == (args.detection is None):
        raise ReviewError("give a SITE_ID or --detection ID (one of them)")
    ring = spectral_series.check_ring(_ring(args.ring))
    db = open_db(args)
    place = (spectral_series.site_place(args.site) if args.site is not None
             else spectral_series.detection_place(args.detection))
    spot = spectral_series.place_of(db, place)
    start, end = spectral_series.window(spot, args.start, args.end)
    if args.stored:
        lines = []
    else:
        source = Source()
        if args.stac_url:
            source.url = args.stac_url
        if args.collection:
            source.collection = args.collection
        with progress_bar("scenes", args.quiet, unit="scene", show=None, lazy=True) as progress:
            summary = spectral_series.fetch(db, place, start, end, source=source, progress=progress,
                                            ring=ring)
        lines = summary.lines()
    rows = spectral_series.stored(db, place, start, end)
    if not rows:
        raise ReviewError(f"no time series of {spot.label} is stored between {start} and {end}; "
                          "run the command without --stored to fetch it")
    found = onset.for_site(db, spot.site_id) if spot.site_id is not None else None
    for line in lines + ([found.words] if found else []):
        print(line, file=sys.stderr)
    columns = ["acquired", "clear", *[c for c in spectral_series.COLUMNS if c != "acquired"]]
    table = pd.DataFrame(rows, columns=columns)
    if args.format == "json":
        print(json.dumps({
            "place": place, "start": start, "end": end,
            "onset": None if found is None else {
                "status": found.status, "month": found.month, "last_before": found.last_before,
                "first_after": found.first_after, "words": found.words},
            "observations": json.loads(table.to_json(orient="records", double_precision=6))}))
    else:
        sys.stdout.write(table.to_csv(index=False, float_format="%.6g"))
    return 0


COMMANDS = {"timeseries": Command(add_timeseries, cmd_timeseries)}
