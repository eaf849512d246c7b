"""Training a change model on the review database and writing it with its card: the
`train` entry point (the CLI's train command and the Models page), `output_path` for a new
model's name, and the card.

Reviewed detections are the labels; their before/after chips come from the imagery their
verdicts were based on (pairs). The model written is trained on every reviewed detection
(unless `refit` is off), its penalty and threshold chosen by cross-validation by site
inside them (selection). Every figure the card reports comes from nested cross-validation
by site (nested): the same choices redone inside each outer fold, the outer fold scored,
over several fold draws, so the figures estimate how the model does on places it never
saw. The card also carries the labels-saved curve (label_curve). Training is seeded and
runs on the CPU with deterministic operations, so two runs on the same database give the
same model.

The model is written with a card beside it (PATH.json, the published cards' format
extended with the input kind and the training record); nothing is written unless
training succeeded, and the card takes its name only after the model has taken its own.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..progress import Progress
from . import label_curve
from .crossval import kinds_procedure
from .fitting import (CENTRES, KINDS, Candidate, base_for, cpu_only, describe, detector_for,
                      deterministic, feature_layers, fit, refit_on_all, scaled)
from .metrics import PRECISION_TARGET, threshold_for_precision
from .nested import DRAWS, features_procedure, nested_estimate
from .pairs import BANDS, PATCH, TrainingError, training_set
from .selection import INNER_FOLDS, PENALTIES, fit_change_head, inner_choice, keras_head
from .splits import SITE_DISTANCE_M, VALIDATION_FRACTION, site_groups, split_by_site

DEFAULT_BASE = "44px_v2.6_rgb_ir"
# The published detector whose view of the after image the features kind adds.
DEFAULT_DETECTOR = "48px_v3.2"
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


@dataclass
class TrainReport:
    """What `train` wrote (the model, its card) and what it tried, with a one-line summary."""

    path: Path
    card_path: Path
    card: dict
    candidates: dict
    seconds: float

    def summary(self) -> str:
        """What was trained and written, and how it does on places it never saw, in one line."""
        v = self.card["validation"]
        roc, precision, recall = v["roc_auc"], v["precision"], v["recall"]
        tset = self.card["training_set"]

        def num(x):
            return "n/a" if x is None else f"{x:.2f}"

        saved = ""
        curve = self.card.get("labels_curve")
        if curve:
            row = curve["saved"][-1]

            def after(n):
                return f"{n}" if n is not None else f"more than {curve['verdicts'][-1]}"

            saved = (f"; simulated reviewing reached ROC AUC {row['roc_auc']:.2f} after "
                     f"{after(row['uncertain'])} verdicts in the uncertain order, "
                     f"{after(row['random'])} at random")
        return (f"{self.card['kind']} model trained on "
                f"{tset['train']} of {tset['size']} reviewed detections; on places it never "
                f"saw (nested cross-validation by site, {v['fold_draws']} fold "
                f"draw{'s' if v['fold_draws'] != 1 else ''}, {v['choices_compared']} choices "
                f"compared inside): ROC AUC {num(roc[0])} (95% {num(roc[1])} to {num(roc[2])}), "
                f"precision {num(precision[0])} (95% {num(precision[1])} to "
                f"{num(precision[2])}) and recall {num(recall[0])} (95% {num(recall[1])} to "
                f"{num(recall[2])}) at thresholds chosen inside; threshold "
                f"{self.card['t_main']:.3f}"
                + (f"; {tset['validation']} held out by site for evaluate"
                   if tset['validation'] else "")
                + saved
                + "".join(f"; {kind} not trained: {why}"
                          for kind, why in (self.card.get("skipped") or {}).items())
                + (f"; the features kind made without a published detector's view: "
                   f"{self.card['detector_unused']}" if self.card.get("detector_unused") else "")
                + f", in {self.seconds:.0f} s; written to {self.path} with its card {self.card_path.name}")


DEFAULT_KINDS = ("features",)


def held_out_fraction(labels: np.ndarray) -> float:
    """The share of sites `--no-refit` holds out: a quarter, or more (at most half) so
    that evaluate has its minimum of each label to judge the model on."""
    from .evaluate import MIN_PER_LABEL

    fewest = int(np.bincount(labels, minlength=2).min())
    return min(0.5, max(VALIDATION_FRACTION, MIN_PER_LABEL / max(fewest, 1)))
# Fold draws of the labels-saved simulation inside train (bench/label_curve.py runs ten).
CURVE_DRAWS = 3


def train(db, out: Path, base: str | None = DEFAULT_BASE, seed: int = 1, kinds=DEFAULT_KINDS,
          epochs: int | None = None, precision: float = PRECISION_TARGET,
          progress: Progress | None = None, database_name: str | None = None,
          refit: bool = True, detector: str | None = DEFAULT_DETECTOR, draws: int = DRAWS,
          curve_draws: int = CURVE_DRAWS) -> TrainReport:
    """Train on the reviewed detections and write OUT.keras with its card OUT.json.

    With `refit` (the default) the model is trained on every reviewed detection; without
    it a quarter of the sites are held out (never seen by the written model), so `evaluate`
    can score it on them. Either way the card's figures are the nested ones (`draws` fold
    draws). With several `kinds`, each outer fold trains every kind (one fold draw: the
    convolutional kinds take a minute each).

    TensorFlow in the calling process is kept off any GPU it has not started on
    (`cpu_only`): the CLI and the Models page (worker) call it in a process of their own."""
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

    cpu_only()
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
    ts = training_set(db, progress=stage(0.1, 0.0))
    groups = site_groups(ts.lon, ts.lat)
    # Only a detector that was asked for and could not be used is reported as unused.
    detector_model, detector_unused = (detector_for(detector) if "features" in kinds and detector
                                       else (None, None))
    x = scaled(BANDS, ts.pairs)
    curve = None
    if tuple(kinds) == ("features",):
        # One kind: describe every chip once, and the nested loops only refit the head.
        from ..detection.pairnet import features_model

        layer, view = feature_layers(BANDS, PATCH, detector_model)
        with deterministic(seed):
            features = describe(layer, view, x, progress=stage(0.1, 0.1))
        estimate = nested_estimate(features_procedure(features, ts.labels, groups, precision),
                                   ts.labels, groups, seed, draws, progress=stage(0.2, 0.2))
        curve = label_curve.simulate(features, ts.labels, groups, seed,
                                     min(curve_draws, draws), precision,
                                     progress=stage(0.55, 0.4))
        validation = (np.zeros(len(ts), dtype=bool) if refit else
                      split_by_site(ts.labels, groups, held_out_fraction(ts.labels), seed))
        kept = ~validation
        choice = inner_choice(features[kept], ts.labels[kept], groups[kept], seed, precision)
        fitted = fit_change_head(features[kept], ts.labels[kept], choice.penalty, seed)
        with deterministic(seed):
            model = features_model(BANDS, PATCH, keras_head(fitted), CENTRES, view)
        threshold, met = choice.threshold, choice.threshold_met
        best = Candidate("features", model, np.zeros(0, np.float32), float("nan"), 0)
        results = {"features": estimate.metrics["roc_auc"][0]}
        penalty = choice.penalty
    else:
        # Several kinds: `fit` (by-site split, every kind, the clearly-better rule, the
        # threshold on its validation split, the refit) is itself the procedure the outer
        # folds run, once per fold: each fold trains every kind.
        estimate = nested_estimate(kinds_procedure(ts, kinds, base_model, detector_model,
                                                   epochs, precision, refit),
                                   ts.labels, groups, seed, draws=1,
                                   choices=len(kinds) + len(PENALTIES) - 1,
                                   progress=stage(0.6, 0.1))
        best, results, validation = fit(ts, seed=seed, kinds=kinds, base=base_model,
                                        epochs=epochs, progress=stage(0.2, 0.7),
                                        detector=detector_model)
        yv = ts.labels[validation]
        threshold, met = threshold_for_precision(yv, best.validation_scores, precision)
        if refit:
            if progress:
                stage(0.1, 0.9)(0, 1, f"training {best.kind} on all {len(ts)} detections")
            best = refit_on_all(best, ts, seed, base_model, detector_model)
            validation = np.zeros(len(ts), dtype=bool)
        penalty = None
    trained_on = ~validation
    if progress:
        progress(1000, 1000, "trained")
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
        "selection": (f"the L2 penalty of the logistic regression beside a fixed extra-trees "
                      f"forest (labels weighted equally), among {len(PENALTIES)} "
                      f"({', '.join(f'{p:g}' for p in PENALTIES)}), by {INNER_FOLDS}-fold "
                      "cross-validation by site, and the threshold on the same inner scores"
                      if len(kinds) == 1 and kinds[0] == "features" else
                      f"{kinds[0]} unless another kind's validation ROC AUC is higher in "
                      f"97.5% of paired bootstrap resamples"),
        "penalty": penalty,
        "threshold_precision": precision, "threshold_meets_precision": met,
        "training_set": {"size": len(ts), "verified": int(ts.labels.sum()),
                         "false_positive": int((ts.labels == 0).sum()),
                         "train": int(trained_on.sum()), "validation": int(validation.sum()),
                         "sha256": ts.sha256, "split": f"by site, {SITE_DISTANCE_M / 1000:g} km",
                         "database": database_name,
                         "refit_on_all": bool(refit and trained_on.all()),
                         "train_ids": [int(i) for i in ts.ids[trained_on]],
                         "validation_ids": [int(i) for i in ts.ids[validation]]},
        "validation": estimate.card(),
        "labels_curve": curve.card() if curve else None,
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

    card_path = out.with_suffix(".json")
    # Both are written beside their targets first; the model takes its name, then the card
    # (the inner block ends first), so a card never describes a model that is not there,
    # and a failure before either rename leaves neither.
    with files.replacing(card_path) as card_partial:
        with files.replacing(out) as partial:
            best.model.save(partial)
            card["sha256"] = sha256_of(partial)
            card_partial.write_text(json.dumps(card, indent=1))
    return TrainReport(out, card_path, card, results, time.perf_counter() - started)
