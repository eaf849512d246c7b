"""python -m review ...: the command line, for scripted work.

Domain errors become one line on stderr and exit status 2; nothing is written to the
output file or the database unless the whole run succeeded.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from . import __version__, settings
from .errors import ReviewError

EXIT_ERROR = 2


def _period(text: str | None) -> tuple[str | None, str | None] | None:
    if not text:
        return None
    if "/" not in text:
        raise ReviewError(f"--period must look like START/END, e.g. 2023-01-01/2023-12-31 (got {text!r})")
    start, end = text.split("/", 1)
    return start or None, end or None


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _area_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bbox", help="area W,S,E,N in degrees")
    parser.add_argument("--start", help="period start YYYY-MM-DD")
    parser.add_argument("--end", help="period end YYYY-MM-DD")
    parser.add_argument("--stac-url", help="STAC API (default: REVIEW_STAC_URL or Earth Search)")
    parser.add_argument("--collection", help="collection (default: REVIEW_STAC_COLLECTION or sentinel-2-l2a)")
    parser.add_argument("--cloud-limit", type=float, default=40.0, help="max scene cloud cover, percent")


def _fetch_tile(args, bands: tuple[str, ...]) -> Path:
    from tqdm import tqdm

    from .detection.fetch import FetchError, Request, Source, composite, parse_bbox

    if not (args.bbox and args.start and args.end):
        raise FetchError("give a TILE, or --bbox W,S,E,N with --start and --end to fetch one")
    source = Source(cloud_limit=args.cloud_limit)
    if args.stac_url:
        source.url = args.stac_url
    if args.collection:
        source.collection = args.collection
    try:
        bbox = parse_bbox(args.bbox)
    except FetchError as exc:
        raise FetchError(f"--bbox: {exc}") from exc
    request = Request(bbox=bbox, start=args.start, end=args.end, bands=bands)
    with tqdm(desc="fetching", unit="window", file=sys.stderr, leave=False,
              disable=True if args.quiet else None) as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.set_postfix_str(what, refresh=False)
            bar.update(done - bar.n)

        return composite(source, request, out=getattr(args, "out", None) if args.command == "fetch" else None,
                         progress=progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m review",
                                     description="Find mining in satellite tiles and review it.")
    parser.add_argument("--version", action="version", version=f"mining-review {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    detect = sub.add_parser("detect", help="run a published detector over a GeoTIFF tile")
    detect.add_argument("tile", nargs="*", help="GeoTIFF tile (Sentinel-2 digital numbers, "
                        "reflectance x 10000); or give --bbox/--start/--end to fetch one")
    detect.add_argument("--model", default="48px_v4.21",
                        help="model card id (see `models`) or path to a .h5/.keras file")
    detect.add_argument("--out", required=True, type=Path, help="GeoJSON to write")
    detect.add_argument("--raw", nargs="?", const=True, default=None, metavar="RAW.geojson",
                        help="write every scored patch: to RAW.geojson if given, else to --out")
    detect.add_argument("--bands", help="band names in file order, '-' to ignore one "
                                        "(e.g. B2,B3,B4,B8,-,-); overrides the file's names")
    detect.add_argument("--before", type=Path, metavar="BEFORE.tif",
                        help="an earlier tile of the same ground, for a model trained on "
                             "before/after pairs (read on the tile's grid)")
    detect.add_argument("--period", help="acquisition period START/END (ISO dates); "
                                         "overrides the file's tags")
    detect.add_argument("--t-main", type=_fraction, help="main threshold (default: the card's)")
    detect.add_argument("--t-iso", type=_fraction, help="threshold for isolated patches")
    detect.add_argument("--batch-size", type=int,
                        help="patches per model call (default 256 on CPU, 1024 on GPU)")
    detect.add_argument("--max-nodata", type=_fraction, default=0.5,
                        help="skip patches with more than this fraction of nodata pixels")
    detect.add_argument("--max-pixels", type=int, help="refuse tiles larger than this "
                        f"(default {settings.max_tile_pixels():,})")
    detect.add_argument("--db", type=Path, help="also store the run and candidates in this SQLite file")
    detect.add_argument("--quiet", action="store_true", help="no progress bar")
    _area_options(detect)
    detect.add_argument("--region", type=Path, help="area of interest (GeoJSON polygons): tile it, "
                        "fetch and score the tiles on Dask, store candidates in --db")
    detect.add_argument("--scheduler", default="local",
                        help="Dask scheduler address (tcp://host:8786), 'local' for a LocalCluster, "
                             "or 'none' to run in this process")
    detect.add_argument("--tile-px", type=int, default=2048, help="region tile side in pixels")
    detect.add_argument("--periods", help="several looks: START/END,START/END,... fetched for "
                        "--bbox on one grid, scored, and each patch's scores combined")
    detect.add_argument("--aggregate", choices=["median", "mean", "max"],
                        help="combine each patch's scores over several TILEs of one place (or "
                             "--periods) this way before post-processing (default median)")
    detect.add_argument("--retry-empty", action="store_true",
                        help="region runs: try again the tiles that had no imagery last time")
    detect.add_argument("--verbose", action="store_true",
                        help="region runs: show Dask's own log lines (worker errors, start-up)")

    fetch = sub.add_parser("fetch", help="fetch a cloud-free Sentinel-2 composite from a STAC API")
    _area_options(fetch)
    fetch.add_argument("--out", type=Path, help="where to write the GeoTIFF (default: the tile cache)")
    fetch.add_argument("--bands", help="band names to fetch (default: all the collection has)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")

    db_help = "review database (default: REVIEW_DB or data/review.db)"
    imp = sub.add_parser("import", help="import detections (GeoJSON, GeoPackage, shapefile, lat/lon CSV)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--source", help="source name (default: the file name)")
    imp.add_argument("--score-field", help="field holding the score, when not pred/mean/confidence")
    imp.add_argument("--period-field", help="field holding a date, a year, YYYYQQ or START/END")
    imp.add_argument("--id-field", help="field holding a stable id")
    imp.add_argument("--area-field", help="field holding the mined area in hectares")
    imp.add_argument("--point-size", type=float, default=480.0,
                     help="side in metres of the square footprint given to points (default 480)")
    imp.add_argument("--db", type=Path, help=db_help)

    queue = sub.add_parser("queue", help="pending detections as JSON lines")
    queue.add_argument("--limit", type=int, default=20)
    queue.add_argument("--order", default="score",
                       help="score | threshold | newest | uncertain (under the trained model "
                            "of the latest rescore)")
    queue.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    queue.add_argument("--min-score", type=float)
    queue.add_argument("--max-score", type=float)
    queue.add_argument("--status", default="pending", help="pending | verified | false_positive | "
                       "unsure | needs_second_opinion | disputed | all")
    queue.add_argument("--site", type=int, help="only detections of this site (see `sites`)")
    queue.add_argument("--db", type=Path, help=db_help)

    verdict = sub.add_parser("verdict", help="record a verdict on a detection")
    verdict.add_argument("id", type=int)
    verdict.add_argument("verdict", help="verified | false_positive | unsure | undo")
    verdict.add_argument("--reviewer", help="who decided (default: this computer's user name)")
    verdict.add_argument("--reason", help="for false_positive: riverbank, aquaculture, landslide, "
                                          "industrial, agriculture, cloud, settlement, other")
    verdict.add_argument("--note")
    verdict.add_argument("--final", action="store_true",
                         help="an editor's decision that settles a disputed detection")
    verdict.add_argument("--before", help="imagery shown as before: SOURCE@START/END")
    verdict.add_argument("--after", help="imagery shown as after: SOURCE@START/END")
    verdict.add_argument("--db", type=Path, help=db_help)

    trends = sub.add_parser("trends", help="detections and mined area per period, by status")
    trends.add_argument("--by", choices=["year", "quarter"], default="year")
    trends.add_argument("--region", type=Path, help="boundary GeoJSON/GeoPackage of regions (polygons)")
    trends.add_argument("--region-field", help="group by this field of the detections instead")
    trends.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    trends.add_argument("--format", choices=["csv", "json"], default="csv")
    trends.add_argument("--by-site", action="store_true",
                        help="per period: new sites, their area, growth of expanding sites and "
                             "cumulative mined area (run `sites build` first)")
    trends.add_argument("--db", type=Path, help=db_help)

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
    export.add_argument("--db", type=Path, help=db_help)

    samples = sub.add_parser("training-samples", help="reviewed detections as labelled points "
                                                      "(earthrise sampling-location schema)")
    samples.add_argument("out", type=Path)
    samples.add_argument("--source", action="append", default=[])
    samples.add_argument("--db", type=Path, help=db_help)

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
    sample.add_argument("--db", type=Path, help=db_help)

    evidence = sub.add_parser("evidence", help="before/after PNG of one detection, with caption")
    evidence.add_argument("id", type=int)
    evidence.add_argument("out", type=Path)
    evidence.add_argument("--db", type=Path, help=db_help)

    models = sub.add_parser("models", help="list the published model cards and the models "
                                           "with cards in the models folder")
    models.add_argument("--json", action="store_true")

    scenes = sub.add_parser("scenes", help="imagery you have, registered as stored scenes for "
                                           "review, training and rescoring")
    scenes.add_argument("action", choices=["add", "list", "remove"])
    scenes.add_argument("target", nargs="?", help="add: the GeoTIFF; remove: the scene id")
    scenes.add_argument("--period", help="add: the imagery's period START/END (ISO dates); "
                                         "overrides the file's tags")
    scenes.add_argument("--bands", help="add: band names in file order, '-' to ignore one")
    scenes.add_argument("--format", choices=["table", "json"], default="table")
    scenes.add_argument("--db", type=Path, help=db_help)

    train = sub.add_parser("train", help="train a before/after change classifier on the "
                                         "reviewed detections")
    train.add_argument("--out", required=True, type=Path, help="the model to write (.keras); "
                       "its card is written beside it (.json)")
    train.add_argument("--base", default="44px_v2.6_rgb_ir",
                       help="published model whose convolutional trunk is tried as a start "
                            "(default 44px_v2.6_rgb_ir; 'none' to skip)")
    train.add_argument("--detector", default="48px_v3.2",
                       help="published detector whose view of the after image the features "
                            "kind adds (default 48px_v3.2; 'none' to leave it out)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--kinds", default="features,cnn,trunk",
                       help="kinds of model to train and compare (features, cnn, trunk); the "
                            "first is kept unless another is clearly better on validation")
    train.add_argument("--epochs", type=int, help="training steps of the features kind "
                       "(default 300); most epochs of the cnn and trunk kinds (early "
                       "stopping decides)")
    train.add_argument("--precision", type=_fraction, default=0.9,
                       help="precision the threshold is chosen for, on validation (default 0.9)")
    train.add_argument("--no-refit", dest="refit", action="store_false",
                       help="write the model the validation figures describe instead of "
                            "training the kept kind again on every reviewed detection (so "
                            "`evaluate` can still use the validation detections)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--db", type=Path, help=db_help)

    evaluate = sub.add_parser("evaluate", help="ROC AUC, precision and recall of a model on "
                                               "reviewed detections it did not train on")
    evaluate.add_argument("--model", required=True, help="model card id or .h5/.keras path")
    evaluate.add_argument("--format", choices=["text", "json"], default="text")
    evaluate.add_argument("--seed", type=int, default=1, help="seed of the bootstrap intervals")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument("--db", type=Path, help=db_help)

    rescore = sub.add_parser("rescore", help="score pending detections with a trained model "
                                             "(beside the source's score) for the uncertain order")
    rescore.add_argument("--model", required=True, help="a trained before/after .keras model")
    rescore.add_argument("--quiet", action="store_true", help="no progress bar")
    rescore.add_argument("--db", type=Path, help=db_help)

    verify_log = sub.add_parser("verify-log", help="check the verdict log's hash chain; names "
                                                   "the first verdict that does not match")
    verify_log.add_argument("--db", type=Path, help=db_help)

    user = sub.add_parser("user", help="accounts: with none, the dashboard has one local user "
                                       "and no sign-in; with any, everyone signs in")
    user.add_argument("action", choices=["add", "passwd", "role", "list", "remove"])
    user.add_argument("name", nargs="?")
    user.add_argument("--role", default="reviewer", help="reviewer (default) | editor | admin")
    user.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input (scripts)")
    user.add_argument("--db", type=Path, help=db_help)

    project = sub.add_parser("settings", help="project settings shared by every reviewer "
                                               "(second_opinion: off | verified | all)")
    project.add_argument("action", choices=["show", "set"])
    project.add_argument("key", nargs="?")
    project.add_argument("value", nargs="?")
    project.add_argument("--db", type=Path, help=db_help)

    agree = sub.add_parser("agreement", help="how far reviewers agree: percent agreement, "
                                             "Cohen's and Fleiss' kappa")
    agree.add_argument("--format", choices=["table", "csv", "json"], default="table")
    agree.add_argument("--seed", type=int, default=1, help="seed of the bootstrap interval")
    agree.add_argument("--db", type=Path, help=db_help)
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
    sites.add_argument("--db", type=Path, help=db_help)
    serve = sub.add_parser("serve", help="live read-only OGC API - Features service (pygeoapi) "
                                         "of the detections, for QGIS and other GIS")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: "
                                                            "this computer only)")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--url", help="address clients use, for links in responses "
                                     "(default http://HOST:PORT; set it behind a proxy or with --host 0.0.0.0)")
    serve.add_argument("--publish-reviewers", action="store_true",
                       help="also publish the last reviewer's name and note")
    serve.add_argument("--db", type=Path, help=db_help)

    report = sub.add_parser("report", help="field reports: text and photos from the ground")
    report.add_argument("action", choices=["add", "list"])
    where = report.add_mutually_exclusive_group()
    where.add_argument("--site", type=int, help="the site it is about")
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
    report.add_argument("--db", type=Path, help=db_help)

    backup = sub.add_parser("backup", help="consistent copy of the database while people review")
    backup.add_argument("out", type=Path, help="the backup file to write")
    backup.add_argument("--db", type=Path, help=db_help)

    prepare = sub.add_parser("prepare-imagery", help="prepare before/after chips for the review "
                             "queue ahead of reviewers (resumable; safe beside the dashboard)")
    prepare.add_argument("--limit", type=int, help="at most this many detections (default: all pending)")
    prepare.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    prepare.add_argument("--period", help="only detections of this period: START/END, either may "
                         "be left out (YYYY-MM-DD)")
    prepare.add_argument("--order", default="score", help="score | threshold | newest")
    prepare.add_argument("--retry", action="store_true", help="retry failed sources now, not in an hour")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.add_argument("--db", type=Path, help=db_help)
    return parser


def cmd_region(args: argparse.Namespace) -> int:
    import shapely
    from tqdm import tqdm

    from .publishing.export import export
    from .detection.fetch import Source
    from .judging.queue import Filters
    from .detection.region import region_source, run_region
    from .analysis.trends import read_regions

    if not (args.start and args.end):
        raise ReviewError("a region run needs --start and --end")
    aoi = shapely.union_all([geometry for _, geometry in read_regions(args.region)])
    source = Source(cloud_limit=args.cloud_limit)
    if args.stac_url:
        source.url = args.stac_url
    if args.collection:
        source.collection = args.collection
    db = _open_db(args)
    with tqdm(desc="tiles", unit="tile", file=sys.stderr, leave=False,
              disable=True if args.quiet else None) as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = run_region(db, aoi, args.start, args.end, args.model,
                            scheduler=None if args.scheduler == "none" else args.scheduler,
                            tile_px=args.tile_px, source=source, t_main=args.t_main,
                            t_iso=args.t_iso, max_nodata=args.max_nodata,
                            retry_empty=args.retry_empty, worker_logs=args.verbose,
                            progress=progress)
    export(db, args.out, Filters(status=None, sources=[region_source(report.region_run_id)]))
    message = report.summary()
    if report.no_imagery:
        message += " (--retry-empty)"
    print(message + f"; candidates written to {args.out}")
    return 0


def _band_hint(message: str, bands: str | None) -> str:
    """The CLI's way of naming bands, added to a domain message about band names."""
    if bands:
        return f"--bands {bands}: {message}"
    if "in file order" in message:
        return f"{message} (give them with --bands)"
    return message


def _database_first(path: Path):
    """Check --db before any work: an existing file is opened (and refused if it is not a
    review database); a new one is only checked to be creatable, and is made at the end."""
    from .errors import StoreError
    from .store import connect

    if path.exists():
        return connect(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot create a review database there ({folder} is not a "
                         "writable folder)")
    return None


def cmd_detect(args: argparse.Namespace) -> int:
    if args.region is not None:
        return cmd_region(args)
    if args.periods or args.aggregate or len(args.tile) > 1:
        return cmd_aggregate(args)
    args.tile = args.tile[0] if args.tile else None
    from tqdm import tqdm

    from .detection.candidates import stage_geojson
    from .detection.detect import check_compatible, check_pair
    from .errors import BandError, ImageryError
    from .detection.imagery import open_tile
    from .detection.models import load_model
    from .detection.preflight import too_small
    from .detection.runs import product_mismatch, run_detection, store_result

    from .detection.runs import ignored_before

    db = _database_first(args.db) if args.db else None
    before = None
    try:
        if args.tile is not None:
            tile = open_tile(args.tile, bands=args.bands, period=_period(args.period),
                             max_pixels=args.max_pixels)
            model = load_model(args.model)
            if args.before is not None:
                before = open_tile(args.before, bands=args.bands, max_pixels=args.max_pixels)
        else:
            from .detection.fetch import ALL_BANDS

            model = load_model(args.model)       # first: it says which bands to fetch
            wanted = tuple(b for b in ALL_BANDS if b in model.card.bands)
            tile = open_tile(_fetch_tile(args, wanted), max_pixels=args.max_pixels)
        check_compatible(tile, model.card)
        small = too_small(tile, model.card)
        if small:
            raise ImageryError(small)
        if model.card.is_pair:
            check_pair(tile, before, model.card)
    except BandError as exc:
        raise BandError(_band_hint(str(exc), args.bands)) from exc
    mismatch = product_mismatch(tile, model.card)
    if mismatch:
        print(f"warning: {mismatch}", file=sys.stderr)
    unused = ignored_before(model.card, before)
    if unused:
        print(f"warning: {unused}", file=sys.stderr)
    bar = None if args.quiet else tqdm(desc="scoring patches", unit="patch", file=sys.stderr,
                                       leave=False, disable=None)

    def progress(done: int, total: int | None, what: str) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        result = run_detection(tile, model, t_main=args.t_main, t_iso=args.t_iso,
                               batch_size=args.batch_size, max_nodata_fraction=args.max_nodata,
                               progress=progress, before=before)
    finally:
        if bar is not None:
            bar.close()
    if args.raw is True or (args.raw and Path(args.raw).resolve() == args.out.resolve()):
        outputs = [(result.raw_geojson, args.out)]
    else:
        outputs = [(result.candidates_geojson, args.out)]
        if args.raw:
            outputs.append((result.raw_geojson, Path(args.raw)))
    message = result.summary()
    # Every file is written beside its target first; the database is written next, and
    # only then do the files take their names: a failure anywhere leaves nothing behind.
    staged: list[tuple[Path, Path]] = []
    try:
        for make, path in outputs:
            staged.append((stage_geojson(make(), path), path))
        if args.db:
            from .store import connect

            run_id = store_result(db if db is not None else connect(args.db), result)
            message += f"; stored as run {run_id} in {args.db}"
        for partial, path in staged:
            partial.replace(path)
    finally:
        for partial, _ in staged:
            partial.unlink(missing_ok=True)
    if tile.warped:
        message += f"; warped from {tile.source_crs} to {tile.crs} at 10 m"
    print(message)
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    """Several looks at one place: TILE TILE ... or --bbox with --periods."""
    from tqdm import tqdm

    from .detection.aggregate import AggregateError, parse_periods, run_aggregate, store_aggregate
    from .detection.candidates import candidates_geojson, raw_geojson, stage_geojson
    from .detection.fetch import ALL_BANDS
    from .detection.imagery import open_tile
    from .detection.models import load_model

    db = _database_first(args.db) if args.db else None
    model = load_model(args.model)
    periods = None
    if args.periods:
        try:
            periods = parse_periods(args.periods)
        except AggregateError as exc:
            raise AggregateError(f"--periods: {exc}") from exc
    if periods and args.tile:
        if len(periods) != len(args.tile):
            raise AggregateError(f"--periods gives {len(periods)} periods for {len(args.tile)} "
                                 "tiles: one period per tile, in the tiles' order")
        # parse_periods sorts; the user's order is the tiles' order.
        given = [tuple(p.strip().split("/", 1)) for p in args.periods.split(",") if p.strip()]
        tiles = [open_tile(path, bands=args.bands, period=period, max_pixels=args.max_pixels)
                 for path, period in zip(args.tile, given)]
    elif periods:
        # One box gives one UTM grid (fetch snaps it to 10 m): every look on the same grid.
        wanted = tuple(b for b in ALL_BANDS if b in model.card.bands)
        paths = []
        for start, end in periods:
            args.start, args.end = start, end
            paths.append(_fetch_tile(args, wanted))
        tiles = [open_tile(path, max_pixels=args.max_pixels) for path in paths]
    else:
        if len(args.tile) < 2:
            raise AggregateError("combining needs at least two tiles of one place, or --periods")
        tiles = [open_tile(path, bands=args.bands, max_pixels=args.max_pixels) for path in args.tile]
    with tqdm(desc="scoring looks", unit="look", file=sys.stderr, leave=False,
              disable=True if args.quiet else None) as bar:
        def progress(done: int, total: int | None, what: str) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = run_aggregate(tiles, model, how=args.aggregate or "median", t_main=args.t_main,
                               t_iso=args.t_iso, max_nodata_fraction=args.max_nodata,
                               progress=progress)
    collection = (raw_geojson(result.scores) if args.raw is True
                  else candidates_geojson(result.scores, result.candidates, result.t_main, result.t_iso))
    if args.raw is not True:
        for feature, by_period in zip(collection["features"], result.candidate_period_scores()):
            feature["properties"].update(aggregate=result.how, period_scores=by_period)
    message = result.summary()
    partial = stage_geojson(collection, args.out)
    try:
        if args.db:
            from .store import connect

            run_id = store_aggregate(db if db is not None else connect(args.db), result, tiles)
            message += f"; stored as run {run_id} in {args.db}"
        partial.replace(args.out)
    finally:
        partial.unlink(missing_ok=True)
    print(message)
    return 0


def _open_db(args):
    from .store import connect

    return connect(args.db or settings.db_path())


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .detection.importers import FieldMap, import_file

    db = _open_db(args)
    fields = FieldMap(score=args.score_field, period=args.period_field, id=args.id_field,
                      area=args.area_field)
    with tqdm(desc="importing", unit="feature", file=sys.stderr, leave=False, disable=None) as bar:
        def progress(done: int, total: int | None, what: str) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = import_file(db, args.file, source=args.source, fields=fields,
                             point_size_m=args.point_size, progress=progress)
    print(report.summary())
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    from .judging.queue import Filters, as_json_line, listing

    status = _status(args.status)
    filters = Filters(sources=args.source, score_min=args.min_score, score_max=args.max_score,
                      status=status, site_id=args.site)
    for row in listing(_open_db(args), filters, order=args.order, limit=args.limit):
        print(as_json_line(row))
    return 0


def _imagery(text: str | None):
    from .judging.verdicts import Imagery

    if not text:
        return None
    source, _, dates = text.partition("@")
    start, _, end = dates.partition("/")
    return Imagery(source=source or None, start=start or None, end=end or None)


def cmd_verdict(args: argparse.Namespace) -> int:
    from .judging import verdicts

    db = _open_db(args)
    reviewer = args.reviewer or _os_user()
    if args.verdict == verdicts.UNDO:
        verdicts.undo(db, args.id, reviewer, via="cli")
    else:
        verdicts.record(db, args.id, reviewer, args.verdict, reason=args.reason, note=args.note,
                        before=_imagery(args.before), after=_imagery(args.after), via="cli",
                        final=args.final)
    status = db.execute("select status from detections where id = ?", [args.id]).fetchone()[0]
    print(json.dumps({"id": args.id, "status": status}))
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise ReviewError("this computer has no user name to record; give --reviewer") from exc


def cmd_verify_log(args: argparse.Namespace) -> int:
    from .verdict_log import verify

    check = verify(_open_db(args))
    if not check.ok:
        raise ReviewError(f"the verdict log does not verify: {check.summary()}")
    print(check.summary())
    return 0


def _new_password(args) -> str:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ReviewError("the two passwords differ; nothing was changed")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    from .judging import users

    db = _open_db(args)
    if args.action == "list":
        for account in users.listing(db):
            print(f"{account['name']:24} {account['role']:9} since {account['created_at'][:10]}")
        if not users.accounts_configured(db):
            print("no accounts: the dashboard runs with one local user and no sign-in",
                  file=sys.stderr)
        return 0
    if not args.name:
        raise ReviewError(f"user {args.action} needs a user name")
    if args.action == "add":
        first = not users.accounts_configured(db)
        account = users.add(db, args.name, _new_password(args), role=args.role)
        print(f"account {account.name} added as {account.role}"
              + ("; the dashboard now asks everyone to sign in" if first else ""))
    elif args.action == "passwd":
        users.check_name(args.name)
        users.set_password(db, args.name, _new_password(args))
        print(f"password of {args.name} changed; its sessions are signed out")
    elif args.action == "role":
        users.set_role(db, args.name, args.role)
        print(f"{args.name} is now {args.role}")
    else:
        users.remove(db, args.name)
        print(f"account {args.name} removed" + ("" if users.accounts_configured(db) else
              "; no accounts are left, so the dashboard runs without sign-in"))
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from .judging import project_settings, verdicts

    db = _open_db(args)
    if args.action == "show":
        for key, value in project_settings.all_values(db).items():
            print(f"{key} = {value}")
        return 0
    if not (args.key and args.value):
        raise ReviewError("settings set needs a key and a value, e.g. settings set second_opinion verified")
    project_settings.check(args.key, args.value)
    change = verdicts.set_second_opinion(db, args.value, by=_os_user())
    message = f"second_opinion = {change['mode']}; {change['changed']} detection statuses re-derived"
    if change["waiting_before"] and args.value == "off":
        message += (f"; {change['waiting_before']} detections were waiting for a second opinion "
                    "or disputed, their verdicts are kept")
    print(message)
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from .judging.agreement import agreement

    result = agreement(_open_db(args), seed=args.seed)
    if args.format == "json":
        print(json.dumps(result.to_json()))
        return 0
    if not result.pairs:
        print("no detection has verdicts from two reviewers yet, so there is no agreement to measure")
        return 0
    overall = result.to_json()["overall"]
    if args.format == "csv":
        print("reviewer_a,reviewer_b,detections,percent_agreement,kappa")
        for pair in result.to_json()["pairs"]:
            print(",".join("" if v is None else str(v) for v in pair.values()))
        print(f"overall,,{overall['detections']},{overall['percent_agreement']},{overall['kappa']}")
        return 0
    def number(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"
    print(f"overall: {overall['detections']} detections judged twice, "
          f"{number(overall['percent_agreement'], 1)}% agreement, Fleiss' kappa "
          f"{number(overall['kappa'])} (95% {number(overall['kappa_low'])} to {number(overall['kappa_high'])})")
    for pair in result.to_json()["pairs"]:
        print(f"  {pair['reviewer_a']} / {pair['reviewer_b']}: {pair['detections']} detections, "
              f"{number(pair['percent_agreement'], 1)}% agreement, Cohen's kappa {number(pair['kappa'])}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from .store import backup

    db = _open_db(args)
    path = backup(db, args.out)
    print(f"backup of {args.db or settings.db_path()} written to {path} "
          f"({db['verdicts'].count:,} verdicts); restore by copying it back while nobody reviews")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .publishing.serve import serve

    path = args.db or settings.db_path()
    _open_db(args).close()          # create and migrate before serving it read-only

    def ready(url: str) -> None:
        print(f"serving {path} as OGC API - Features on {url} (Ctrl+C stops)", flush=True)

    try:
        serve(path, host=args.host, port=args.port, publish_reviewers=args.publish_reviewers,
              ready=ready, url=args.url)
    except KeyboardInterrupt:
        print("service stopped", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .publishing import reports

    db = _open_db(args)
    if args.action == "list":
        for row in reports.listing(db, leads_only=args.leads):
            print(json.dumps(row))
        return 0
    if args.text is None:
        raise ReviewError("report add needs --text")
    if (args.lon is None) != (args.lat is None):
        raise ReviewError("give both --lon and --lat, or neither")
    added = reports.add(db, text=args.text, reporter=args.reporter or _os_user(),
                        detection_id=args.detection, site_id=args.site,
                        lon=args.lon, lat=args.lat, seen=args.seen, photos=args.photo, via="cli")
    print(json.dumps(added))
    return 0


def _region_area(path: Path | None):
    import shapely

    from .analysis.trends import read_regions

    if path is None:
        return None
    return shapely.union_all([geometry for _, geometry in read_regions(path)])


def cmd_trends(args: argparse.Namespace) -> int:
    from .analysis.trends import read_regions, trend_table

    if args.by_site:
        if args.region or args.region_field or args.source:
            raise ReviewError("--by-site covers every site; it cannot be split by --region, "
                              "--region-field or --source")
        return _print_table(_site_trends(args), args.format)
    regions = read_regions(args.region) if args.region else None
    table = trend_table(_open_db(args), by=args.by, regions=regions,
                        region_field=args.region_field, sources=args.source or None)
    if args.format == "json":
        for record in json.loads(table.to_json(orient="records")):
            print(json.dumps(record))
    else:
        sys.stdout.write(table.to_csv(index=False, float_format="%.2f"))
    return 0


def _status(text: str) -> str | None:
    from .judging.verdicts import STATUSES

    if text != "all" and text not in STATUSES:
        raise ReviewError(f"--status {text!r}: use one of {', '.join(STATUSES)} or all")
    return None if text == "all" else text


def cmd_export(args: argparse.Namespace) -> int:
    from .publishing.export import export
    from .judging.queue import Filters

    filters = Filters(status=_status(args.status), sources=args.source,
                      period_from=args.period_from, period_to=args.period_to,
                      area=_region_area(args.region), site_id=args.site)
    if args.layer == "sites":
        from .publishing.export import export_sites

        count = export_sites(_open_db(args), args.out, filters)
        print(f"{count} sites written to {args.out}")
        return 0
    count = export(_open_db(args), args.out, filters)
    print(f"{count} detections written to {args.out}")
    return 0


def _print_table(table, fmt: str) -> int:
    """Rows as CSV or JSON lines; lon/lat to 6 decimals, other numbers (hectares) to 4."""
    table = table.round({c: 6 if c in ("lon", "lat") else 4 for c in table.columns})
    if fmt == "json":
        for record in json.loads(table.to_json(orient="records")):
            print(json.dumps(record))
    else:
        sys.stdout.write(table.to_csv(index=False))
    return 0


def _site_trends(args: argparse.Namespace):
    from .analysis.site_trends import site_trend_table

    return site_trend_table(_open_db(args))


def cmd_sites(args: argparse.Namespace) -> int:
    from .analysis import sites

    if args.action == "trends":
        return _print_table(_site_trends(args), args.format)
    if args.action == "list":
        table = sites.site_table(_open_db(args), state=args.state, period=args.period,
                                 status=args.status)
        return _print_table(table, args.format)
    sites.check_distance(args.distance)          # before opening the database
    report = sites.build(_open_db(args), distance_m=args.distance, growth=args.growth, by=args.by)
    print(report.summary())
    return 0


def cmd_training_samples(args: argparse.Namespace) -> int:
    from .publishing.export import training_samples
    from .judging.queue import Filters

    count = training_samples(_open_db(args), args.out, Filters(status=None, sources=args.source))
    print(f"{count} labelled points written to {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .analysis import sampling
    from .judging.queue import Filters

    db = _open_db(args)
    if args.estimate is not None:
        print(sampling.estimate(db, args.estimate).summary())
        return 0
    if not args.name or not args.size:
        raise ReviewError("give --name and --size to draw a sample, or --estimate SAMPLE_ID")
    filters = Filters(sources=args.source, period_from=args.period_from, period_to=args.period_to)
    sample_id = sampling.draw(db, args.name, filters, args.size, seed=args.seed)
    print(json.dumps({"sample_id": sample_id, "size": args.size}))
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    from .publishing.export import evidence_png

    png = evidence_png(_open_db(args), args.id)
    args.out.write_bytes(png)
    print(f"evidence for detection {args.id} written to {args.out}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .detection.fetch import L2A_BANDS, ALL_BANDS
    from .detection.imagery import parse_band_mapping

    if args.bands:
        bands = tuple(parse_band_mapping(args.bands))
    else:
        bands = L2A_BANDS if "l2a" in (args.collection or settings.stac_collection()).lower() else ALL_BANDS
    path = _fetch_tile(args, bands)
    print(f"composite of {args.start} to {args.end} written to {path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .detection.models import CARDS, local_cards

    cache = settings.model_cache_dir()
    for card in CARDS.values():
        cached = (cache / card.filename).exists()
        if args.json:
            print(json.dumps({**card.to_json(), "cached": cached}))
        else:
            print(f"{card.id:24} {card.patch_size}px {len(card.bands):2} bands  "
                  f"{'cached ' if cached else 'not yet'}  {card.description}")
    for card, path in local_cards(cache):
        if args.json:
            print(json.dumps({**card.to_json(), "path": str(path), "cached": True}))
        else:
            kind = "pair " if card.is_pair else "local"
            print(f"{card.id:24} {card.patch_size}px {len(card.bands):2} bands  {kind}    "
                  f"{card.description or path.name} ({path})")
    return 0


@contextlib.contextmanager
def _progress_bar(label: str, quiet: bool, unit: str = "item"):
    """A progress callback drawing a tqdm bar on stderr, closed when the block ends."""
    from tqdm import tqdm

    bar = tqdm(desc=label, unit=unit, file=sys.stderr, leave=False,
               disable=True if quiet else None)

    def progress(done: int, total: int | None, what: str = "") -> None:
        bar.total = total
        if what:
            bar.set_description_str(what, refresh=False)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        bar.close()


def cmd_scenes(args: argparse.Namespace) -> int:
    from .review_imagery import scenes

    if args.action == "add":
        if not args.target:
            raise ReviewError("scenes add needs the GeoTIFF to add")
        row = scenes.add(_open_db(args), args.target, period=_period(args.period), bands=args.bands)
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
        removed = scenes.remove(_open_db(args), scene_id)
        print(f"scene {removed['id']} ({removed['name']}) removed; its file is kept")
        return 0
    for row in scenes.listing(_open_db(args)):
        if args.format == "json":
            print(json.dumps(row))
        else:
            print(f"{row['id']:5} {row['period_start']} to {row['period_end']}  {row['bands']:24} "
                  f"{row['path']}" + ("" if row["present"] else "  (file missing)"))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .learning.train import train

    db = _open_db(args)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    base = None if args.base.lower() == "none" else args.base
    detector = None if args.detector.lower() == "none" else args.detector
    with _progress_bar("training", args.quiet) as progress:
        report = train(db, args.out, base=base, seed=args.seed, kinds=kinds, epochs=args.epochs,
                       detector=detector,
                       precision=args.precision, progress=progress,
                       database_name=str(args.db or settings.db_path()), refit=args.refit)
    print(report.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .learning.evaluate import evaluate
    from .detection.models import load_model

    db = _open_db(args)
    model = load_model(args.model)
    with _progress_bar("scoring", args.quiet) as progress:
        result = evaluate(db, model, seed=args.seed, progress=progress)
    if args.format == "json":
        print(json.dumps({"model": result.model_id, **result.metrics,
                          "left_out_trained": result.left_out_trained,
                          "without_imagery": len(result.without_imagery)}))
    else:
        print(result.summary())
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from .learning.evaluate import rescore, rescore_summary
    from .detection.models import load_model

    db = _open_db(args)
    model = load_model(args.model)
    with _progress_bar("rescoring", args.quiet) as progress:
        counts = rescore(db, model, progress=progress)
    print(rescore_summary(counts))
    return 0


def cmd_prepare_imagery(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .review_imagery import chip_cache
    from .judging.queue import Filters, count, matching
    from .review_imagery.preparation import chip_sources, prepare

    start, _, end = (args.period or "").partition("/")
    filters = Filters(sources=args.source, period_from=start or None, period_to=end or None)
    db = _open_db(args)
    sources = chip_sources()
    total = count(db, filters)
    total = min(total, args.limit) if args.limit is not None else total
    tally = {"cached": 0, "prepared": 0, "failed": 0}
    with tqdm(total=total, desc="preparing imagery", unit="detection", file=sys.stderr,
              disable=True if args.quiet else None) as bar:
        for number, detection in enumerate(matching(db, filters, args.order)):
            if number >= total:
                break
            had = chip_cache.lookup(detection["id"], sources)
            got = prepare(db, detection, sources=sources, retry_seconds=0 if args.retry else None)
            tally["cached" if had is not None and got is not None and got.source == had.source
                  else "prepared" if got is not None else "failed"] += 1
            bar.update(1)
    print(f"{total:,} detections: {tally['prepared']:,} prepared, {tally['cached']:,} already "
          f"in the cache, {tally['failed']:,} without imagery (noted with the reason; tried "
          f"again on a later run)")
    return 0


COMMANDS = {"detect": cmd_detect, "fetch": cmd_fetch, "import": cmd_import, "queue": cmd_queue,
            "verdict": cmd_verdict, "trends": cmd_trends, "export": cmd_export,
            "training-samples": cmd_training_samples, "sample": cmd_sample,
            "evidence": cmd_evidence, "models": cmd_models, "verify-log": cmd_verify_log,
            "backup": cmd_backup, "user": cmd_user, "settings": cmd_settings,
            "agreement": cmd_agreement, "sites": cmd_sites, "serve": cmd_serve,
            "report": cmd_report, "scenes": cmd_scenes, "train": cmd_train,
            "evaluate": cmd_evaluate, "rescore": cmd_rescore}
COMMANDS["prepare-imagery"] = cmd_prepare_imagery


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:
        # Output paths the user gave: unwritable folder, full disk.
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing was stored", file=sys.stderr)
        return 130
