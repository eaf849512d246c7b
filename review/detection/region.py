"""Region-scale detection on a Dask cluster: tiles fetched and scored on workers, results
written by the driver into SQLite as they arrive, so a stopped run resumes where it stopped.

The region is cut into square tiles on a grid of its UTM zone, aligned to multiples of the
tile size; patches sit on the detector's CRS-anchored grid, so a patch belongs to exactly
one tile (the one holding its top-left corner) and every tile is fetched with a margin of
one patch to the right and below. Tiles are independent tasks, retried on failure; the
driver stores each tile's patch scores and marks it done in one transaction. When every
tile is done, the dual-threshold rule and the dissolve run over all patches of the region
(neighbours across tile edges included) and the candidates are stored for review.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ..errors import ReviewError, first_line
from ..progress import Progress, silent
from .imagery import utm_crs_for

TILE_PX = 2048
PIXEL_M = 10.0


@dataclass(frozen=True)
class RegionTile:
    key: str
    crs: str
    left: float          # core: [left, left + size) x (top - size, top]
    top: float
    size: float

    def fetch_bbox(self, margin: float, aoi: shapely.Geometry | None = None) -> tuple[float, float, float, float]:
        """Lon/lat box of the core plus a margin right and below (and a pixel all round),
        cut down to the area of interest (plus a margin) where the tile is larger."""
        to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        left, right = self.left - PIXEL_M, self.left + self.size + margin + PIXEL_M
        bottom, top = self.top - self.size - margin - PIXEL_M, self.top + PIXEL_M
        if aoi is not None:
            to_tile = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
            west, south, east, north = shapely.ops.transform(to_tile.transform, aoi).bounds
            pad = margin + PIXEL_M
            # Snap to the patch grid's pixels so the cut never moves a pixel.
            left = max(left, math.floor((west - pad) / PIXEL_M) * PIXEL_M)
            right = min(right, math.ceil((east + pad) / PIXEL_M) * PIXEL_M)
            bottom = max(bottom, math.floor((south - pad) / PIXEL_M) * PIXEL_M)
            top = min(top, math.ceil((north + pad) / PIXEL_M) * PIXEL_M)
        xs, ys = to_lonlat.transform([left, right, left, right], [bottom, bottom, top, top])
        return min(xs), min(ys), max(xs), max(ys)

    def holds(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x >= self.left) & (x < self.left + self.size) & (y <= self.top) & (y > self.top - self.size)


def plan_tiles(aoi: shapely.Geometry, tile_px: int = TILE_PX, patch_px: int = 48) -> list[RegionTile]:
    """Tiles of the region's UTM grid holding the corner of a patch that touches the area of
    interest (lon/lat): the area grown by one patch up and to the left."""
    centre = aoi.centroid
    crs = utm_crs_for(centre.x, centre.y)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    projected = shapely.ops.transform(to_utm.transform, aoi)
    projected = projected.buffer(patch_px * PIXEL_M, join_style="mitre")
    size = tile_px * PIXEL_M
    minx, miny, maxx, maxy = projected.bounds
    tiles = []
    for i in range(math.floor(minx / size), math.ceil(maxx / size)):
        for j in range(math.floor(miny / size), math.ceil(maxy / size)):
            left, bottom = i * size, j * size
            if projected.intersects(shapely.box(left, bottom, left + size, bottom + size)):
                tiles.append(RegionTile(key=f"E{int(left)}_N{int(bottom + size)}", crs=crs.to_string(),
                                        left=left, top=bottom + size, size=size))
    return tiles


# ---------------------------------------------------------------------- worker side

def _model(spec: str):
    # One copy per worker process, shared by its tasks (and by the dashboard in-process).
    from .models import cached_model

    return cached_model(spec, progress=silent)


class TileFailed(ReviewError):
    """A region tile could not be fetched or scored (after the scheduler's retries)."""


def score_region_tile(tile: RegionTile, model_spec: str, start: str, end: str, source: dict,
                      aoi_wkt: str, max_nodata: float = 0.5) -> dict:
    """Fetch one tile's composite and score it; runs on a Dask worker. A tile the catalogue
    has no scenes for is a result too ({"tile", "no_imagery": reason}), not a failure.

    A domain error leaves as TileFailed with the same one-line message and no chained
    cause: Dask pickles what a task raises, and a cause that does not pickle (a rasterio
    error) would turn it into a bare Exception the driver cannot tell from a bug."""
    try:
        return _score_region_tile(tile, model_spec, start, end, source, aoi_wkt, max_nodata)
    except ReviewError as exc:
        message = first_line(exc, limit=500)
    raise TileFailed(message)


def _score_region_tile(tile: RegionTile, model_spec: str, start: str, end: str, source: dict,
                      aoi_wkt: str, max_nodata: float = 0.5) -> dict:
    from .detect import score_tile
    from .fetch import ALL_BANDS, NoImagery, Request, Source, composite
    from .imagery import open_tile

    model = _model(model_spec)
    card = model.card
    bands = tuple(b for b in ALL_BANDS if b in card.bands)
    aoi = shapely.from_wkt(aoi_wkt)
    request = Request(bbox=tile.fetch_bbox(card.patch_size * PIXEL_M, aoi), start=start, end=end,
                      bands=bands, crs=tile.crs)
    try:
        path = composite(Source(**source), request)
    except NoImagery as exc:
        return {"tile": tile.key, "no_imagery": str(exc)}
    result = score_tile(open_tile(path), model, max_nodata_fraction=max_nodata)
    boxes = result.footprints()
    x, y = boxes[:, 0], boxes[:, 3]                     # top-left corner of each patch
    keep = tile.holds(x, y)
    if keep.any():
        to_lonlat = Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True)
        lon0, lat0 = to_lonlat.transform(boxes[:, 0], boxes[:, 1])
        lon1, lat1 = to_lonlat.transform(boxes[:, 2], boxes[:, 3])
        footprints = shapely.box(lon0, lat0, lon1, lat1)
        keep &= shapely.intersects(footprints, aoi)
    return {"tile": tile.key, "x": x[keep].tolist(), "y": y[keep].tolist(),
            "scores": result.scores[keep].astype(float).tolist(), "device": result.device}


# ---------------------------------------------------------------------- driver side


def region_source(region_run_id: int) -> str:
    """The source name a region run's candidates are stored and exported under."""
    return f"region:{region_run_id}"


@dataclass
class RegionReport:
    region_run_id: int
    tiles: int
    tiles_scored: int            # fetched and scored by this invocation (a resumed run scores
                                 # only what was missing; tiles found without imagery not counted)
    patches: int
    candidates: int              # stored by run_id
    run_id: int | None
    no_imagery: list[tuple[str, str]] = field(default_factory=list)   # (tile, reason), all so far
    tiles_tried: int = 0         # tiles asked of the catalogue by this invocation

    def summary(self) -> str:
        now = f"{self.tiles_scored} scored now"
        if self.tiles_tried > self.tiles_scored:
            now += f", {self.tiles_tried - self.tiles_scored} found without imagery now"
        text = (f"region run {self.region_run_id}: {self.tiles} tiles ({now}), "
                f"{self.patches:,} patches, {self.candidates} candidates stored as run {self.run_id}")
        if self.no_imagery:
            keys = [key for key, _ in self.no_imagery]
            named = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            text += (f"; {len(keys)} tiles without imagery, not scored ({named}; first: "
                     f"{self.no_imagery[0][1]}); they are tried again only when asked")
        return text


def _key(aoi: shapely.Geometry, start, end, sha256, tile_px, source: dict, max_nodata) -> str:
    text = json.dumps([shapely.to_wkt(aoi, rounding_precision=6), start, end, sha256, tile_px,
                       source["url"], source["collection"], source["cloud_limit"], max_nodata])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _client(scheduler: str):
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        # No dashboard; the scheduler's own HTTP routes on any free port, not on 8787,
        # which another cluster (or another user's test) may hold.
        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                               dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})
        return Client(cluster), cluster
    return Client(scheduler), None


@contextmanager
def _quiet_dask(quiet: bool):
    """Keep Dask's own log lines (a task's traceback on "Compute Failed", start-up notices)
    off the terminal: failures come back to the driver, which reports them in one line."""
    if not quiet:
        yield
        return
    import distributed  # noqa: F401  (configures its loggers on import; we override them)

    names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"distributed(\.|$)")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def run_region(db, aoi: shapely.Geometry, start: str, end: str, model_spec: str,
               scheduler: str | None = "local", tile_px: int = TILE_PX, source=None,
               t_main: float | None = None, t_iso: float | None = None, max_nodata: float = 0.5,
               retries: int = 2, retry_empty: bool = False, worker_logs: bool = False,
               progress: Progress | None = None) -> RegionReport:
    """Score a region tile by tile (on Dask unless scheduler is None), then store candidates.

    A tile the catalogue has no scenes for is recorded as 'no_imagery' with the reason and
    is not tried again unless `retry_empty`; the candidates of the other tiles are stored.
    Tiles that fail (a network error after `retries`) stop the run with a ReviewError; the
    same call again scores only what is missing. Dask's log lines are kept off the
    terminal unless `worker_logs`.
    """
    from ..store import now, transaction
    from .fetch import Source

    model = _model(model_spec)
    source = asdict(source or Source())
    key = _key(aoi, start, end, model.sha256, tile_px, source, max_nodata)
    tiles = plan_tiles(aoi, tile_px, model.card.patch_size)
    if not tiles:
        raise ReviewError("the area of interest is empty")
    existing = list(db["region_runs"].rows_where("key = ?", [key]))
    if existing:
        region_id = existing[0]["id"]
    else:
        region_id = db["region_runs"].insert({
            "key": key, "aoi": shapely.to_wkt(aoi), "period_start": start, "period_end": end,
            "model_id": model.card.id, "model_sha256": model.sha256, "tile_px": tile_px,
            "tiles": len(tiles), "status": "running", "started_at": now()}).last_pk
    settled = ("done",) if retry_empty else ("done", "no_imagery")
    done = {r[0] for r in db.execute(
        f"select tile from region_tiles where region_run_id = ? and status in "
        f"({', '.join('?' * len(settled))})", [region_id, *settled])}
    todo = [t for t in tiles if t.key not in done]
    arguments = (model_spec, start, end, source, shapely.to_wkt(aoi), max_nodata)
    failures = []
    new_patches = newly_done = 0

    def store(result: dict) -> None:
        nonlocal new_patches, newly_done
        with transaction(db):
            if "no_imagery" in result:
                db["region_tiles"].upsert({"region_run_id": region_id, "tile": result["tile"],
                                           "status": "no_imagery", "patches": 0, "device": None,
                                           "error": result["no_imagery"], "finished_at": now()},
                                          pk=("region_run_id", "tile"))
                return
            db["region_patches"].insert_all(
                ({"region_run_id": region_id, "x": x, "y": y, "score": s, "tile": result["tile"]}
                 for x, y, s in zip(result["x"], result["y"], result["scores"])), ignore=True)
            db["region_tiles"].upsert({"region_run_id": region_id, "tile": result["tile"],
                                       "status": "done", "patches": len(result["scores"]),
                                       "device": result["device"], "error": None,
                                       "finished_at": now()}, pk=("region_run_id", "tile"))
        new_patches += len(result["scores"])
        newly_done += 1

    finished = len(done)
    if scheduler is None:
        for tile in todo:
            try:
                store(score_region_tile(tile, *arguments))
            except ReviewError as exc:
                failures.append((tile.key, first_line(exc)))
            finished += 1
            if progress:
                progress(finished, len(tiles), tile.key)
    elif todo:
        with _quiet_dask(not worker_logs):
            from dask.distributed import as_completed

            client, cluster = _client(scheduler)
            try:
                futures = {client.submit(score_region_tile, tile, *arguments, retries=retries,
                                         pure=False, key=f"tile-{key}-{tile.key}"): tile
                           for tile in todo}
                for future in as_completed(futures):
                    tile = futures[future]
                    try:
                        store(future.result())
                    except ReviewError as exc:
                        failures.append((tile.key, first_line(exc)))
                    finished += 1
                    if progress:
                        progress(finished, len(tiles), tile.key)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
    for tile_key, error in failures:
        db["region_tiles"].upsert({"region_run_id": region_id, "tile": tile_key, "status": "failed",
                                   "error": error, "finished_at": now()}, pk=("region_run_id", "tile"))
    if failures:
        raise ReviewError(f"{len(failures)} of {len(tiles)} tiles failed (first: {failures[0][0]}: "
                          f"{failures[0][1]}); run the same command again to retry them")
    report = _finish(db, region_id, model, tiles, newly_done, new_patches, t_main, t_iso)
    report.tiles_tried = len(todo)
    return report


def _finish(db, region_id: int, model, tiles, scored_now: int, new_patches: int,
            t_main, t_iso) -> RegionReport:
    """Candidates over every patch of the region, stored once. When tiles that had no
    imagery were scored after the candidates were stored, the candidates not stored yet
    (by footprint) are stored as a new run of the same region."""
    from ..store import now, record_run
    from .candidates import candidates
    from .detect import PatchScores
    from .imagery import Tile
    from .runs import detection_rows

    region = db["region_runs"].get(region_id)
    rows = np.array(db.execute("select x, y, score from region_patches where region_run_id = ? "
                               "order by y desc, x", [region_id]).fetchall(), dtype=np.float64)
    empty = [(r[0], r[1]) for r in db.execute(
        "select tile, error from region_tiles where region_run_id = ? and status = 'no_imagery' "
        "order by tile", [region_id])]
    source = region_source(region_id)
    if region["run_id"] and not new_patches:
        count = db["detections"].count_where("run_id = ?", [region["run_id"]])
        return RegionReport(region_id, len(tiles), scored_now, len(rows), count, region["run_id"], empty)
    card = model.card
    t_main = card.t_main if t_main is None else t_main
    t_iso = card.t_iso if t_iso is None else t_iso
    found = []
    crs = tiles[0].crs
    if len(rows):
        left, top = rows[:, 0].min(), rows[:, 1].max()
        grid = Tile(path=Path(f"region-{region_id}"), band_names=(), crs=CRS.from_user_input(crs),
                    transform=from_origin(left, top, PIXEL_M, PIXEL_M), width=1, height=1,
                    dtype="float32", nodata=None, period_start=region["period_start"],
                    period_end=region["period_end"])
        scores = PatchScores(tile=grid, card=card,
                             rows=np.round((top - rows[:, 1]) / PIXEL_M).astype(np.int64),
                             cols=np.round((rows[:, 0] - left) / PIXEL_M).astype(np.int64),
                             scores=rows[:, 2].astype(np.float32))
        found = candidates(scores, t_main=t_main, t_iso=t_iso)
    detections = detection_rows(found, CRS.from_user_input(crs), source=source, model_id=card.id,
                                t_main=t_main, period=(region["period_start"], region["period_end"]),
                                properties={"region_run": region_id}, content_ids=True)
    if region["run_id"]:
        stored = {r[0] for r in db.execute("select external_id from detections where source = ?",
                                           [source])}
        detections = [d for d in detections if d["external_id"] not in stored]
    devices = sorted({r[0] for r in db.execute("select distinct device from region_tiles where "
                                               "region_run_id = ?", [region_id]) if r[0]})
    notes = f"region run {region_id}: {len(tiles)} tiles of {region['tile_px']} px"
    if empty:
        notes += f", {len(empty)} without imagery"
    run_id = record_run(
        db, {"path": source, "name": f"region run {region_id}", "sha256": region["key"],
             "crs": crs, "period_start": region["period_start"], "period_end": region["period_end"]},
        {"model_id": card.id, "model_sha256": model.sha256, "t_raw": card.t_raw, "t_main": t_main,
         "t_iso": t_iso, "device": ", ".join(devices), "patches": len(rows),
         "candidates": len(detections), "started_at": region["started_at"], "finished_at": now(),
         "notes": notes},
        detections)
    db["region_runs"].update(region_id, {"status": "done", "run_id": run_id, "finished_at": now()})
    return RegionReport(region_id, len(tiles), scored_now, len(rows), len(detections), run_id, empty)
