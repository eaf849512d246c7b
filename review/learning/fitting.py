"""Fitting: the kinds of change model trained on scaled pairs, seeded and deterministic on
the CPU (`deterministic` puts back every global it set when training ends), and the choice
between them.

Several kinds of model are trained (detection.pairnet), and the first kind listed (the
change-statistics model by default) is kept unless another is clearly better on validation
(a paired bootstrap of ROC AUC, metrics.clearly_better). `fit` splits by site, trains and
chooses; `refit_on_all` trains the kept kind again on every detection. TensorFlow is
imported inside the functions that train, never at import.
"""
from __future__ import annotations

import dataclasses
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..progress import Progress
from .metrics import clearly_better, roc_auc
from .pairs import BANDS, PATCH, TrainingError, TrainingSet
from .selection import fit_change_head, inner_choice, keras_head
from .splits import VALIDATION_FRACTION, site_groups, split_by_site

KINDS = ("features", "cnn", "trunk")
# The features kind also describes the central 16 x 16 pixels (160 m) of each 48-px pair,
# where the reviewed place is (bench/RESULTS.md).
CENTRES = (16,)


DETERMINISM_VARIABLE = "TF_DETERMINISTIC_OPS"


@contextmanager
def deterministic(seed: int) -> Iterator:
    """While the block runs: Python, NumPy, TensorFlow and Keras seeded with `seed` and
    TensorFlow's operations deterministic (TF_DETERMINISTIC_OPS set too); yields keras.

    Everything it changed is put back when the block ends: the random states as they were,
    op determinism and the variable as before, so a process that trains and then detects
    (a test, a notebook) detects as it did. The Models page trains in a process of its
    own anyway (worker)."""
    from ..detection.tensorflow_runtime import tensorflow

    tf = tensorflow()
    import keras

    saved = _random_state(tf)
    variable = os.environ.get(DETERMINISM_VARIABLE)
    os.environ[DETERMINISM_VARIABLE] = "1"
    try:
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        yield keras
    finally:
        _restore_random_state(tf, saved)
        if variable is None:
            os.environ.pop(DETERMINISM_VARIABLE, None)
        else:
            os.environ[DETERMINISM_VARIABLE] = variable


def _random_state(tf) -> dict:
    """What keras.utils.set_random_seed and enable_op_determinism change, to put back."""
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config

    operation_seeds = getattr(context.context(), "_rng", None)
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "tf_seed": context.global_seed(),
            "tf_operation_seeds": operation_seeds.getstate() if operation_seeds else None,
            "keras": {name: global_state.get_global_attribute(name)
                      for name in (GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR)},
            "op_determinism": config.is_op_determinism_enabled()}


def _restore_random_state(tf, saved: dict) -> None:
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config

    random.setstate(saved["python"])
    np.random.set_state(saved["numpy"])
    tf.random.set_seed(saved["tf_seed"])
    if saved["tf_operation_seeds"] is not None:
        context.context()._rng.setstate(saved["tf_operation_seeds"])
    for name, value in saved["keras"].items():
        global_state.set_global_attribute(name, value)
    if not saved["op_determinism"]:
        config.disable_op_determinism()


def cpu_only() -> None:
    """Keep this process's TensorFlow off any GPU, when it has not started on one yet
    (training's own process: the CLI's, or the Models page's worker); otherwise
    `tf.device("/CPU:0")` in `train_candidate` decides. Process-wide, so never called
    from the dashboard's own process."""
    from ..detection.tensorflow_runtime import tensorflow

    try:
        tensorflow().config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):
        pass


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
    """Weight per label that gives both labels the same total weight."""
    counts = np.bincount(y, minlength=2).astype(float)
    return {k: len(y) / (2 * counts[k]) if counts[k] else 1.0 for k in (0, 1)}


@dataclass
class Candidate:
    """One trained kind: its model, validation scores and AUC, and the epochs it used."""

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


def feature_layers(bands, patch: int, detector=None) -> tuple:
    """(change statistics layer, the detector's view or None): what the features kind
    describes a pair with. `detector` is (card, Keras model) from `detector_for`."""
    from ..detection import pairnet

    layer = pairnet.PairFeatures(bands, centres=CENTRES, name="pair_features")
    view = (pairnet.detector_embedding(bands, patch, detector[1], detector[0].bands)
            if detector else None)
    return layer, view


def describe(layer, view, x: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Scaled pairs -> the features kind's description of each (statistics, then the
    detector's view), in batches of 64."""
    parts = []
    for i in range(0, len(x), 64):
        stats = np.asarray(layer(x[i:i + 64]))
        parts.append(stats if view is None else np.hstack([stats, np.asarray(view(x[i:i + 64]))]))
        if progress:
            progress(min(i + 64, len(x)), len(x), "describing the chips")
    width = layer.compute_output_shape((None,) + x.shape[1:])[1] + (
        int(view.outputs[0].shape[-1]) if view is not None else 0)
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)


def train_candidate(kind: str, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
                    bands, seed: int, epochs: int | None = None, base=None,
                    detector=None, groups: np.ndarray | None = None) -> Candidate:
    """Train one kind of model on scaled pairs; scores on validation. `detector` (card,
    Keras model of a published detector, `detector_for`) adds its view of the after image
    to the features kind, whose penalty is chosen by cross-validation by site (`groups`
    of the training detections; each its own site when None) inside these detections."""
    if groups is None:
        groups = np.arange(len(y))
    from ..detection import pairnet
    from ..detection.tensorflow_runtime import tensorflow

    tf = tensorflow()
    patch = x.shape[1]
    with deterministic(seed) as keras, tf.device("/CPU:0"):
        if kind == "features":
            layer, view = feature_layers(bands, patch, detector)
            features = describe(layer, view, x)
            choice = inner_choice(features, y, groups, seed)
            head = keras_head(fit_change_head(features, y, choice.penalty, seed))
            model = pairnet.features_model(bands, patch, head, CENTRES, view)
            used = 0
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
    """A Keras model's scores of scaled pairs, in batches, as float32."""
    if not len(x):
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False))[:, 0]
                           for i in range(0, len(x), batch)]).astype(np.float32)


def base_for(spec: str | None, bands) -> tuple | None:
    """(card, keras model) of a published single-image model whose bands the pair has and
    whose first layers are convolutions, or None (the trunk kind is then not trained)."""
    if not spec:
        return None
    from ..detection.models import load_model
    from ..errors import ModelError

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
    from ..detection.models import load_model
    from ..errors import ModelError

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


def refit_on_all(kept: Candidate, ts: TrainingSet, seed: int, base=None,
                 detector=None) -> Candidate:
    """The kept kind trained again on every detection of `ts` for the epochs (or steps)
    its held-out model used; validation scores stay those of the held-out model."""
    x = scaled(BANDS, ts.pairs)
    model = train_candidate(kept.kind, x, ts.labels, x[:0], ts.labels[:0], BANDS, seed,
                            kept.epochs, base, detector,
                            site_groups(ts.lon, ts.lat)).model
    return dataclasses.replace(kept, model=model)


def fit(ts: TrainingSet, seed: int = 1, kinds=KINDS, base=None, epochs: int | None = None,
        validation: np.ndarray | None = None, progress: Progress | None = None,
        bands=BANDS, detector=None) -> tuple[Candidate, dict, np.ndarray]:
    """Split by site, train every kind, and keep the first kind listed unless another is
    clearly better on validation (`clearly_better`). Returns (kept, {kind: validation
    AUC}, validation mask)."""
    x = scaled(bands, ts.pairs)
    y = ts.labels
    groups = site_groups(ts.lon, ts.lat)
    if validation is None:
        validation = split_by_site(y, groups, VALIDATION_FRACTION, seed)
    kinds = [k for k in kinds if k != "trunk" or base is not None]
    results = {}
    best = None
    for n, kind in enumerate(kinds):
        if progress:
            progress(n, len(kinds), f"training {kind}")
        candidate = train_candidate(kind, x[~validation], y[~validation], x[validation],
                                    y[validation], bands, seed, epochs, base, detector,
                                    groups[~validation])
        results[kind] = round(candidate.roc_auc, 4)
        if best is None or clearly_better(y[validation], candidate.validation_scores,
                                          best.validation_scores, seed):
            best = candidate
    if progress:
        progress(len(kinds), len(kinds), "trained")
    return best, results, validation
