"""The chips of a verdict: which stored scenes a verdict was based on, and the before/after
pair cut around a detection from them.

Reviewed detections are the labels (verified 1, false positive 0; unsure and pending are
left out). For each, a before and an after chip are cut from the imagery its verdict was
based on (a stored scene named in the verdict), or from stored scenes covering it when
the verdict recorded none; the before chip is read on the after chip's grid. The result is
a `TrainingSet`, what training (fitting, train) and evaluation (evaluate) read.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BandError, ImageryError, ReviewError
from ..progress import Progress

MIN_PER_LABEL = 10
PATCH = 48
BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")


class TrainingError(ReviewError):
    """The review database cannot give a training set, or training cannot start."""


# ------------------------------------------------------------------ imagery of a verdict


def _scene_label(scene: dict) -> str:
    """How a verdict names a stored scene it was based on (review_imagery.chips Chip.imagery)."""
    return f"{scene['name']} ({scene.get('product') or 'GeoTIFF'})"


def all_scenes(db) -> list[dict]:
    """Every stored scene as a dict, oldest id first."""
    cursor = db.execute("select * from scenes order by id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _covers(scene: dict, detection: dict) -> bool:
    """Whether the scene's bounds hold the detection's point."""
    return (scene["west"] <= detection["lon"] <= scene["east"]
            and scene["south"] <= detection["lat"] <= scene["north"])


def imagery_of(db, detection: dict, verdict: dict | None,
               scenes: list[dict] | None = None) -> tuple[dict | None, dict | None, str | None]:
    """(before scene, after scene, what is missing or None) for a detection: the stored
    scenes its verdict names, else stored scenes covering it (chips.pick_before_after)."""
    from ..review_imagery.chips import pick_before_after, scenes_covering

    scenes = all_scenes(db) if scenes is None else scenes
    named = {}
    for side in ("before", "after"):
        source = (verdict or {}).get(f"{side}_source")
        if not source:
            continue
        match = next((s for s in reversed(scenes) if _scene_label(s) == source
                      and _covers(s, detection)), None)
        if match is not None:
            if not Path(match["path"]).is_file():
                return None, None, f"{match['path']} (the {side} image of its verdict) is gone"
            named[side] = match
    before, after = named.get("before"), named.get("after")
    if before is None or after is None:
        covering = scenes_covering(db, detection)
        if after is None and before is not None:
            covering = [s for s in covering if (s["period_start"] or "") > (before["period_end"] or "")] or covering
        pick_before, pick_after = pick_before_after(covering, detection)
        after = after or pick_after
        if before is None and after is not None:
            start = after["period_start"] or after["period_end"] or ""
            before = next((s for s in reversed(covering) if s["id"] != after["id"]
                           and (s["period_end"] or s["period_start"] or "9999") < start), None)
    if after is None:
        return None, None, "no stored scene covers it"
    if before is None or before["id"] == after["id"]:
        return None, None, f"no stored scene covers it before {after['name']}"
    return before, after, None


def cut_pair(before_scene: dict, after_scene: dict, lon: float, lat: float,
             bands=BANDS, patch: int = PATCH) -> np.ndarray:
    """(patch, patch, 2 x bands) digital numbers: the before chip then the after chip, both
    centred on (lon, lat) on the after scene's grid (shifted to lie inside it); nodata 0."""
    from pyproj import Transformer
    from rasterio.windows import Window

    from ..detection.detect import on_grid_of
    from ..review_imagery.chips import scene_tile

    after = scene_tile(after_scene)
    before = on_grid_of(scene_tile(before_scene), after)
    stacks, valid = [], None
    x, y = Transformer.from_crs("EPSG:4326", after.crs, always_xy=True).transform(lon, lat)
    col, row = ~after.transform * (x, y)
    if after.width < patch or after.height < patch:
        raise ImageryError(f"{after.name} is {after.width}x{after.height} pixels, smaller than "
                           f"one {patch}-pixel patch")
    col0 = int(min(max(round(col - patch / 2), 0), after.width - patch))
    row0 = int(min(max(round(row - patch / 2), 0), after.height - patch))
    window = Window(col0, row0, patch, patch)
    for tile in (before, after):
        indexes = [tile.band_index(b) for b in bands]
        missing = [b for b, i in zip(bands, indexes) if i is None]
        if missing:
            raise BandError(f"{tile.name} lacks bands {', '.join(missing)} "
                            f"(the model needs {', '.join(bands)})")
        with tile.reader() as reader:
            data, ok = reader.read(window, indexes)
        stacks.append(data)
        valid = ok if valid is None else valid & ok
    pair = np.concatenate(stacks)
    pair[:, ~valid] = 0
    if valid.mean() < 0.5:
        raise ImageryError(f"{before.name} and {after.name} leave most of the chip at "
                           f"({lon:.5f}, {lat:.5f}) without pixels")
    return np.moveaxis(pair, 0, -1).astype(np.float32)



# ------------------------------------------------------------------ the training set


@dataclass
class TrainingSet:
    """Reviewed detections' before/after chips and labels, in detection id order."""

    ids: np.ndarray
    labels: np.ndarray
    pairs: np.ndarray              # (N, P, P, 2 x bands) digital numbers
    lon: np.ndarray
    lat: np.ndarray
    products: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sha256(self) -> str:
        """Digest of the ids, labels and chips: the same data gives the same digest."""
        digest = hashlib.sha256()
        digest.update(self.ids.astype("<i8").tobytes())
        digest.update(self.labels.astype("<i1").tobytes())
        digest.update(np.ascontiguousarray(self.pairs, dtype="<f4").tobytes())
        return digest.hexdigest()


def reviewed(db) -> list[dict]:
    """Verified and false-positive detections with the verdict that made them so."""
    cursor = db.execute(
        "select d.id, d.lon, d.lat, d.west, d.south, d.east, d.north, d.period_start, "
        "d.period_end, d.status, v.before_source, v.after_source from detections d "
        "left join verdicts v on v.id = (select max(id) from verdicts where detection_id = d.id "
        "and verdict = d.status) where d.status in ('verified', 'false_positive') order by d.id")
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def check_counts(rows: list[dict]) -> None:
    """Refuse rows with fewer than MIN_PER_LABEL of either label."""
    verified = sum(r["status"] == "verified" for r in rows)
    false = len(rows) - verified
    if verified < MIN_PER_LABEL or false < MIN_PER_LABEL:
        raise TrainingError(
            f"training needs at least {MIN_PER_LABEL} verified and {MIN_PER_LABEL} false-positive "
            f"detections; the database has {verified} verified and {false} false positives "
            "(unsure and pending ones are left out)")


def label_counts(db) -> tuple[int, int]:
    """(verified, false positives): the detections training would learn from."""
    rows = reviewed(db)
    verified = sum(r["status"] == "verified" for r in rows)
    return verified, len(rows) - verified


def _id_list(ids: list[int], limit: int = 8) -> str:
    """The first `limit` ids, and how many more."""
    text = ", ".join(str(i) for i in ids[:limit])
    return text + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def training_set(db, bands=BANDS, patch: int = PATCH, rows: list[dict] | None = None,
                 progress: Progress | None = None, labelled: bool = True) -> TrainingSet:
    """Before/after chips of reviewed detections (or of `rows`); refuses, naming them,
    detections whose imagery is missing."""
    rows = reviewed(db) if rows is None else rows
    if labelled:
        check_counts(rows)
    scenes = all_scenes(db)
    found, missing = [], {}
    for row in rows:
        before, after, why = imagery_of(db, row, row, scenes)
        if why:
            missing[row["id"]] = why
        else:
            found.append((row, before, after))
    if missing:
        ids = sorted(missing)
        first = missing[ids[0]]
        raise TrainingError(
            f"detections {_id_list(ids)} have no before and after imagery to learn from "
            f"(detection {ids[0]}: {first}); register the images their verdicts were based "
            "on as scenes, or review them again with stored imagery")
    chips, products = [], []
    for n, (row, before, after) in enumerate(found, start=1):
        chips.append(cut_pair(before, after, row["lon"], row["lat"], bands, patch))
        products.append(after.get("product") or "")
        if progress:
            progress(n, len(found), "cutting chips")
    return TrainingSet(ids=np.array([r["id"] for r, *_ in found], dtype=np.int64),
                       labels=np.array([1 if r.get("status") == "verified" else 0
                                        for r, *_ in found], dtype=np.int64),
                       pairs=np.stack(chips) if chips else np.zeros((0, patch, patch, 2 * len(bands)), "float32"),
                       lon=np.array([r["lon"] for r, *_ in found]),
                       lat=np.array([r["lat"] for r, *_ in found]), products=products)

