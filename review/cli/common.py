"""What the command modules share: argument types and options, the database, progress bars,
tables, and fetching a tile for the area options."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Callable, NamedTuple

from .. import settings
from ..errors import ReviewError

DB_HELP = "review database (default: REVIEW_DB or data/review.db)"


class Command(NamedTuple):
    """One subcommand: `add(subparsers)` adds its parser, `run(args)` handles it (exit status)."""

    add: Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


def add_db(parser: argparse.ArgumentParser) -> None:
    """The --db option of the commands that read or write the review database."""
    parser.add_argument("--db", type=Path, help=DB_HELP)


def period(text: str | None) -> tuple[str | None, str | None] | None:
    """--period START/END as (start, end), either may be empty; None when not given."""
    if not text:
        return None
    if "/" not in text:
        raise ReviewError(f"--period must look like START/END, e.g. 2023-01-01/2023-12-31 (got {text!r})")
    start, end = text.split("/", 1)
    return start or None, end or None


def fraction(text: str) -> float:
    """An argument type: a number from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


# argparse names a type in its message for a value that is not a number ("invalid _fraction
# value: 'abc'"); the name it has always had there is kept.
fraction.__name__ = "_fraction"


def area_options(parser: argparse.ArgumentParser) -> None:
    """The options naming an area, a period and the STAC API to fetch imagery from."""
    parser.add_argument("--bbox", help="area W,S,E,N in degrees")
    parser.add_argument("--start", help="period start YYYY-MM-DD")
    parser.add_argument("--end", help="period end YYYY-MM-DD")
    parser.add_argument("--stac-url", help="STAC API (default: REVIEW_STAC_URL or Earth Search)")
    parser.add_argument("--collection", help="collection (default: REVIEW_STAC_COLLECTION or sentinel-2-l2a)")
    parser.add_argument("--cloud-limit", type=float, default=40.0, help="max scene cloud cover, percent")


def open_db(args: argparse.Namespace):
    """The review database of --db (else REVIEW_DB or data/review.db), created and migrated."""
    from ..store import connect

    return connect(args.db or settings.db_path())


def status(text: str) -> str | None:
    """--status as a detection status, None for all."""
    from ..judging.verdicts import STATUSES

    if text != "all" and text not in STATUSES:
        raise ReviewError(f"--status {text!r}: use one of {', '.join(STATUSES)} or all")
    return None if text == "all" else text


def os_user() -> str:
    """This computer's user name, recorded when no reviewer or reporter is given."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise ReviewError("this computer has no user name to record; give --reviewer") from exc


def region_area(path: Path | None):
    """The polygons of a boundary file (--region) as one geometry; None without a file."""
    from ..analysis.trends import area_of_interest

    if path is None:
        return None
    return area_of_interest(path)


@contextlib.contextmanager
def progress_bar(label: str, quiet: bool = False, unit: str = "item", show: str | None = "description",
                 leave: bool = False, lazy: bool = False):
    """A progress callback drawing a tqdm bar on stderr (none with `quiet` or off a terminal),
    closed when the block ends; each step's text becomes the bar's description, its postfix
    (`show="postfix"`) or nothing (`show=None`). A `lazy` bar appears at the first call."""
    from tqdm import tqdm

    bars = []

    def start() -> None:
        bars.append(tqdm(desc=label, unit=unit, file=sys.stderr, leave=leave,
                         disable=True if quiet else None))

    def progress(done: int, total: int | None, what: str = "") -> None:
        if not bars:
            start()
        bar = bars[0]
        bar.total = total
        if show == "postfix":
            bar.set_postfix_str(what, refresh=False)
        elif show == "description" and what:
            bar.set_description_str(what, refresh=False)
        bar.update(done - bar.n)

    if not lazy:
        start()
    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()


def print_table(table, fmt: str) -> int:
    """Rows as CSV or JSON lines; lon/lat to 6 decimals, other numbers (hectares) to 4."""
    table = table.round({c: 6 if c in ("lon", "lat") else 4 for c in table.columns})
    if fmt == "json":
        for record in json.loads(table.to_json(orient="records")):
            print(json.dumps(record))
    else:
        sys.stdout.write(table.to_csv(index=False))
    return 0


def stac_source(args: argparse.Namespace):
    """The STAC source of the area options (--stac-url, --collection, --cloud-limit)."""
    from ..detection.fetch import Source

    source = Source(cloud_limit=args.cloud_limit)
    if args.stac_url:
        source.url = args.stac_url
    if args.collection:
        source.collection = args.collection
    return source


def fetch_tile(args: argparse.Namespace, bands: tuple[str, ...]) -> Path:
    """Fetch the composite the area options name (to --out for `fetch`, else the tile cache)."""
    from ..detection.fetch import FetchError, Request, composite, parse_bbox

    if not (args.bbox and args.start and args.end):
        raise FetchError("give a TILE, or --bbox W,S,E,N with --start and --end to fetch one")
    source = stac_source(args)
    try:
        bbox = parse_bbox(args.bbox)
    except FetchError as exc:
        raise FetchError(f"--bbox: {exc}") from exc
    request = Request(bbox=bbox, start=args.start, end=args.end, bands=bands)
    with progress_bar("fetching", args.quiet, unit="window", show="postfix") as progress:
        return composite(source, request, out=getattr(args, "out", None) if args.command == "fetch" else None,
                         progress=progress)
