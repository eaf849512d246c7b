"""One detection run, end to end: tile + model -> scores -> candidates -> files and database.

The CLI and the Detect page both call `run_detection`, so they behave the same.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import shapely

from .. import __version__, files
from ..errors import ImageryError
from .candidates import Candidate, candidates, candidates_geojson, raw_geojson, to_lonlat_geojson
from .detect import MAX_NODATA_FRACTION, PatchScores, check_compatible, check_pair, score_tile
from .imagery import FRACTION_SCALE, Tile
from .models import LoadedModel, sha256_of
from .preflight import too_small


@dataclass
class RunResult:
    scores: PatchScores
    candidates: list[Candidate]
    t_main: float
    t_iso: float
    started_at: str
    finished_at: str
    before: Tile | None = None        # the earlier tile a pair model compared with

    @property
    def total_area_ha(self) -> float:
        return sum(c.area_ha for c in self.candidates)

    def candidates_geojson(self) -> dict:
        return candidates_geojson(self.scores, self.candidates, self.t_main, self.t_iso)

    def raw_geojson(self) -> dict:
        return raw_geojson(self.scores)

    def summary(self) -> str:
        s = self.scores
        return (f"{len(s)} patches of {s.tile.name} scored by {s.card.id} on {s.device} "
                f"in {s.seconds:.1f} s ({s.skipped_nodata} skipped as nodata); "
                f"{len(self.candidates)} candidates, {self.total_area_ha:.1f} ha "
                f"(patches kept from score {self.t_main:g}, or {self.t_iso:g} where one stands alone: "
                f"t_main, t_iso)"
                + (f"; {self.rescaled_note}" if self.rescaled_note else ""))

    @property
    def rescaled_note(self) -> str | None:
        """Which tiles held reflectance as fractions and were read x 10000 (`fraction_scale`)."""
        tiles = [self.scores.tile] + ([self.before] if self.before is not None else [])
        names = [t.name for t in tiles if t.value_scale != 1.0]
        if not names:
            return None
        return (f"{' and '.join(names)} hold{'s' if len(names) == 1 else ''} reflectance as "
                f"fractions (0-1), read as digital numbers (x {FRACTION_SCALE:g})")


def check_inputs(tile: Tile, card, before: Tile | None = None) -> None:
    """Refuse a run that cannot start, before anything is scored: a tile without the bands
    the model needs (BandError), one smaller than a patch (ImageryError), a pair model's
    missing or unfit before tile."""
    check_compatible(tile, card)
    small = too_small(tile, card)
    if small:
        raise ImageryError(small)
    if card.is_pair:
        check_pair(tile, before, card)


def run_detection(tile: Tile, model: LoadedModel, t_main: float | None = None,
                  t_iso: float | None = None, batch_size: int | None = None,
                  max_nodata_fraction: float = MAX_NODATA_FRACTION, progress=None,
                  before: Tile | None = None) -> RunResult:
    """Score a tile; a pair model compares it with `before` (an earlier tile of the same
    ground), which a single-image model ignores (see `ignored_before`)."""
    from ..store import now

    check_pair(tile, before, model.card)
    t_main = model.card.t_main if t_main is None else t_main
    t_iso = model.card.t_iso if t_iso is None else t_iso
    started = now()
    scores = score_tile(tile, model, batch_size=batch_size,
                        max_nodata_fraction=max_nodata_fraction, progress=progress,
                        before=before if model.card.is_pair else None)
    found = candidates(scores, t_main=t_main, t_iso=t_iso)
    result = RunResult(scores, found, t_main, t_iso, started, now())
    if model.card.is_pair:
        result.before = before
    return result


def ignored_before(card, before: Tile | None) -> str | None:
    """What to tell a user who gave a before tile to a model that looks at one image."""
    if before is not None and not card.is_pair:
        return (f"model {card.id} looks at one image; the before tile {before.name} "
                "is not used")
    return None


def product_mismatch(tile: Tile, card) -> str | None:
    """A warning when a model meets imagery of another product (e.g. L1C model, L2A tile)."""
    product = (tile.product or "").upper()
    for other in ("L1C", "L2A"):
        if other in product and card.product.upper() != other:
            return (f"model {card.id} was trained on Sentinel-2 {card.product} imagery; "
                    f"this tile is {other} ({tile.product}), so its scores may be off")
    return None


def scene_record(tile: Tile) -> dict:
    """A tile as a row of the scenes table (footprint in lon/lat, bands as the run named them)."""
    west, south, east, north = tile.lonlat_bounds()
    return {"path": str(Path(tile.path).resolve()), "name": tile.name,
            "sha256": sha256_of(tile.path), "crs": tile.crs.to_string(),
            "west": west, "south": south, "east": east, "north": north,
            "width": tile.width, "height": tile.height,
            "bands": ",".join(b or "" for b in tile.band_names), "product": tile.product,
            "period_start": tile.period_start, "period_end": tile.period_end}


def detection_rows(found: list[Candidate], crs, source: str, model_id: str, t_main: float,
                   period: tuple[str | None, str | None], properties: dict | None = None,
                   content_ids: bool = False) -> list[dict]:
    """Candidates (in `crs`) as rows of the detections table: RFC 7946 footprint, centre and
    bounds in lon/lat, score, area. `properties` are added to each row's own (score_max,
    patches). With `content_ids`, each row's external id is the sha1 of its footprint, so
    storing the same candidate again under the same source is refused rather than doubled."""
    rows = []
    for cand in found:
        geometry = to_lonlat_geojson(cand.geometry, crs)
        text = json.dumps(geometry)
        shape = shapely.geometry.shape(geometry)
        centre = shape.representative_point()
        west, south, east, north = shape.bounds
        row = {"source": source, "geometry": text, "lon": centre.x, "lat": centre.y,
               "west": west, "south": south, "east": east, "north": north,
               "score": cand.score, "area_ha": cand.area_ha, "area_source": "footprint",
               "period_start": period[0], "period_end": period[1],
               "model_id": model_id, "threshold": t_main,
               "properties": {"score_max": cand.score_max, "patches": cand.patches,
                              **(properties or {})}}
        if content_ids:
            row["external_id"] = "sha1:" + hashlib.sha1(text.encode()).hexdigest()
        rows.append(row)
    return rows


def store_result(db, result: RunResult) -> int:
    """Record the scene, the run and its candidates; returns the run id."""
    from ..store import add_scene, record_run   # here: detect without --db never loads sqlite-utils

    if result.before is not None:
        add_scene(db, scene_record(result.before))   # shown as the before image in Review
    s = result.scores
    tile = s.tile
    scene = scene_record(tile)
    run = {"model_id": s.card.id, "model_sha256": s.model_sha256, "t_raw": s.card.t_raw,
           "t_main": result.t_main, "t_iso": result.t_iso, "device": s.device,
           "patches": len(s), "candidates": len(result.candidates), "seconds": s.seconds,
           "started_at": result.started_at, "finished_at": result.finished_at,
           "software": f"mining-review {__version__}",
           "notes": "; ".join(n for n in (
               product_mismatch(tile, s.card),
               f"compared with the earlier tile {result.before.name}" if result.before else None)
               if n) or None}
    detections = detection_rows(
        result.candidates, tile.crs, source=f"run:{s.card.id}", model_id=s.card.id,
        t_main=result.t_main, period=(tile.period_start, tile.period_end),
        properties={"tile": tile.name, "t_iso": result.t_iso})
    return record_run(db, scene, run, detections)


def output_files(result: RunResult, out: Path, raw: Path | str | bool | None = None) -> list[tuple[dict, Path]]:
    """The GeoJSON files of a run, as (collection, path): the candidates to `out`; with `raw`
    True (or naming `out` itself) every scored patch to `out` instead, with `raw` another
    path every scored patch there as well."""
    out = Path(out)
    if raw is True or (raw and Path(raw).resolve() == out.resolve()):
        return [(result.raw_geojson(), out)]
    outputs = [(result.candidates_geojson(), out)]
    if raw:
        outputs.append((result.raw_geojson(), Path(raw)))
    return outputs


def save_run(outputs: list[tuple[dict, Path]], store: Callable[[], int] | None = None) -> int | None:
    """Write a run's GeoJSON files and store it, all or nothing: every file is written beside
    its target first, `store()` (the database write) runs next, and only then do the files
    take their names; a failure anywhere leaves no file and no run behind. Returns the run
    id `store()` gave (None without `store`)."""
    with files.staged() as staged:
        for collection, path in outputs:
            staged.stage(path, json.dumps(collection))
        run_id = store() if store is not None else None
        staged.commit()
    return run_id
