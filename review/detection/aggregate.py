"""Several looks at one place: score each period's tile on one shared grid and combine each
patch's scores across periods before post-processing.

A one-off false positive (a cloud edge, haze, a flooded field) rarely scores high in every
period; a mine does. The median (default), mean or max of a patch's scores over the
periods that saw it replaces its single score, as earthrise's cumulative maps and the
DataKind study do; the combined run uses the cumulative thresholds (0.55 / 0.8) unless
told otherwise. Each stored candidate keeps its per-period scores, so a reviewer sees
which looks agreed.

Patches sit on the detector's CRS-anchored grid, so tiles of one place in one CRS at one
resolution share patch positions; tiles that are not on one grid are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from rasterio.transform import from_origin

from ..errors import ReviewError
from ..progress import Progress
from ..store import now
from .candidates import Candidate, candidates, candidates_geojson, raw_geojson
from .detect import MAX_NODATA_FRACTION, PatchScores, score_tile
from .imagery import Tile
from .models import LoadedModel

AGGREGATES = {"median": np.nanmedian, "mean": np.nanmean, "max": np.nanmax}
CUMULATIVE_T_MAIN, CUMULATIVE_T_ISO = 0.55, 0.8


class AggregateError(ReviewError):
    """Periods or tiles that cannot be combined."""


def parse_periods(text: str) -> list[tuple[str, str]]:
    """'2019-01-01/2019-12-31,2020-01-01/2020-12-31' as (start, end) pairs, checked."""
    periods = []
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        start, _, end = part.partition("/")
        try:
            if date.fromisoformat(start) > date.fromisoformat(end):
                raise ValueError
        except ValueError as exc:
            raise AggregateError(f"{part!r} is not a period START/END of ISO dates, e.g. "
                                 "2023-01-01/2023-12-31") from exc
        periods.append((start, end))
    return check_periods(periods)


def check_periods(periods: list[tuple[str | None, str | None]]) -> list[tuple[str, str]]:
    if len(periods) < 2:
        raise AggregateError("combining needs at least two periods")
    ordered = sorted(periods, key=lambda p: (p[0] or "", p[1] or ""))
    for (start_a, end_a), (start_b, end_b) in zip(ordered, ordered[1:]):
        if not (start_a and end_a and start_b and end_b):
            raise AggregateError("every tile to combine needs its period (start and end)")
        if start_b <= end_a:
            raise AggregateError(f"the periods {start_a}/{end_a} and {start_b}/{end_b} overlap; "
                                 "each look must cover its own dates")
    return ordered


@dataclass
class AggregateResult:
    scores: PatchScores              # combined, on the grid of all the looks
    per_period: np.ndarray           # (patches, periods), NaN where a look did not score it
    periods: list[tuple[str, str]]
    how: str
    candidates: list[Candidate]
    t_main: float
    t_iso: float
    started_at: str
    finished_at: str

    def candidate_period_scores(self) -> list[dict[str, float | None]]:
        """For each candidate: the mean score of its patches in each period."""
        boxes = self.scores.footprints()
        import shapely

        patches = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
        tree = shapely.STRtree(patches)
        found = []
        for cand in self.candidates:
            members = [i for i in tree.query(cand.geometry, predicate="intersects")
                       if shapely.area(shapely.intersection(patches[i], cand.geometry)) > 0]
            means = np.nanmean(self.per_period[members], axis=0) if members else []
            found.append({f"{s}/{e}": (None if np.isnan(v) else round(float(v), 4))
                          for (s, e), v in zip(self.periods, means)})
        return found

    def summary(self) -> str:
        area = sum(c.area_ha for c in self.candidates)
        return (f"{len(self.scores)} patches over {len(self.periods)} periods combined by "
                f"{self.how} ({self.scores.card.id}); {len(self.candidates)} candidates, "
                f"{area:.1f} ha (patches kept from score {self.t_main:g}, or {self.t_iso:g} where one "
                f"stands alone: t_main, t_iso)")


def combine(results: list[PatchScores], periods: list[tuple[str, str]], how: str = "median",
            ) -> tuple[PatchScores, np.ndarray]:
    """One PatchScores whose score is the `how` of each patch's scores over the looks."""
    if how not in AGGREGATES:
        raise AggregateError(f"unknown way to combine {how!r}: use {', '.join(AGGREGATES)}")
    first = results[0].tile
    px, py = first.transform.a, -first.transform.e        # pixels need not be square
    for result in results[1:]:
        tile = result.tile
        if tile.crs != first.crs or not np.isclose(tile.transform.a, px) \
                or not np.isclose(-tile.transform.e, py):
            raise AggregateError(f"{tile.name} is not on the grid of {first.name} (CRS and pixel "
                                 "size must match); fetch or warp the looks onto one grid")
    # Each patch by the position of its top-left corner, in whole pixels from the first
    # look's corner; a look whose corner is off that pixel grid is not on the same grid.
    x0, y0 = first.transform.c, first.transform.f
    keys = []
    for result in results:
        t = result.tile.transform
        dx, dy = (t.c - x0) / px, (t.f - y0) / py
        if abs(dx - round(dx)) > 0.01 or abs(dy - round(dy)) > 0.01:
            raise AggregateError(f"{result.tile.name} is not on the grid of {first.name} (its "
                                 "pixels are shifted); fetch or warp the looks onto one grid")
        keys.append(np.column_stack([round(dx) + result.cols, round(dy) - result.rows]))
    unique = np.unique(np.concatenate(keys), axis=0)
    index = {tuple(k): i for i, k in enumerate(unique)}
    per_period = np.full((len(unique), len(results)), np.nan, dtype=np.float64)
    for column, (result, key) in enumerate(zip(results, keys)):
        rows = [index[tuple(k)] for k in key]
        per_period[rows, column] = result.scores
    combined = AGGREGATES[how](per_period, axis=1).astype(np.float32)
    left_px, top_px = unique[:, 0].min(), unique[:, 1].max()
    grid = replace(first, transform=from_origin(x0 + left_px * px, y0 + top_px * py, px, py),
                   period_start=periods[0][0], period_end=periods[-1][1])
    scores = PatchScores(tile=grid, card=results[0].card,
                         rows=(top_px - unique[:, 1]).astype(np.int64),
                         cols=(unique[:, 0] - left_px).astype(np.int64),
                         scores=combined, device=results[0].device,
                         seconds=sum(r.seconds for r in results),
                         skipped_nodata=sum(r.skipped_nodata for r in results),
                         model_sha256=results[0].model_sha256)
    return scores, per_period


def run_aggregate(tiles: list[Tile], model: LoadedModel, how: str = "median",
                  t_main: float | None = None, t_iso: float | None = None,
                  max_nodata_fraction: float = MAX_NODATA_FRACTION,
                  progress: Progress | None = None) -> AggregateResult:
    """Score every look, combine per patch, then the dual-threshold rule and the dissolve."""
    periods = check_periods([(t.period_start, t.period_end) for t in tiles])
    tiles = sorted(tiles, key=lambda t: (t.period_start, t.period_end))
    started = now()
    results = []
    for number, tile in enumerate(tiles, start=1):
        results.append(score_tile(tile, model, max_nodata_fraction=max_nodata_fraction))
        if progress:
            progress(number, len(tiles), f"{tile.name} ({tile.period_start} to {tile.period_end})")
    scores, per_period = combine(results, periods, how)
    t_main = CUMULATIVE_T_MAIN if t_main is None else t_main
    t_iso = CUMULATIVE_T_ISO if t_iso is None else t_iso
    found = candidates(scores, t_main=t_main, t_iso=t_iso)
    return AggregateResult(scores, per_period, periods, how, found, t_main, t_iso, started, now())


def aggregate_geojson(result: AggregateResult, raw: bool = False) -> dict:
    """The combined run as GeoJSON: its candidates, each with how the looks were combined
    (`aggregate`) and its score per period (`period_scores`); with `raw`, every patch with
    its combined score instead."""
    if raw:
        return raw_geojson(result.scores)
    collection = candidates_geojson(result.scores, result.candidates, result.t_main, result.t_iso)
    for feature, by_period in zip(collection["features"], result.candidate_period_scores()):
        feature["properties"].update(aggregate=result.how, period_scores=by_period)
    return collection


def store_aggregate(db, result: AggregateResult, tiles: list[Tile]) -> int:
    """Store every look as a scene (so Review shows each period), then the combined run;
    each candidate keeps its per-period scores. Returns the run id."""
    from .. import __version__
    from ..store import add_scene, record_run
    from .runs import detection_rows, scene_record

    latest = max(tiles, key=lambda t: (t.period_end, t.period_start))
    for tile in tiles:
        add_scene(db, scene_record(tile))
    s = result.scores
    run = {"model_id": s.card.id, "model_sha256": s.model_sha256, "t_raw": s.card.t_raw,
           "t_main": result.t_main, "t_iso": result.t_iso, "device": s.device,
           "patches": len(s), "candidates": len(result.candidates), "seconds": s.seconds,
           "started_at": result.started_at, "finished_at": result.finished_at,
           "software": f"mining-review {__version__}",
           "notes": f"{result.how} of {len(result.periods)} periods: "
                    + ", ".join(f"{a}/{b}" for a, b in result.periods)}
    rows = detection_rows(result.candidates, s.tile.crs, f"run:{s.card.id}:{result.how}",
                          s.card.id, result.t_main, (result.periods[0][0], result.periods[-1][1]),
                          properties={"aggregate": result.how, "t_iso": result.t_iso})
    for row, by_period in zip(rows, result.candidate_period_scores()):
        row["properties"] = {**row["properties"], "period_scores": by_period}
    return record_run(db, scene_record(latest), run, rows)
