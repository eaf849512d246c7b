"""Commands of the analysis wing: trends, sites and sample."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ReviewError
from .common import Command, add_db, open_db, print_table


def add_trends(sub) -> argparse.ArgumentParser:
    trends = sub.add_parser("trends", help="detections and mined area per period, by status")
    trends.add_argument("--by", choices=["year", "quarter"], default="year")
    trends.add_argument("--region", type=Path, help="boundary GeoJSON/GeoPackage of regions (polygons)")
    trends.add_argument("--region-field", help="group by this field of the detections instead")
    trends.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    trends.add_argument("--context", metavar="NAME[=VALUE]",
                        help="only detections inside this context layer (or one value of it)")
    trends.add_argument("--format", choices=["csv", "json"], default="csv")
    trends.add_argument("--by-site", action="store_true",
                        help="per period: new sites, their area, growth of expanding sites and "
                             "cumulative mined area (run `sites build` first)")
    add_db(trends)
    return trends


def add_sample(sub) -> argparse.ArgumentParser:
    sample = sub.add_parser("sample", help="draw a random sample of a stratum to review, or "
                                           "estimate its verified area")
    sample.add_argument("--name", help="name of a new sample")
    sample.add_argument("--size", type=int, help="detections to draw")
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--source", action="append", default=[])
    sample.add_argument("--period-from")
    sample.add_argument("--period-to")
    sample.add_argument("--estimate", type=int, metavar="SAMPLE_ID",
                        help="print the verified-area estimate of this sample")
    add_db(sample)
    return sample


def add_sites(sub) -> argparse.ArgumentParser:
    sites = sub.add_parser("sites", help="detections grouped into sites through time: build "
                                         "them, list them per period, or their trends")
    sites.add_argument("action", choices=["build", "list", "trends"])
    sites.add_argument("--distance", type=float, default=100.0,
                       help="build: footprints this close (metres) belong to one site (default 100)")
    sites.add_argument("--growth", type=float, default=0.10,
                       help="build: area growth over the previous period seen that makes a site "
                            "expanding, as a fraction (default 0.10)")
    sites.add_argument("--by", choices=["year", "quarter"], default="year",
                       help="build: periods of a year (default) or a quarter")
    sites.add_argument("--state", choices=["new", "expanding", "stable", "not_seen"],
                       help="list: only site periods in this state")
    sites.add_argument("--period", help="list: only this period (e.g. 2024, 2024Q3)")
    sites.add_argument("--status", choices=["verified", "false_positive", "unsure", "pending"],
                       help="list: only sites with this status")
    sites.add_argument("--format", choices=["csv", "json"], default="csv")
    add_db(sites)
    return sites


def site_trends(args: argparse.Namespace):
    """The per-period site trends of the database (`sites trends`, `trends --by-site`)."""
    from ..analysis.site_trends import site_trend_table

    return site_trend_table(open_db(args))


def cmd_trends(args: argparse.Namespace) -> int:
    from ..analysis.trends import read_regions, trend_table

    if args.by_site:
        if args.region or args.region_field or args.source or args.context:
            raise ReviewError("--by-site covers every site; it cannot be split by --region, "
                              "--region-field, --source or --context")
        return print_table(site_trends(args), args.format)
    regions = read_regions(args.region) if args.region else None
    db = open_db(args)
    within = None
    if args.context:
        from ..analysis import context

        within = context.parse_filter(args.context)
        context.check_filter(db, *within)
    table = trend_table(db, by=args.by, regions=regions, region_field=args.region_field,
                        sources=args.source or None, context=within)
    if args.format == "json":
        for record in json.loads(table.to_json(orient="records")):
            print(json.dumps(record))
    else:
        sys.stdout.write(table.to_csv(index=False, float_format="%.2f"))
    return 0


def cmd_sites(args: argparse.Namespace) -> int:
    from ..analysis import sites

    if args.action == "trends":
        return print_table(site_trends(args), args.format)
    if args.action == "list":
        table = sites.site_table(open_db(args), state=args.state, period=args.period,
                                 status=args.status)
        return print_table(table, args.format)
    sites.check_distance(args.distance)          # before opening the database
    report = sites.build(open_db(args), distance_m=args.distance, growth=args.growth, by=args.by)
    print(report.summary())
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ..analysis import sampling
    from ..judging.queue import Filters

    db = open_db(args)
    if args.estimate is not None:
        print(sampling.estimate(db, args.estimate).summary())
        return 0
    if not args.name or not args.size:
        raise ReviewError("give --name and --size to draw a sample, or --estimate SAMPLE_ID")
    filters = Filters(sources=args.source, period_from=args.period_from, period_to=args.period_to)
    sample_id = sampling.draw(db, args.name, filters, args.size, seed=args.seed)
    print(json.dumps({"sample_id": sample_id, "size": args.size}))
    return 0


COMMANDS = {"trends": Command(add_trends, cmd_trends), "sample": Command(add_sample, cmd_sample),
            "sites": Command(add_sites, cmd_sites)}
