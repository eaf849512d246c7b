"""Commands of the detection wing: detect (one tile, several looks, or a region), fetch,
import and models."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import settings
from ..errors import ReviewError
from .common import (DB_HELP, Command, area_options, fetch_tile, fraction, open_db, period,
                     progress_bar, region_area, stac_source)


def add_detect(sub) -> argparse.ArgumentParser:
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
    detect.add_argument("--t-main", type=fraction, help="main threshold (default: the card's)")
    detect.add_argument("--t-iso", type=fraction, help="threshold for isolated patches")
    detect.add_argument("--batch-size", type=int,
                        help="patches per model call (default 256 on CPU, 1024 on GPU)")
    detect.add_argument("--max-nodata", type=fraction, default=0.5,
                        help="skip patches with more than this fraction of nodata pixels")
    detect.add_argument("--max-pixels", type=int, help="refuse tiles larger than this "
                        f"(default {settings.max_tile_pixels():,})")
    detect.add_argument("--db", type=Path, help="also store the run and candidates in this SQLite file")
    detect.add_argument("--quiet", action="store_true", help="no progress bar")
    area_options(detect)
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
    return detect


def add_fetch(sub) -> argparse.ArgumentParser:
    fetch = sub.add_parser("fetch", help="fetch a cloud-free Sentinel-2 composite from a STAC API")
    area_options(fetch)
    fetch.add_argument("--out", type=Path, help="where to write the GeoTIFF (default: the tile cache)")
    fetch.add_argument("--bands", help="band names to fetch (default: all the collection has)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    return fetch


def add_import(sub) -> argparse.ArgumentParser:
    imp = sub.add_parser("import", help="import detections (GeoJSON, GeoPackage, shapefile, lat/lon CSV)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--source", help="source name (default: the file name)")
    imp.add_argument("--score-field", help="field holding the score, when not pred/mean/confidence")
    imp.add_argument("--period-field", help="field holding a date, a year, YYYYQQ or START/END")
    imp.add_argument("--id-field", help="field holding a stable id")
    imp.add_argument("--area-field", help="field holding the mined area in hectares")
    imp.add_argument("--point-size", type=float, default=480.0,
                     help="side in metres of the square footprint given to points (default 480)")
    imp.add_argument("--db", type=Path, help=DB_HELP)
    return imp


def add_models(sub) -> argparse.ArgumentParser:
    models = sub.add_parser("models", help="list the published model cards and the models "
                                           "with cards in the models folder")
    models.add_argument("--json", action="store_true")
    return models


def band_hint(message: str, bands: str | None) -> str:
    """The CLI's way of naming bands, added to a domain message about band names."""
    if bands:
        return f"--bands {bands}: {message}"
    if "in file order" in message:
        return f"{message} (give them with --bands)"
    return message


def stored_in(db, args: argparse.Namespace, store):
    """The database write of a run, for `save_run`: `store(db)` into --db (made now if it is
    new); None without --db."""
    if not args.db:
        return None

    def write() -> int:
        from ..store import connect

        return store(db if db is not None else connect(args.db))

    return write


def cmd_region(args: argparse.Namespace) -> int:
    from ..detection.region import region_source, run_region
    from ..judging.queue import Filters
    from ..publishing.export import export

    if not (args.start and args.end):
        raise ReviewError("a region run needs --start and --end")
    aoi = region_area(args.region)
    source = stac_source(args)
    db = open_db(args)
    with progress_bar("tiles", args.quiet, unit="tile", show=None) as progress:
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


def detect_inputs(args: argparse.Namespace):
    """The tile (given, or fetched for the area options), the model and the before tile."""
    from ..detection.imagery import open_tile
    from ..detection.models import load_model

    before = None
    if args.tile is not None:
        tile = open_tile(args.tile, bands=args.bands, period=period(args.period),
                         max_pixels=args.max_pixels)
        model = load_model(args.model)
        if args.before is not None:
            before = open_tile(args.before, bands=args.bands, max_pixels=args.max_pixels)
    else:
        from ..detection.fetch import ALL_BANDS

        model = load_model(args.model)       # first: it says which bands to fetch
        wanted = tuple(b for b in ALL_BANDS if b in model.card.bands)
        tile = open_tile(fetch_tile(args, wanted), max_pixels=args.max_pixels)
    return tile, model, before


def cmd_detect(args: argparse.Namespace) -> int:
    if args.region is not None:
        return cmd_region(args)
    if args.periods or args.aggregate or len(args.tile) > 1:
        return cmd_aggregate(args)
    args.tile = args.tile[0] if args.tile else None
    from ..detection.runs import (check_inputs, ignored_before, output_files, product_mismatch,
                                  run_detection, save_run, store_result)
    from ..errors import BandError
    from ..store import connect_if_exists

    db = connect_if_exists(args.db) if args.db else None   # refused before any work
    try:
        tile, model, before = detect_inputs(args)
        check_inputs(tile, model.card, before)
    except BandError as exc:
        raise BandError(band_hint(str(exc), args.bands)) from exc
    for warning in (product_mismatch(tile, model.card), ignored_before(model.card, before)):
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    with progress_bar("scoring patches", args.quiet, unit="patch", show=None) as progress:
        result = run_detection(tile, model, t_main=args.t_main, t_iso=args.t_iso,
                               batch_size=args.batch_size, max_nodata_fraction=args.max_nodata,
                               progress=progress, before=before)
    message = result.summary()
    run_id = save_run(output_files(result, args.out, args.raw),
                      store=stored_in(db, args, lambda into: store_result(into, result)))
    if run_id is not None:
        message += f"; stored as run {run_id} in {args.db}"
    if tile.warped:
        message += f"; warped from {tile.source_crs} to {tile.crs} at 10 m"
    print(message)
    return 0


def aggregate_looks(args: argparse.Namespace, model) -> list:
    """The looks to combine: TILE TILE ... (with --periods, one per tile in their order),
    or one tile fetched per --periods period for --bbox, all on one grid."""
    from ..detection.aggregate import AggregateError, parse_periods
    from ..detection.fetch import ALL_BANDS
    from ..detection.imagery import open_tile

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
        return [open_tile(path, bands=args.bands, period=when, max_pixels=args.max_pixels)
                for path, when in zip(args.tile, given)]
    if periods:
        # One box gives one UTM grid (fetch snaps it to 10 m): every look on the same grid.
        wanted = tuple(b for b in ALL_BANDS if b in model.card.bands)
        paths = []
        for start, end in periods:
            args.start, args.end = start, end
            paths.append(fetch_tile(args, wanted))
        return [open_tile(path, max_pixels=args.max_pixels) for path in paths]
    if len(args.tile) < 2:
        raise AggregateError("combining needs at least two tiles of one place, or --periods")
    return [open_tile(path, bands=args.bands, max_pixels=args.max_pixels) for path in args.tile]


def cmd_aggregate(args: argparse.Namespace) -> int:
    """Several looks at one place: TILE TILE ... or --bbox with --periods."""
    from ..detection.aggregate import aggregate_geojson, run_aggregate, store_aggregate
    from ..detection.models import load_model
    from ..detection.runs import save_run
    from ..store import connect_if_exists

    db = connect_if_exists(args.db) if args.db else None   # refused before any work
    model = load_model(args.model)
    tiles = aggregate_looks(args, model)
    with progress_bar("scoring looks", args.quiet, unit="look", show=None) as progress:
        result = run_aggregate(tiles, model, how=args.aggregate or "median", t_main=args.t_main,
                               t_iso=args.t_iso, max_nodata_fraction=args.max_nodata,
                               progress=progress)
    message = result.summary()
    run_id = save_run([(aggregate_geojson(result, raw=args.raw is True), args.out)],
                      store=stored_in(db, args, lambda into: store_aggregate(into, result, tiles)))
    if run_id is not None:
        message += f"; stored as run {run_id} in {args.db}"
    print(message)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..detection.fetch import default_bands
    from ..detection.imagery import parse_band_mapping

    if args.bands:
        bands = tuple(parse_band_mapping(args.bands))
    else:
        bands = default_bands(args.collection or settings.stac_collection())
    path = fetch_tile(args, bands)
    print(f"composite of {args.start} to {args.end} written to {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..detection.importers import FieldMap, import_file

    db = open_db(args)
    fields = FieldMap(score=args.score_field, period=args.period_field, id=args.id_field,
                      area=args.area_field)
    with progress_bar("importing", unit="feature", show=None) as progress:
        report = import_file(db, args.file, source=args.source, fields=fields,
                             point_size_m=args.point_size, progress=progress)
    print(report.summary())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..detection.models import CARDS, local_cards

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


COMMANDS = {"detect": Command(add_detect, cmd_detect), "fetch": Command(add_fetch, cmd_fetch),
            "import": Command(add_import, cmd_import), "models": Command(add_models, cmd_models)}
