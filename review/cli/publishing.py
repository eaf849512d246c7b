"""Commands of the publishing wing: export, training-samples, evidence, serve and report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import settings
from ..errors import ReviewError
from .common import Command, add_db, open_db, os_user, region_area, status


def add_export(sub) -> argparse.ArgumentParser:
    export = sub.add_parser("export", help="export detections with their verdicts "
                                           "(.geojson, .gpkg, .csv)")
    export.add_argument("out", type=Path)
    export.add_argument("--status", default="verified",
                        help="verified (default; with second opinions on: confirmed) | false_positive | "
                             "unsure | pending | needs_second_opinion | disputed | all")
    export.add_argument("--source", action="append", default=[])
    export.add_argument("--period-from")
    export.add_argument("--period-to")
    export.add_argument("--region", type=Path, help="only detections in these polygons")
    export.add_argument("--layer", choices=["detections", "sites"], default="detections",
                        help="detections (default), or sites: dissolved footprints with their "
                             "history per period; --status is then the site's status")
    export.add_argument("--site", type=int, help="only this site (its detections, or the site)")
    export.add_argument("--context", metavar="NAME[=VALUE]",
                        help="only detections overlapping this context layer (`context add`), "
                             "or only its polygons with this value, e.g. \"Indigenous territories=Yanomami\"")
    export.add_argument("--leave-out-unseen", action="store_true",
                        help="leave out verified detections whose verdicts saw no imagery")
    add_db(export)
    return export


def add_verify_export(sub) -> argparse.ArgumentParser:
    check = sub.add_parser("verify-export", help="check a GeoJSON export on its own: the signed "
                           "checkpoint, every verdict's inclusion proof and fields")
    check.add_argument("file", type=Path)
    check.add_argument("--key", help="the publisher's verifier key NAME+HEX8+BASE64 (default: the "
                                     "key the file names, which proves only that it is whole)")
    return check


def cmd_verify_export(args: argparse.Namespace) -> int:
    from ..publishing.export_check import check_export

    result = check_export(args.file, args.key)
    print(result.summary() + ("" if args.key else "; give --key to check it is the publisher's"))
    return 0


def add_training_samples(sub) -> argparse.ArgumentParser:
    samples = sub.add_parser("training-samples", help="reviewed detections as labelled points "
                                                      "(earthrise sampling-location schema)")
    samples.add_argument("out", type=Path)
    samples.add_argument("--source", action="append", default=[])
    add_db(samples)
    return samples


def add_evidence(sub) -> argparse.ArgumentParser:
    evidence = sub.add_parser("evidence", help="before/after PNG of one detection, with caption")
    evidence.add_argument("id", type=int)
    evidence.add_argument("out", type=Path)
    add_db(evidence)
    return evidence


def add_serve(sub) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help="live read-only OGC API - Features service (pygeoapi) "
                                         "of the detections, for QGIS and other GIS")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: "
                                                            "this computer only)")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--url", help="address clients use, for links in responses "
                                     "(default http://HOST:PORT; set it behind a proxy or with --host 0.0.0.0)")
    serve.add_argument("--publish-reviewers", action="store_true",
                       help="also publish the last reviewer's name and note")
    add_db(serve)
    return serve


def add_report(sub) -> argparse.ArgumentParser:
    report = sub.add_parser("report", help="field reports: text and photos from the ground")
    report.add_argument("action", choices=["add", "list"])
    where = report.add_mutually_exclusive_group()
    where.add_argument("--site", type=int, help="the site it is about (list: reports on the site, "
                                                "its detections and sites merged into it)")
    where.add_argument("--detection", type=int, help="the detection it is about")
    report.add_argument("--lon", type=float, help="where it was seen (with --lat); attached to the "
                                                  "nearest detection within 1 km")
    report.add_argument("--lat", type=float)
    report.add_argument("--text", help="what was seen")
    report.add_argument("--photo", action="append", default=[], type=Path,
                        help="JPEG, PNG or HEIC photo (repeatable); its GPS position and time are read")
    report.add_argument("--reporter", help="who reports (default: this computer's user name)")
    report.add_argument("--seen", help="date seen, YYYY-MM-DD")
    report.add_argument("--leads", action="store_true", help="list: only reports attached to nothing")
    add_db(report)
    return report


def cmd_export(args: argparse.Namespace) -> int:
    from ..analysis.context import parse_filter
    from ..judging.queue import Filters
    from ..publishing.export import write

    layer, value = parse_filter(args.context) if args.context else (None, None)
    filters = Filters(status=status(args.status), sources=args.source,
                      period_from=args.period_from, period_to=args.period_to,
                      area=region_area(args.region), site_id=args.site,
                      context=layer, context_value=value)
    if args.layer == "sites":
        from ..publishing.export import export_sites

        count = export_sites(open_db(args), args.out, filters)
        print(f"{count} sites written to {args.out}")
        return 0
    count, unseen = write(open_db(args), args.out, filters, by=os_user(),
                          leave_out_unseen=args.leave_out_unseen)
    print(f"{count} detections written to {args.out}")
    if unseen:
        print(f"note: {len(unseen)} verified detection{'s rest' if len(unseen) != 1 else ' rests'} on "
              f"verdicts given with no imagery on screen (#{', #'.join(map(str, unseen[:10]))}"
              f"{', ...' if len(unseen) > 10 else ''}); "
              + ("left out" if args.leave_out_unseen else "--leave-out-unseen leaves them out"),
              file=sys.stderr)
    return 0


def cmd_training_samples(args: argparse.Namespace) -> int:
    from ..judging.queue import Filters
    from ..publishing.export import training_samples

    count = training_samples(open_db(args), args.out, Filters(status=None, sources=args.source))
    print(f"{count} labelled points written to {args.out}")
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    from .. import files
    from ..publishing.export import evidence_png

    png = evidence_png(open_db(args), args.id)
    files.write_bytes(args.out, png, make_folder=False)   # a folder that is not there is an error
    print(f"evidence for detection {args.id} written to {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..publishing.serve import serve

    path = args.db or settings.db_path()
    open_db(args).close()          # create and migrate before serving it read-only

    def ready(url: str) -> None:
        print(f"serving {path} as OGC API - Features on {url} (Ctrl+C stops)", flush=True)

    try:
        serve(path, host=args.host, port=args.port, publish_reviewers=args.publish_reviewers,
              ready=ready, url=args.url)
    except KeyboardInterrupt:
        print("service stopped", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..publishing import reports

    db = open_db(args)
    if args.action == "list":
        if args.leads and (args.site is not None or args.detection is not None):
            raise ReviewError("--leads lists reports attached to nothing; leave out --site "
                              "and --detection")
        if args.site is not None:
            rows, moved = reports.site_listing(db, args.site)
            if moved:
                print(moved, file=sys.stderr)
        else:
            rows = reports.listing(db, leads_only=args.leads, detection_id=args.detection)
        for row in rows:
            print(json.dumps(row))
        return 0
    if args.text is None:
        raise ReviewError("report add needs --text")
    if (args.lon is None) != (args.lat is None):
        raise ReviewError("give both --lon and --lat, or neither")
    added = reports.add(db, text=args.text, reporter=args.reporter or os_user(),
                        detection_id=args.detection, site_id=args.site,
                        lon=args.lon, lat=args.lat, seen=args.seen, photos=args.photo, via="cli")
    print(json.dumps(added))
    return 0


COMMANDS = {"export": Command(add_export, cmd_export),
            "training-samples": Command(add_training_samples, cmd_training_samples),
            "evidence": Command(add_evidence, cmd_evidence), "serve": Command(add_serve, cmd_serve),
            "report": Command(add_report, cmd_report),
            "verify-export": Command(add_verify_export, cmd_verify_export)}
