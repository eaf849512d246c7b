"""Learning from verdicts: a change classifier trained on the review database.

Reviewed detections are the labels (verified 1, false positive 0; unsure and pending are
left out). For each, a before and an after chip are cut from the imagery its verdict was
based on (a stored scene named in the verdict), or from stored scenes covering it when
the verdict recorded none; the before chip is read on the after chip's grid. Detections
are split into training and validation by site (detections within SITE_DISTANCE_M of each
other stay on the same side), several kinds of model are trained (review/pairnet.py), and
the first kind listed (the change-statistics model by default) is kept unless another is
clearly better on validation (a paired bootstrap of ROC AUC). Its threshold is chosen on validation
for a stated precision. Training is seeded and runs on the CPU with deterministic
operations, so two runs on the same database give the same model.

The model is written with a card beside it (PATH.json, the published cards' format
extended with the input kind and the training record); nothing is written unless
training succeeded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BandError, ImageryError, ReviewError
from ..progress import Progress

SITE_DISTANCE_M = 3000.0
MIN_PER_LABEL = 10
PATCH = 48
BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
PRECISION_TARGET = 0.9
VALIDATION_FRACTION = 0.25
KINDS = ("features", "cnn", "trunk")
FEATURE_STEPS = 300
# The features kind also describes the central 16 x 16 pixels (160 m) of each 48-px pair,
# where the reviewed place is (bench/RESULTS.md).
CENTRES = (16,)
DEFAULT_BASE = "44px_v2.6_rgb_ir"
# The published detector whose view of the after image the features kind adds.
DEFAULT_DETECTOR = "48px_v3.2"
BOOTSTRAP = 1000


class TrainingError(ReviewError):
    """The review database cannot give a training set, or training cannot start."""


# ------------------------------------------------------------------ imagery of a verdict


def _scene_label(scene: dict) -> str:
    """How a verdict names a stored scene it was based on (review/chips.py Chip.imagery)."""
    return f"{scene['name']} ({scene.get('product') or 'GeoTIFF'})"


def all_scenes(db) -> list[dict]:
    cursor = db.execute("select * from scenes order by id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _covers(scene: dict, detection: dict) -> bool:
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


MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def output_path(folder: Path, name: str) -> Path:
    """Where a model named `name` is written in the models folder (made if missing);
    refuses names that are not plain file names, that a published model uses, or that an
    existing model has (training never overwrites a model someone may be using)."""
    from ..detection.models import CARDS

    name = name.strip().removesuffix(".keras")
    if not MODEL_NAME.match(name):
        raise TrainingError(f"{name!r} cannot name a model: use letters, digits, '-', '_' "
                            "and '.', starting with a letter or digit")
    if name in CARDS:
        raise TrainingError(f"{name} is a published model's name: choose another")
    out = Path(folder) / f"{name}.keras"
    if out.exists() or out.with_suffix(".json").exists():
        raise TrainingError(f"a model named {name} already exists in {folder}: choose another "
                            "name")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def band_recipe(band: str) -> str:
    """How a band the pairs lack is made for the detector, in words (for the card)."""
    from ..detection.pairnet import BAND_MIXES

    return " + ".join(f"{w:g} x {b}" for b, w in BAND_MIXES[band].items())


def _id_list(ids: list[int], limit: int = 8) -> str:
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


# ------------------------------------------------------------------ splitting by site


def site_groups(lon: np.ndarray, lat: np.ndarray, distance_m: float = SITE_DISTANCE_M) -> np.ndarray:
    """Group number per detection: detections within distance_m of each other (chained)
    share a group."""
    n = len(lon)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        dx = (lon[i + 1:] - lon[i]) * 111_320.0 * math.cos(math.radians(lat[i]))
        dy = (lat[i + 1:] - lat[i]) * 110_574.0
        for j in np.flatnonzero(np.hypot(dx, dy) < distance_m):
            parent[find(i + 1 + int(j))] = find(i)
    roots = [find(i) for i in range(n)]
    numbering = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    return np.array([numbering[r] for r in roots])


def split_by_site(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation detections: whole site groups, drawn (seeded) until each
    label has about `fraction` of its detections in validation."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.unique(groups))
    target = {k: max(1, round(fraction * (labels == k).sum())) for k in (0, 1)}
    have = {0: 0, 1: 0}
    validation = np.zeros(len(labels), dtype=bool)
    for group in order:
        members = groups == group
        counts = {k: int((labels[members] == k).sum()) for k in (0, 1)}
        if any(counts[k] and have[k] < target[k] for k in (0, 1)) and \
                all(have[k] + counts[k] <= target[k] + 2 for k in (0, 1)):
            validation |= members
            for k in (0, 1):
                have[k] += counts[k]
    return validation


def folds_by_site(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per detection: whole site groups, labels spread evenly (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    per_fold = np.zeros((k, 2))
    unique = rng.permutation(np.unique(groups))
    sizes = [(groups == g).sum() for g in unique]
    for g in [unique[i] for i in np.argsort(sizes, kind="stable")[::-1]]:
        members = groups == g
        counts = np.array([(labels[members] == 0).sum(), (labels[members] == 1).sum()])
        label = int(np.argmax(counts))
        target = int(np.argmin(per_fold[:, label] + per_fold.sum(axis=1) * 1e-3))
        fold[members] = target
        per_fold[target] += counts
    return fold


# ------------------------------------------------------------------ metrics


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def precision_recall_at(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    predicted = s >= threshold
    tp = int((predicted & (y == 1)).sum())
    precision = tp / predicted.sum() if predicted.sum() else float("nan")
    recall = tp / (y == 1).sum() if (y == 1).sum() else float("nan")
    return float(precision), float(recall)


def metrics_with_intervals(y: np.ndarray, s: np.ndarray, threshold: float, seed: int = 0,
                           rounds: int = BOOTSTRAP) -> dict:
    """ROC AUC, precision and recall at the threshold, each [value, low, high] with a
    bootstrap 95% percentile interval (seeded), and the number of detections."""
    rng = np.random.default_rng(seed)
    precision, recall = precision_recall_at(y, s, threshold)
    values = {"roc_auc": roc_auc(y, s), "precision": precision, "recall": recall}
    draws = {k: [] for k in values}
    for _ in range(rounds):
        pick = rng.integers(0, len(y), len(y))
        yy, ss = y[pick], s[pick]
        if len(np.unique(yy)) < 2:
            continue
        p, r = precision_recall_at(yy, ss, threshold)
        draws["roc_auc"].append(roc_auc(yy, ss))
        draws["precision"].append(p)
        draws["recall"].append(r)
    out = {}
    for k, v in values.items():
        d = np.array([x for x in draws[k] if not math.isnan(x)])
        low, high = (np.percentile(d, [2.5, 97.5]) if len(d) else (float("nan"),) * 2)
        out[k] = [_round(v), _round(low), _round(high)]
    out["detections"] = int(len(y))
    out["verified"] = int((y == 1).sum())
    out["threshold"] = _round(threshold)
    return out


def _round(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


def threshold_for_precision(y: np.ndarray, s: np.ndarray, target: float = PRECISION_TARGET
                            ) -> tuple[float, bool]:
    """The lowest score threshold whose precision on (y, s) reaches the target (most recall
    at that precision); when none does, the threshold of the best F1. Returns (threshold,
    whether the target was met)."""
    candidates = np.unique(s)[::-1]
    best = None
    for t in candidates:
        p, _ = precision_recall_at(y, s, t)
        if not math.isnan(p) and p >= target:
            best = float(t)
    if best is not None:
        return best, True
    f1 = []
    for t in candidates:
        p, r = precision_recall_at(y, s, t)
        f1.append(0 if (math.isnan(p) or p + r == 0) else 2 * p * r / (p + r))
    return float(candidates[int(np.argmax(f1))]) if len(candidates) else 0.5, False


# ------------------------------------------------------------------ training


def deterministic(seed: int):
    """Seed Python, NumPy and TensorFlow, make TensorFlow's operations deterministic and
    keep training on the CPU; returns keras."""
    from ..detection.tensorflow_runtime import tensorflow

    tf = tensorflow()
    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):
        pass                        # devices already initialised: tf.device below decides
    import keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def scaled(card_like_bands, pairs: np.ndarray) -> np.ndarray:
    """Digital numbers -> the trained models' input: reflectance clipped to [0, 1]."""
    return np.clip(pairs / np.float32(10000), 0, 1).astype(np.float32)


def dihedral(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eight flips and quarter turns of every patch (augmentation)."""
    views = []
    for k in range(4):
        turned = np.rot90(x, k, axes=(1, 2))
        views += [turned, turned[:, :, ::-1]]
    return np.concatenate(views), np.tile(y, 8)


def class_weights(y: np.ndarray) -> dict:
    counts = np.bincount(y, minlength=2).astype(float)
    return {k: len(y) / (2 * counts[k]) if counts[k] else 1.0 for k in (0, 1)}


@dataclass
class Candidate:
    kind: str
    model: object
    validation_scores: np.ndarray
    roc_auc: float
    epochs: int


def _fit(keras, model, x, y, xv, yv, epochs, batch, patience, lr):
    """Train with early stopping on validation loss (best weights kept); returns the
    epochs the kept weights had. Without validation detections (the refit) it trains for
    exactly `epochs`."""
    from ..detection.tensorflow_runtime import tensorflow_chatter_dropped

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    if not len(xv):
        with tensorflow_chatter_dropped():
            model.fit(x, y, epochs=epochs, batch_size=batch, class_weight=class_weights(y),
                      verbose=0, shuffle=True)
        return epochs
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         restore_best_weights=True)
    with tensorflow_chatter_dropped():
        history = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=batch,
                            class_weight=class_weights(y), callbacks=[stop], verbose=0,
                            shuffle=True)
    ran = len(history.history["loss"])
    return ran - patience if stop.stopped_epoch else ran


def _fit_steps(keras, model, x, y, steps, lr=3e-3):
    """Full-batch training for a fixed number of steps, classes weighted equally.

    No early stopping: on a hundred detections the validation split is too small to pick
    an epoch on without fitting its noise, and it is kept for choosing between kinds and
    for the threshold and metrics on the card."""
    columns = int(model.outputs[0].shape[-1])
    weights = class_weights(y)
    from ..detection.tensorflow_runtime import tensorflow_chatter_dropped

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    with tensorflow_chatter_dropped():
        model.fit(x, np.repeat(y[:, None], columns, axis=1).astype("float32"), epochs=steps,
                  batch_size=len(x), sample_weight=np.array([weights[int(k)] for k in y]),
                  verbose=0, shuffle=False)
    return steps


def train_candidate(kind: str, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
                    bands, seed: int, epochs: int | None = None, base=None,
                    detector=None) -> Candidate:
    """Train one kind of model on scaled pairs; scores on validation. `detector` (card,
    Keras model of a published detector, `detector_for`) adds its view of the after image
    to the features kind."""
    from ..detection import pairnet
    from ..detection.tensorflow_runtime import tensorflow

    keras = deterministic(seed)
    tf = tensorflow()
    patch = x.shape[1]
    with tf.device("/CPU:0"):
        if kind == "features":
            layer = pairnet.PairFeatures(bands, centres=CENTRES)
            view = (pairnet.detector_embedding(bands, patch, detector[1], detector[0].bands)
                    if detector else None)

            def described(batch):
                stats = np.asarray(layer(batch))
                return stats if view is None else np.hstack([stats, np.asarray(view(batch))])

            features = np.concatenate([described(x[i:i + 64]) for i in range(0, len(x), 64)])
            training, head = pairnet.feature_heads(features.shape[1], features)
            used = _fit_steps(keras, training, features, y, epochs or FEATURE_STEPS)
            model = pairnet.features_model(bands, patch, head, CENTRES, view)
        elif kind == "cnn":
            model = pairnet.cnn_model(bands, patch)
            xa, ya = dihedral(x, y)
            used = _fit(keras, model, xa, ya, xv, yv, epochs or 40, 32, 8, 1e-3)
        elif kind == "trunk":
            from ..detection.models import UNIT_NORM_MEAN, UNIT_NORM_STD

            card, keras_base = base
            model = pairnet.trunk_model(bands, patch, keras_base, card.bands,
                                        [UNIT_NORM_MEAN[b] for b in card.bands],
                                        [UNIT_NORM_STD[b] for b in card.bands])
            xa, ya = dihedral(x, y)
            used = _fit(keras, model, xa, ya, xv, yv, epochs or 40, 32, 8, 5e-4)
        else:
            raise TrainingError(f"unknown model kind {kind!r}: use one of {', '.join(KINDS)}")
        scores = predict(model, xv)
    return Candidate(kind, model, scores, roc_auc(yv, scores) if len(yv) else float("nan"), used)


def predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    if not len(x):
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False))[:, 0]
                           for i in range(0, len(x), batch)]).astype(np.float32)


def base_for(spec: str | None, bands) -> tuple | None:
    """(card, keras model) of a published single-image model whose bands the pair has and
    whose first layers are convolutions, or None (the trunk kind is then not trained)."""
    if not spec:
        return None
    from ..errors import ModelError
    from ..detection.models import load_model

    try:
        loaded = load_model(spec)
    except ModelError:
        return None                  # offline or unknown: the other kinds are still compared
    card = loaded.card
    if card.is_pair or card.scaling != "unit_norm" or not set(card.bands) <= set(bands):
        return None
    from ..detection.pairnet import trunk_layers

    if not trunk_layers(loaded.keras_model):
        return None
    return card, loaded.keras_model


def detector_for(spec: str | None, bands=BANDS, patch: int = PATCH) -> tuple[tuple | None, str | None]:
    """((card, Keras model) of a published single-image detector whose view of the after
    image the features kind can add, None), or (None, why not)."""
    if not spec:
        return None, "none was asked for"
    from ..errors import ModelError
    from ..detection.models import load_model

    try:
        loaded = load_model(spec)
    except ModelError as exc:
        return None, f"{spec} could not be loaded ({exc})"
    from ..detection.pairnet import band_mix, detector_layers

    card = loaded.card
    if card.is_pair or card.scaling != "reflectance" or card.patch_size != patch:
        return None, (f"{spec} is not a single-image {patch}-px model on reflectance")
    if band_mix(bands, card.bands) is None:
        return None, f"{spec}'s bands cannot be made from {', '.join(bands)}"
    if not detector_layers(loaded.keras_model):
        return None, f"{spec} is not a Sequential model with a penultimate dense layer to read"
    return (card, loaded.keras_model), None


@dataclass
class TrainReport:
    path: Path
    card_path: Path
    card: dict
    candidates: dict
    seconds: float

    def summary(self) -> str:
        v = self.card["validation"]
        roc, precision, recall = v["roc_auc"], v["precision"], v["recall"]
        tried = ", ".join(f"{k} {a:.3f}" for k, a in self.candidates.items())

        def num(x):
            return "n/a" if x is None else f"{x:.2f}"

        kept = "kept" if len(self.candidates) > 1 else "trained"
        return (f"{self.card['kind']} model {kept} (validation ROC AUC: {tried}); "
                f"validation ROC AUC {num(roc[0])} (95% {num(roc[1])} to {num(roc[2])}), "
                f"precision {num(precision[0])} and recall {num(recall[0])} at threshold "
                f"{self.card['t_main']:.3f}; trained on {self.card['training_set']['train']} "
                f"detections, validated on {self.card['training_set']['validation']}"
                + (f", then trained again on all {self.card['training_set']['size']}"
                   if self.card["training_set"].get("refit_on_all") else "")
                + "".join(f"; {kind} not trained: {why}"
                          for kind, why in (self.card.get("skipped") or {}).items())
                + (f"; the features kind made without a published detector's view: "
                   f"{self.card['detector_unused']}" if self.card.get("detector_unused") else "")
                + f", in {self.seconds:.0f} s; written to {self.path} with its card {self.card_path.name}")


def clearly_better(y: np.ndarray, challenger: np.ndarray, incumbent: np.ndarray, seed: int,
                   rounds: int = BOOTSTRAP) -> bool:
    """Whether the challenger's validation ROC AUC beats the incumbent's beyond the luck
    of a small validation set: higher in at least 97.5% of paired bootstrap resamples.

    With thirty validation detections, two kinds' AUCs differ by a few hundredths by
    chance; swapping to whichever happens to be higher cost about 0.04 of cross-validated
    AUC on the fixture pairs (bench/RESULTS.md)."""
    if not len(y) or len(np.unique(y)) < 2:
        return False
    rng = np.random.default_rng(seed)
    wins = total = 0
    for _ in range(rounds):
        pick = rng.integers(0, len(y), len(y))
        if len(np.unique(y[pick])) < 2:
            continue
        total += 1
        wins += roc_auc(y[pick], challenger[pick]) > roc_auc(y[pick], incumbent[pick])
    return total > 0 and wins >= 0.975 * total


def refit_on_all(kept: Candidate, ts: TrainingSet, seed: int, base=None,
                 detector=None) -> Candidate:
    """The kept kind trained again on every detection of `ts` for the epochs (or steps)
    its held-out model used; validation scores stay those of the held-out model."""
    x = scaled(BANDS, ts.pairs)
    model = train_candidate(kept.kind, x, ts.labels, x[:0], ts.labels[:0], BANDS, seed,
                            kept.epochs, base, detector).model
    return dataclasses.replace(kept, model=model)


def fit(ts: TrainingSet, seed: int = 1, kinds=KINDS, base=None, epochs: int | None = None,
        validation: np.ndarray | None = None, progress: Progress | None = None,
        bands=BANDS, detector=None) -> tuple[Candidate, dict, np.ndarray]:
    """Split by site, train every kind, and keep the first kind listed unless another is
    clearly better on validation (`clearly_better`). Returns (kept, {kind: validation
    AUC}, validation mask)."""
    x = scaled(bands, ts.pairs)
    y = ts.labels
    if validation is None:
        validation = split_by_site(y, site_groups(ts.lon, ts.lat), VALIDATION_FRACTION, seed)
    kinds = [k for k in kinds if k != "trunk" or base is not None]
    results = {}
    best = None
    for n, kind in enumerate(kinds):
        if progress:
            progress(n, len(kinds), f"training {kind}")
        candidate = train_candidate(kind, x[~validation], y[~validation], x[validation],
                                    y[validation], bands, seed, epochs, base, detector)
        results[kind] = round(candidate.roc_auc, 4)
        if best is None or clearly_better(y[validation], candidate.validation_scores,
                                          best.validation_scores, seed):
            best = candidate
    if progress:
        progress(len(kinds), len(kinds), "trained")
    return best, results, validation


def train(db, out: Path, base: str | None = DEFAULT_BASE, seed: int = 1, kinds=KINDS,
          epochs: int | None = None, precision: float = PRECISION_TARGET,
          progress: Progress | None = None, database_name: str | None = None,
          refit: bool = True, detector: str | None = DEFAULT_DETECTOR) -> TrainReport:
    """Train on the reviewed detections and write OUT.keras with its card OUT.json.

    With `refit` (the default) the kept kind is then trained again on every reviewed
    detection, validation ones included, for as many epochs as the held-out model used;
    without it the model written is the one the validation figures describe, so
    `evaluate` can still score it on the validation detections."""
    started = time.perf_counter()
    out = Path(out)
    if out.suffix != ".keras":
        raise TrainingError(f"{out.name}: a trained model is written as a .keras file")
    if not out.parent.is_dir():
        raise TrainingError(f"{out.parent}: no such folder to write the model in")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise TrainingError(f"unknown model kind {unknown[0]!r}: use {', '.join(KINDS)}")
    if not kinds:
        raise TrainingError(f"no kind of model to train: use one or more of {', '.join(KINDS)}")

    def stage(share: float, offset: float):
        if progress is None:
            return None
        return lambda done, total, what: progress(
            int(1000 * (offset + share * done / max(total or 1, 1))), 1000, what)

    base_model = base_for(base, BANDS) if "trunk" in kinds else None
    skipped = {}
    if "trunk" in kinds and base_model is None:
        skipped["trunk"] = (f"the published model it starts from, {base}, could not be used "
                            "(not downloadable or not in the models folder, or its bands are "
                            f"not among {', '.join(BANDS)})" if base else
                            "it starts from a published model, and none was given")
    if all(kind in skipped for kind in kinds):
        raise TrainingError(f"nothing to train: trunk was the only kind asked for, and "
                            f"{skipped['trunk']}; add the features or cnn kind")
    ts = training_set(db, progress=stage(0.2, 0.0))
    # Only a detector that was asked for and could not be used is reported as unused.
    detector_model, detector_unused = (detector_for(detector) if "features" in kinds and detector
                                       else (None, None))
    best, results, validation = fit(ts, seed=seed, kinds=kinds, base=base_model, epochs=epochs,
                                    progress=stage(0.7 if refit else 0.8, 0.2),
                                    detector=detector_model)
    yv = ts.labels[validation]
    threshold, met = threshold_for_precision(yv, best.validation_scores, precision)
    metrics = metrics_with_intervals(yv, best.validation_scores, threshold, seed=seed)
    trained_on = ~validation
    if refit:
        # The kept kind, trained again the same way on every reviewed detection: on a
        # hundred detections a quarter more data is worth more than the held-out model
        # (bench/RESULTS.md). The card's validation figures stay those of the held-out model.
        if progress:
            stage(0.1, 0.9)(0, 1, f"training {best.kind} on all {len(ts)} detections")
        best = refit_on_all(best, ts, seed, base_model, detector_model)
        trained_on = np.ones(len(ts), dtype=bool)
        if progress:
            stage(0.1, 0.9)(1, 1, "trained")
    products = " ".join(ts.products).upper()
    product = "L1C" if "L1C" in products and "L2A" not in products else "L2A"
    card = {
        "id": out.stem, "patch_size": PATCH, "bands": list(BANDS), "input": "pair",
        "scaling": "reflectance", "output": "sigmoid", "t_raw": 0.0,
        "t_main": round(threshold, 6), "t_iso": round(max(threshold, (1 + threshold) / 2), 6),
        "product": product,
        "description": (f"change classifier ({best.kind}) trained on {len(ts)} reviewed "
                        f"detections; before and after {PATCH}-px chips stacked as channels"
                        + (f", with {detector_model[0].id}'s view of the after chip"
                           if best.kind == "features" and detector_model else "")),
        "kind": best.kind, "candidates": results, "skipped": skipped,
        "selection": (f"{kinds[0]} unless another kind's validation ROC AUC is higher in "
                      f"97.5% of paired bootstrap resamples"),
        "threshold_precision": precision, "threshold_meets_precision": met,
        "training_set": {"size": len(ts), "verified": int(ts.labels.sum()),
                         "false_positive": int((ts.labels == 0).sum()),
                         "train": int((~validation).sum()), "validation": int(validation.sum()),
                         "sha256": ts.sha256, "split": f"by site, {SITE_DISTANCE_M / 1000:g} km",
                         "database": database_name,
                         "refit_on_all": refit,
                         "train_ids": [int(i) for i in ts.ids[trained_on]],
                         "validation_ids": [int(i) for i in ts.ids[validation]]},
        "validation": metrics,
        "parent": (base_model[0].id if best.kind == "trunk" else
                   detector_model[0].id if best.kind == "features" and detector_model else None),
        "centres": list(CENTRES) if best.kind == "features" else None,
        "detector": ({"model": detector_model[0].id, "image": "after",
                      "layer": "penultimate dense layer, frozen",
                      "bands_made": {b: band_recipe(b) for b in detector_model[0].bands
                                     if b not in BANDS}}
                     if best.kind == "features" and detector_model else None),
        "detector_unused": detector_unused if best.kind == "features" else None,
        "base_offered": base_model[0].id if base_model else None,
        "epochs": best.epochs, "seed": seed,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    from ..detection.models import sha256_of

    partial = out.with_name(f".{out.stem}.partial.keras")
    card_path = out.with_suffix(".json")
    card_partial = card_path.with_name(f".{card_path.name}.partial")
    try:
        best.model.save(partial)
        card["sha256"] = sha256_of(partial)
        card_partial.write_text(json.dumps(card, indent=1))
        partial.replace(out)
        card_partial.replace(card_path)
    finally:
        partial.unlink(missing_ok=True)
        card_partial.unlink(missing_ok=True)
    return TrainReport(out, card_path, card, results, time.perf_counter() - started)


def cross_validate(ts: TrainingSet, folds: int = 5, seed: int = 1, kinds=KINDS, base=None,
                   epochs: int | None = None, progress: Progress | None = None,
                   refit: bool = True, detector=None) -> dict:
    """Out-of-fold scores of the whole procedure `train` runs (inner site split,
    candidates, choice, refit on the fold's training detections), folds by site; pooled
    ROC AUC with a bootstrap 95% interval, and per-kind AUCs. `base` and `detector` are
    loaded models (`base_for`, `detector_for`), not names: without them the trunk kind
    is left out and the features kind has no detector's view, unlike `train`'s defaults."""
    groups = site_groups(ts.lon, ts.lat)
    fold = folds_by_site(ts.labels, groups, folds, seed)
    scores = np.zeros(len(ts), dtype=np.float32)
    chosen = []
    for f in range(folds):
        test = fold == f
        inner = TrainingSet(ts.ids[~test], ts.labels[~test], ts.pairs[~test], ts.lon[~test],
                            ts.lat[~test])
        x_test = scaled(BANDS, ts.pairs[test])
        best, results, _ = fit(inner, seed=seed, kinds=kinds, base=base, epochs=epochs,
                               detector=detector)
        if refit:
            best = refit_on_all(best, inner, seed, base, detector)
        chosen.append(best.kind)
        scores[test] = predict(best.model, x_test)
        if progress:
            progress(f + 1, folds, "folds")
    metrics = metrics_with_intervals(ts.labels, scores, 0.5, seed=seed)
    return {"roc_auc": metrics["roc_auc"], "folds": folds, "chosen": chosen,
            "detections": len(ts), "scores": scores, "fold": fold}


os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
