"""Commands of the review-imagery wing: scenes and prepare-imagery."""
from __future__ import annotations

import argparse
import json

from ..errors import ReviewError
from .common import Command, add_db, open_db, period, progress_bar


def add_scenes(sub) -> argparse.ArgumentParser:
    scenes = sub.add_parser("scenes", help="imagery you have, registered as stored scenes for "
                                           "review, training and rescoring")
    scenes.add_argument("action", choices=["add", "list", "remove"])
    scenes.add_argument("target", nargs="?", help="add: the GeoTIFF; remove: the scene id")
    scenes.add_argument("--period", help="add: the imagery's period START/END (ISO dates); "
                                         "overrides the file's tags")
    scenes.add_argument("--bands", help="add: band names in file order, '-' to ignore one")
    scenes.add_argument("--format", choices=["table", "json"], default="table")
    add_db(scenes)
    return scenes


def add_prepare_imagery(sub) -> argparse.ArgumentParser:
    prepare = sub.add_parser("prepare-imagery", help="prepare before/after chips for the review "
                             "queue ahead of reviewers (resumable; safe beside the dashboard)")
    prepare.add_argument("--limit", type=int, help="at most this many detections (default: all pending)")
    prepare.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    prepare.add_argument("--period", help="only detections of this period: START/END, either may "
                         "be left out (YYYY-MM-DD)")
    prepare.add_argument("--order", default="score", help="score | threshold | newest")
    prepare.add_argument("--retry", action="store_true", help="retry failed sources now, not in an hour")
    prepare.add_argument("--assessment", metavar="NAME",
                         help="the points of this area assessment still to label, in review order, "
                              "instead of detections")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    add_db(prepare)
    return prepare


def cmd_scenes(args: argparse.Namespace) -> int:
    from ..review_imagery import scenes

    if args.action == "add":
        if not args.target:
            raise ReviewError("scenes add needs the GeoTIFF to add")
        row = scenes.add(open_db(args), args.target, period=period(args.period), bands=args.bands)
        if args.format == "json":
            print(json.dumps(row))
        else:
            print(f"scene {row['id']}: {row['name']}, {row['period_start']} to {row['period_end']}, "
                  f"bands {row['bands']}" + ("" if row["added"] else " (already stored)")
                  + (f"; {row['note']}" if row["note"] else ""))
        return 0
    if args.action == "remove":
        try:
            scene_id = int(args.target or "")
        except ValueError:
            raise ReviewError("scenes remove needs the id of a scene (see scenes list)") from None
        removed = scenes.remove(open_db(args), scene_id)
        print(f"scene {removed['id']} ({removed['name']}) removed; its file is kept")
        return 0
    for row in scenes.listing(open_db(args)):
        if args.format == "json":
            print(json.dumps(row))
        else:
            print(f"{row['id']:5} {row['period_start']} to {row['period_end']}  {row['bands']:24} "
                  f"{row['path']}" + ("" if row["present"] else "  (file missing)"))
    return 0


def cmd_prepare_imagery(args: argparse.Namespace) -> int:
    from ..judging.queue import Filters
    from ..review_imagery.preparation import prepare_queue

    start, _, end = (args.period or "").partition("/")
    filters = Filters(sources=args.source, period_from=start or None, period_to=end or None)
    db = open_db(args)
    if args.assessment:
        return _prepare_points(db, args)
    with progress_bar("preparing imagery", args.quiet, unit="detection", show=None,
                      leave=True, lazy=True) as progress:
        done = prepare_queue(db, filters, order=args.order, limit=args.limit, retry=args.retry,
                             progress=progress)
    print(done.summary())
    return 0


def _prepare_points(db, args: argparse.Namespace) -> int:
    from ..analysis import assessment
    from ..judging import unit_labels
    from ..review_imagery.preparation import prepare_places, unit_place

    design = assessment.get(db, args.assessment)
    waiting = [unit_labels.unit(db, u["unit_id"]) for u in assessment.units(db, design)
               if u["status"] in ("pending", "needs_second_opinion")]
    total = min(len(waiting), args.limit) if args.limit is not None else len(waiting)
    with progress_bar("preparing imagery", args.quiet, unit="point", show=None, leave=True,
                      lazy=True) as progress:
        done = prepare_places(db, (unit_place(u) for u in waiting), total, args.retry, progress)
    print(done.summary().replace("detections", "points"))
    return 0


COMMANDS = {"scenes": Command(add_scenes, cmd_scenes),
            "prepare-imagery": Command(add_prepare_imagery, cmd_prepare_imagery)}
