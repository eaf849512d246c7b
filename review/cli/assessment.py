"""Commands of the area assessment: `assess design|plan|units|label|estimate`."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..errors import ReviewError
from .common import Command, add_db, open_db, os_user
from .judging import account

ACTIONS = ("design", "plan", "units", "label", "estimate")


def add_assess(sub) -> argparse.ArgumentParser:
    assess = sub.add_parser(
        "assess", help="estimate mined area with its interval from a stratified random sample of "
                       "labelled points over a region (Olofsson et al. 2014): design, plan, units, "
                       "label, estimate",
        description="design NAME --region AOI --period P: strata and sample units; plan: sample "
                    "sizes for a target standard error; units NAME: the units and their labels; "
                    "label NAME UNIT mining|not_mining|unsure (or --from FILE.csv); estimate NAME "
                    "(or --counts FILE.csv, an error matrix).")
    assess.add_argument("action", choices=ACTIONS)
    assess.add_argument("name", nargs="?", help="the design's name")
    assess.add_argument("unit", nargs="?", type=int, help="label: the unit's id")
    assess.add_argument("label", nargs="?", help="label: mining, not_mining, unsure (can't tell), "
                                                 "or undo (takes back the latest label)")
    assess.add_argument("--region", type=Path, help="design/plan: the region (polygons, any CRS)")
    assess.add_argument("--period", help="design/plan: YYYY or START/END")
    assess.add_argument("--source", action="append", default=[],
                        help="design/plan: only detections of this source (repeatable)")
    assess.add_argument("--strata", help="design/plan: detected,near:METRES,rest (the default, "
                                         "near at 1,000 m); near may be left out")
    sizes = assess.add_mutually_exclusive_group()
    sizes.add_argument("--n", help="design: units per stratum, N1,N2,N3 in the strata's order")
    sizes.add_argument("--target-se", type=float, metavar="HA",
                       help="design/plan: size the sample for this standard error of the mined area")
    assess.add_argument("--expected-accuracy", metavar="NAME:UA,...",
                        help="design/plan with --target-se: expected user's accuracy per stratum, "
                             "e.g. detected:0.9,near:0.98,rest:0.999 (mining is 1 minus it "
                             "outside the detections)")
    assess.add_argument("--seed", type=int, default=1, help="design: seed of the draw")
    assess.add_argument("--format", choices=["table", "json", "csv", "geojson"],
                        help="units: csv (default) or geojson; estimate: table (default) or json")
    assess.add_argument("--counts", type=Path, help="estimate: an error matrix CSV (strata rows, "
                                                    "area_ha, one column per reference class)")
    assess.add_argument("--from", dest="from_file", type=Path,
                        help="label: unit_id,label[,reviewer,note] rows made elsewhere")
    assess.add_argument("--reviewer", help="label: who labelled (default: this computer's user)")
    assess.add_argument("--password-stdin", action="store_true",
                        help="with accounts: read the password from standard input")
    assess.add_argument("--note", help="label: a note kept with the label")
    add_db(assess)
    return assess


def cmd_assess(args: argparse.Namespace) -> int:
    if args.action == "estimate" and args.counts:
        return _estimate_counts(args)
    if args.action in ("design", "plan"):
        return _design(args)
    if not args.name:
        raise ReviewError(f"assess {args.action} needs the design's name")
    return {"units": _units, "label": _label, "estimate": _estimate}[args.action](args)


def _expected(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    found = {}
    for part in text.split(","):
        name, _, value = part.partition(":")
        try:
            found[name.strip()] = float(value)
        except ValueError:
            raise ReviewError(f"--expected-accuracy {part!r}: give NAME:ACCURACY, e.g. detected:0.9") from None
    return found


def _design(args: argparse.Namespace) -> int:
    from ..analysis import assessment
    from ..analysis.trends import area_of_interest

    if args.action == "design" and not args.name:
        raise ReviewError("assess design needs a name for the design")
    if not args.region or not args.period:
        raise ReviewError(f"assess {args.action} needs --region and --period")
    if args.action == "plan" and args.target_se is None:
        raise ReviewError("assess plan needs --target-se HA")
    if args.target_se is not None and args.target_se <= 0:
        raise ReviewError("--target-se must be more than 0 hectares")
    period = assessment.parse_period(args.period)
    names, near_m = assessment.parse_strata(args.strata)
    sizes = assessment.parse_sizes(args.n, len(names)) if args.n else None
    region = area_of_interest(args.region)
    db = open_db(args)
    strata = assessment.make_strata(db, region, period, names, near_m, args.source or None)
    if args.target_se is not None:
        plan = assessment.plan_for(strata, args.target_se, _expected(args.expected_accuracy))
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.action == "plan":
            print(plan.summary())
            return 0
        sizes, _ = assessment.sizes_for(strata, [plan.n[s.name] for s in strata.strata])
        how = plan.summary()
    else:
        sizes, how = assessment.sizes_for(strata, sizes)
    signed_in = account(db, args, "assess")           # with accounts, an editor signs in
    design = assessment.create(db, args.name, strata, sizes, how, seed=args.seed,
                               by=signed_in.name if signed_in else (args.reviewer or os_user()))
    print(design.summary())
    return 0


def _units(args: argparse.Namespace) -> int:
    from ..analysis import assessment

    db = open_db(args)
    design = assessment.get(db, args.name)
    rows = assessment.units(db, design)
    if (args.format or "csv") == "geojson":
        print(json.dumps({"type": "FeatureCollection", "name": design.name, "features": [
            {"type": "Feature", "id": r["unit_id"],
             "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
             "properties": {k: r[k] for k in assessment.UNIT_COLUMNS if k not in ("lon", "lat")}}
            for r in rows]}))
        return 0
    if args.format not in (None, "csv"):
        raise ReviewError("assess units writes csv or geojson")
    writer = csv.DictWriter(sys.stdout, fieldnames=assessment.UNIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in assessment.UNIT_COLUMNS})
    return 0


def _label(args: argparse.Namespace) -> int:
    from ..analysis import assessment
    from ..judging import unit_labels

    db = open_db(args)
    design = assessment.get(db, args.name)
    signed_in = account(db, args, "verdict")
    reviewer = signed_in.name if signed_in else (args.reviewer or os_user())
    if args.from_file:
        if args.unit is not None:
            raise ReviewError("give either a unit and its label, or --from FILE.csv")
        rows = unit_labels.read_label_file(args.from_file, design.id, reviewer)
        if signed_in and any(r["reviewer"] != reviewer for r in rows):
            raise ReviewError("with accounts, every label in the file is recorded as the signed-in "
                              "reviewer's; remove the reviewer column or sign in as them")
        count = unit_labels.record_many(db, design.id, rows, via="import")
        print(json.dumps({"design": design.name, "recorded": count}))
        return 0
    if args.unit is None or not args.label:
        raise ReviewError("assess label needs NAME UNIT mining|not_mining|unsure (or --from FILE.csv)")
    if args.label == "undo":
        unit_labels.unit(db, args.unit, design.id)
        unit_labels.undo(db, args.unit, reviewer, via="cli", own_only=signed_in is not None)
    else:
        unit_labels.record(db, args.unit, reviewer, args.label, note=args.note, via="cli",
                           design_id=design.id)
    print(json.dumps({"unit_id": args.unit, "status": unit_labels.unit(db, args.unit)["status"]}))
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from ..analysis import area_results, assessment

    db = open_db(args)
    result = area_results.estimate(db, assessment.get(db, args.name))
    if args.format == "json":
        print(json.dumps(result.to_json()))
    else:
        print(result.table())
    return 0


def _estimate_counts(args: argparse.Namespace) -> int:
    from ..analysis import area_estimate

    result = area_estimate.error_matrix_estimate(area_estimate.read_counts(args.counts))
    figures = result if isinstance(result, dict) else result.to_json()
    if args.format == "json":
        print(json.dumps(figures))
        return 0
    def cell(value, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    print("class,area_ha,se_ha,ci95_ha,users_accuracy,users_accuracy_se,producers_accuracy,"
          "producers_accuracy_se")
    for name, c in figures["classes"].items():
        ua, pa = c["users_accuracy"] or {}, c["producers_accuracy"] or {}
        print(",".join([name, cell(c["area_ha"], 1), cell(c["se_ha"], 1), cell(c["ci95_ha"], 1),
                        cell(ua.get("value"), 4), cell(ua.get("se"), 4), cell(pa.get("value"), 4),
                        cell(pa.get("se"), 4)]))
    overall = figures["overall_accuracy"] or {}
    print(f"overall,,,,{cell(overall.get('value'), 4)},{cell(overall.get('se'), 4)},,")
    return 0


COMMANDS = {"assess": Command(add_assess, cmd_assess)}
