"""Commands of context layers: `context add|list|remove|overlaps` (issue 27)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ReviewError
from .common import Command, add_db, open_db, os_user

OVERLAP_COLUMNS = ["detection_id", "site_id", "value", "overlap_ha"]
SITE_COLUMNS = ["site_id", "value", "overlap_ha"]
LIST_COLUMNS = ["name", "field", "features", "values", "detections_inside", "source_crs",
                "source_file", "added_at", "added_by"]


def add_context(sub) -> argparse.ArgumentParser:
    context = sub.add_parser(
        "context", help="context layers (territories, protected areas, concessions): add, "
                        "list, remove, and which detections and sites overlap them",
        description="add FILE --name NAME [--field F]: a polygon file in any CRS; list; remove "
                    "NAME; overlaps NAME [--site ID | --detection ID]: detection_id, site_id, "
                    "value and overlap_ha (hectares in EPSG:6933).")
    actions = context.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a polygon layer (GeoJSON, GeoPackage, shapefile; any CRS)")
    add.add_argument("file", type=Path)
    add.add_argument("--name", required=True, help='the layer\'s name, e.g. "Indigenous territories"')
    add.add_argument("--field", help="the field naming each polygon (default: name, nombre, nome... "
                                     "if there is one, else the feature's number)")
    add_db(add)
    listing = actions.add_parser("list", help="the layers, with how many detections overlap each")
    listing.add_argument("--format", choices=["csv", "json"], default="csv")
    add_db(listing)
    remove = actions.add_parser("remove", help="remove a layer and its overlaps")
    remove.add_argument("name")
    add_db(remove)
    overlaps = actions.add_parser("overlaps", help="detections overlapping a layer: detection_id, "
                                                   "site_id, value, overlap_ha")
    overlaps.add_argument("name", help="the layer's name")
    which = overlaps.add_mutually_exclusive_group()
    which.add_argument("--site", type=int, help="only this site's detections")
    which.add_argument("--detection", type=int, help="only this detection")
    overlaps.add_argument("--union", action="store_true",
                          help="with --site: one row per value for the site's footprints unioned "
                               "(ground seen in several periods counted once)")
    overlaps.add_argument("--format", choices=["csv", "json"], default="csv")
    overlaps.add_argument("--out", type=Path, help="write to this file instead of printing")
    add_db(overlaps)
    return context


def _render(rows: list[dict], columns: list[str], fmt: str) -> str:
    """Rows as CSV (with a header) or JSON lines; hectares to 4 decimals, empty site ids empty."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=columns)
    for column in ("detection_id", "site_id"):
        if column in table.columns:
            table[column] = table[column].astype("Int64")
    table = table.round({c: 4 for c in ("overlap_ha",) if c in table.columns})
    if fmt == "json":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n"
                       for record in json.loads(table.to_json(orient="records")))
    return table.to_csv(index=False)


def _emit(text: str, out: Path | None) -> None:
    from .. import files

    if out is None:
        print(text, end="")
        return
    files.write_text(out, text, make_folder=False)


def _check_out(out: Path | None) -> None:
    # Refused before any work: the answer would have nowhere to go.
    if out is not None and not out.parent.resolve().is_dir():
        raise ReviewError(f"cannot write {out}: the folder {out.parent} does not exist")


def cmd_context(args: argparse.Namespace) -> int:
    from ..analysis import context

    if args.action == "add":
        summary = context.add(open_db(args), args.file, args.name, field=args.field, by=os_user())
        print(context.summary_line(summary))
        return 0
    if args.action == "list":
        print(_render(context.listing(open_db(args)), LIST_COLUMNS, args.format), end="")
        return 0
    if args.action == "remove":
        removed = context.remove(open_db(args), args.name)
        print(f"context layer {removed['layer']!r} removed ({removed['features']:,} polygons)")
        return 0
    _check_out(args.out)
    if args.union and args.site is None:
        raise ReviewError("--union goes with --site: the site's footprints unioned")
    db = open_db(args)
    if args.union:
        context.check_filter(db, args.name)          # the layer must exist
        rows = [{"site_id": args.site, **row} for row in context.site_overlaps(db, args.site)
                if row["layer"] == args.name]
        _emit(_render(rows, SITE_COLUMNS, args.format), args.out)
    else:
        rows = context.overlaps(db, args.name, site_id=args.site, detection_id=args.detection)
        _emit(_render(rows, OVERLAP_COLUMNS, args.format), args.out)
    if args.out is not None:
        print(f"{len(rows)} overlaps written to {args.out}")
    return 0


COMMANDS = {"context": Command(add_context, cmd_context)}
