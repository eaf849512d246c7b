"""How good a model is on reviewed detections, rescoring the queue, and what a model sees.

- `evaluate`: ROC AUC, precision and recall at the card's threshold on reviewed
  detections the model did not train on, with 95% intervals made as a trained model's card
  makes them (whole sites resampled), and the curves; it refuses fewer than 10 of a label.
- `rescore`: a trained model's score for pending detections that have imagery, stored in
  `model_scores` beside the source's own score (never overwriting it).
- `embedding`: the model's penultimate layer for reviewed and pending detections,
  projected to 2-D with UMAP, for the Models page.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ReviewError
from ..progress import Progress
from .metrics import intervals_by_site
from .splits import site_groups
from .pairs import TrainingError, all_scenes, cut_pair, imagery_of, reviewed


class EvaluationError(ReviewError):
    """A model cannot be evaluated on this database."""


def trained_ids(card) -> set[int]:
    """Detections a trained model's card says it was trained on (its training split)."""
    info = card.training or {}
    return {int(i) for i in (info.get("training_set") or {}).get("train_ids", [])}


def _rows_with_imagery(db, rows: list[dict]) -> tuple[list[tuple[dict, dict, dict]], list[int]]:
    scenes = all_scenes(db)
    usable, missing = [], []
    for row in rows:
        before, after, why = imagery_of(db, row, row, scenes)
        if why:
            missing.append(row["id"])
        else:
            usable.append((row, before, after))
    return usable, missing


def _chips(card, usable: list[tuple[dict, dict, dict]], progress: Progress | None) -> list:
    """The model's input chip of each detection: before and after stacked for a pair model,
    the after chip alone for a single-image model."""
    chips = []
    for n, (row, before, after) in enumerate(usable, start=1):
        pair = cut_pair(before, after, row["lon"], row["lat"], card.bands, card.patch_size)
        chips.append(pair if card.is_pair else pair[..., len(card.bands):])
        if progress:
            progress(n, len(usable), "chips")
    return chips


def score_rows(model, usable: list[tuple[dict, dict, dict]],
               progress: Progress | None = None) -> np.ndarray:
    """Scores of a loaded model on the detections' chips (pair models: before and after;
    single-image models: the after chip)."""
    card = model.card
    chips = _chips(card, usable, progress)
    if not chips:
        return np.zeros(0, dtype=np.float32)
    x = card.scale(np.stack(chips))
    return np.concatenate([model.scores(x[i:i + 256]) for i in range(0, len(x), 256)])


@dataclass
class Evaluation:
    model_id: str
    metrics: dict
    labels: np.ndarray
    scores: np.ndarray
    ids: np.ndarray
    left_out_trained: int = 0
    without_imagery: list[int] = field(default_factory=list)

    def curves(self) -> dict:
        """ROC (fpr, tpr) and precision-recall (recall, precision) curves."""
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(self.labels, self.scores)
        precision, recall, _ = precision_recall_curve(self.labels, self.scores)
        return {"fpr": fpr, "tpr": tpr, "precision": precision, "recall": recall}

    def summary(self) -> str:
        m = self.metrics

        def part(name, label):
            value, low, high = m[name]
            if value is None:
                return f"{label} n/a"
            return f"{label} {value:.3f} (95% {low:.3f} to {high:.3f})" if low is not None \
                else f"{label} {value:.3f}"

        text = (f"{self.model_id} on {m['detections']} reviewed detections ({m['verified']} "
                f"verified): {part('roc_auc', 'ROC AUC')}; at threshold {m['threshold']:.3f} "
                f"{part('precision', 'precision')}, {part('recall', 'recall')}")
        if self.left_out_trained:
            text += f"; {self.left_out_trained} detections it was trained on left out"
        if self.without_imagery:
            text += f"; {len(self.without_imagery)} without stored imagery left out"
        return text


# Below this many of either label, ROC AUC and its interval are noise (two detections give
# an AUC of 1.0 with an interval of zero width).
MIN_PER_LABEL = 10


def evaluate(db, model, ids: list[int] | None = None, seed: int = 1,
             progress: Progress | None = None, exclude_trained: bool = True) -> Evaluation:
    """Evaluate a loaded model on reviewed detections (those it did not train on)."""
    rows = reviewed(db)
    if ids is not None:
        wanted = set(ids)
        rows = [r for r in rows if r["id"] in wanted]
    skip = trained_ids(model.card) if exclude_trained else set()
    kept = [r for r in rows if r["id"] not in skip]
    usable, missing = _rows_with_imagery(db, kept)
    labels = np.array([1 if r["status"] == "verified" else 0 for r, *_ in usable])
    refit = ((model.card.training or {}).get("training_set") or {}).get("refit_on_all")
    if refit and not kept and rows:
        raise EvaluationError(
            f"{model.card.id} was trained on every reviewed detection here ({len(rows)}), so "
            "none is left to evaluate it on; its card's figures come from nested "
            "cross-validation by site on them. Train it without the refit to hold some out, "
            "or evaluate it after more detections are reviewed")
    verified = int(labels.sum())
    if min(verified, len(labels) - verified) < MIN_PER_LABEL:
        raise EvaluationError(
            f"{model.card.id} is judged only on at least {MIN_PER_LABEL} verified and "
            f"{MIN_PER_LABEL} false-positive detections that it was not trained on and that have "
            f"stored imagery, since figures from fewer say next to nothing; there are {verified} "
            f"verified and {len(labels) - verified} false positives "
            f"({len(rows) - len(kept)} more were in its training split, {len(missing)} have no "
            "imagery)")
    scores = score_rows(model, usable, progress)
    # The same interval method as a trained model's card: whole sites resampled.
    groups = site_groups(np.array([r["lon"] for r, *_ in usable]),
                         np.array([r["lat"] for r, *_ in usable]))
    metrics, _ = intervals_by_site(labels, scores[None], (scores >= model.card.t_main)[None],
                                   groups, seed)
    metrics["threshold"] = round(float(model.card.t_main), 4)
    return Evaluation(model.card.id, metrics, labels, scores,
                      np.array([r["id"] for r, *_ in usable]), len(rows) - len(kept), missing)


def rescore(db, model, progress: Progress | None = None) -> dict:
    """Score pending detections that have before/after imagery with a trained model and
    store the scores (model_scores); returns counts."""
    from ..store import now, transaction

    if not model.card.is_pair:
        raise EvaluationError(f"{model.card.id} looks at one image; rescoring the queue needs a "
                              "model trained on before/after pairs")
    cursor = db.execute("select id, lon, lat, west, south, east, north, period_start, period_end, "
                        "status from detections where status = 'pending' order by id")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    usable, missing = _rows_with_imagery(db, rows)
    scores = score_rows(model, usable, progress)
    stamp = now()
    with transaction(db):
        for (row, before, after), score in zip(usable, scores):
            db.execute("insert or replace into model_scores (detection_id, model_sha256, model_id, "
                       "score, threshold, before_scene_id, after_scene_id, scored_at) "
                       "values (?, ?, ?, ?, ?, ?, ?, ?)",
                       [row["id"], model.sha256, model.card.id, float(score), model.card.t_main,
                        before["id"], after["id"], stamp])
    return {"scored": len(usable), "without_imagery": len(missing), "pending": len(rows),
            "model": model.card.id}


def rescore_summary(counts: dict, order: str = "the order 'uncertain'") -> str:
    return (f"{counts['scored']} of {counts['pending']} pending detections scored by "
            f"{counts['model']} ({counts['without_imagery']} have no stored before/after "
            f"imagery); review them with {order}")


def model_scores(db, detection_id: int) -> list[dict]:
    """Trained models' scores of one detection, newest first."""
    cursor = db.execute("select * from model_scores where detection_id = ? order by scored_at desc",
                        [detection_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def _embedding_model(keras_model):
    """A function: scaled patches -> the model's penultimate layer (its embedding)."""
    import keras

    inner = keras_model
    try:
        features = keras_model.get_layer("pair_features")
        head = keras_model.get_layer("head")
    except ValueError:
        features = head = None
    if features is not None:
        from ..detection.pairnet import head_embedding

        hidden = head_embedding(head)
        try:                       # the head also reads a published detector's view
            head_input = keras_model.get_layer("statistics_and_detector").output
        except ValueError:
            return lambda x: np.asarray(hidden(features(x)))
        described = keras.Model(keras_model.inputs[0], head_input)
        return lambda x: np.asarray(hidden(described(x, training=False)))
    outputs = inner.layers[-2].output
    for layer in inner.layers:
        if layer.name == "embedding":
            outputs = layer.output
    sub = keras.Model(inner.inputs[0], outputs)
    return lambda x: np.asarray(sub(x, training=False))


@dataclass
class Embedding:
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    status: list[str]
    scores: np.ndarray


def embedding(db, model, limit: int = 2000, seed: int = 1,
              progress: Progress | None = None) -> Embedding:
    """Reviewed and pending detections with imagery, placed by UMAP on the model's
    penultimate layer."""
    cursor = db.execute("select id, lon, lat, west, south, east, north, period_start, period_end, "
                        "status from detections where status in ('verified', 'false_positive', "
                        "'pending', 'unsure') order by id limit ?", [limit])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    usable, _ = _rows_with_imagery(db, rows)
    if len(usable) < 5:
        raise EvaluationError(f"only {len(usable)} detections have stored before/after imagery; "
                              "the embedding needs at least 5")
    card = model.card
    chips = _chips(card, usable, progress)
    x = card.scale(np.stack(chips))
    embed = _embedding_model(model.keras_model)
    vectors = np.concatenate([embed(x[i:i + 256]) for i in range(0, len(x), 256)])
    scores = np.concatenate([model.scores(x[i:i + 256]) for i in range(0, len(x), 256)])
    import umap

    reducer = umap.UMAP(n_neighbors=min(15, len(vectors) - 1), random_state=seed)
    points = reducer.fit_transform(vectors)
    return Embedding(np.array([r["id"] for r, *_ in usable]), points[:, 0], points[:, 1],
                     [r["status"] for r, *_ in usable], scores)


__all__ = ["evaluate", "rescore", "embedding", "Evaluation", "EvaluationError", "TrainingError"]
