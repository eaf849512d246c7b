"""Keras building blocks of the change classifiers `python -m review train` makes.

Every trained model takes one pair patch: the before image's bands then the after image's
bands (card order), as reflectance in [0, 1] (the card's `reflectance` scaling), and gives
one sigmoid score: how likely a mine emerged between the two.

Three kinds are built and compared on validation:
- `features`: fixed change statistics (per band and per spectral index: mean, spread and
  quantiles before, after and of the change; texture; fractions of pixels that lost
  vegetation or turned to bare soil or sediment-laden water), of the whole patch and of its
  centre, beside (when it can be had) how a published mine detector sees the after image
  (its penultimate layer, `detector_embedding`), and on them the mean of a logistic
  regression and an extra-trees forest (`change_head`; models trained before 2026-12-07
  have the mean of five small dense heads there, and load and score as they did);
- `cnn`: a small convolutional network on both images stacked as channels;
- `trunk`: the convolutional trunk of a published model (the 44px rgb_ir model: blue,
  green, red, near-infrared) applied to each image, with a new head on both.

`PairFeatures` is a Keras layer registered under the package name "review": loading a
trained model needs this module imported, which `review.detection.models.load` does.
"""
from __future__ import annotations

import numpy as np

from .tensorflow_runtime import tensorflow

tensorflow()           # Keras imports TensorFlow: through the wrapper that keeps it quiet
import keras  # noqa: E402
from keras import ops  # noqa: E402

EPS = 1e-6
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Spectral indices, when the bands are there: (name, needed bands).
INDICES = (("ndvi", ("B8", "B4")), ("ndwi", ("B3", "B8")), ("mndwi", ("B3", "B11")),
           ("bsi", ("B11", "B4", "B8", "B2")), ("nbr", ("B8", "B12")), ("swir_nir", ("B11", "B8")))


@keras.saving.register_keras_serializable(package="review")
class PairFeatures(keras.layers.Layer):
    """(N, P, P, 2 x bands) reflectance -> (N, features) change statistics."""

    def __init__(self, bands, quantiles=QUANTILES, centres=(), centre=0, **kwargs):
        super().__init__(**kwargs)
        self.bands = [str(b) for b in bands]
        self.quantiles = [float(q) for q in quantiles]
        # Central squares described after the whole patch. Models saved with one `centre`
        # (0: whole patch only) load as they were.
        self.centres = [int(c) for c in centres] or ([int(centre)] if centre else [])
        self.indices = [name for name, needed in INDICES if set(needed) <= set(self.bands)]

    def get_config(self):
        return {**super().get_config(), "bands": self.bands, "quantiles": self.quantiles,
                "centres": self.centres}

    def _maps(self, x):
        band = {name: x[..., i] for i, name in enumerate(self.bands)}
        maps = [x[..., i] for i in range(len(self.bands))]

        def ratio(a, b):
            return (a - b) / (a + b + EPS)

        formulas = {
            "ndvi": lambda: ratio(band["B8"], band["B4"]),
            "ndwi": lambda: ratio(band["B3"], band["B8"]),
            "mndwi": lambda: ratio(band["B3"], band["B11"]),
            "bsi": lambda: ratio(band["B11"] + band["B4"], band["B8"] + band["B2"]),
            "nbr": lambda: ratio(band["B8"], band["B12"]),
            "swir_nir": lambda: ops.clip(band["B11"] / (band["B8"] + 0.01), 0.0, 10.0),
        }
        maps += [formulas[name]() for name in self.indices]
        maps.append(ops.log(ops.sum(x, axis=-1) + 0.01))      # overall brightness
        return ops.stack(maps, axis=-1)

    def _stats(self, m):
        # Patch side and map count are static (known from the model's input) even where the
        # batch size is not (a retraced tf.function): quantile positions are fixed numbers.
        count = int(m.shape[1]) * int(m.shape[2])
        flat = ops.reshape(m, (-1, count, int(m.shape[-1])))
        ordered = ops.sort(flat, axis=1)
        parts = [ops.mean(flat, axis=1), ops.std(flat, axis=1)]
        for q in self.quantiles:
            index = int(round(q * (count - 1)))
            parts.append(ordered[:, index, :])
        return parts

    @staticmethod
    def _texture(m):
        dy = ops.mean(ops.abs(m[:, 1:, :, :] - m[:, :-1, :, :]), axis=(1, 2))
        dx = ops.mean(ops.abs(m[:, :, 1:, :] - m[:, :, :-1, :]), axis=(1, 2))
        return dy + dx

    def call(self, x):
        """The statistics of the whole patch, then those of each central c x c square in
        `centres`: a label is about the place at the patch's centre, and its surroundings
        dilute the whole patch's figures."""
        parts = [self._patch_features(x)]
        side = int(x.shape[1])
        for c in self.centres:
            start = (side - c) // 2
            parts.append(self._patch_features(x[:, start:start + c, start:start + c, :]))
        return ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    def _patch_features(self, x):
        n = len(self.bands)
        before, after = self._maps(x[..., :n]), self._maps(x[..., n:])
        change = after - before
        parts = self._stats(before) + self._stats(after) + self._stats(change)
        parts += [self._texture(after), self._texture(after) - self._texture(before)]
        if "ndvi" in self.indices:
            i = len(self.bands) + self.indices.index("ndvi")
            ndvi0, ndvi1 = before[..., i], after[..., i]
            fractions = [ops.cast((ndvi0 > 0.6) & (ndvi1 < 0.4), "float32"),
                         ops.cast(ndvi1 - ndvi0 < -0.2, "float32")]
            if "mndwi" in self.indices:
                j = len(self.bands) + self.indices.index("mndwi")
                mndwi1 = after[..., j]
                fractions += [ops.cast(mndwi1 < -0.3, "float32"),
                              ops.cast((mndwi1 > 0) & (ndvi0 > 0.5), "float32")]
            parts.append(ops.stack([ops.mean(f, axis=(1, 2)) for f in fractions], axis=-1))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        maps = len(self.bands) + len(self.indices) + 1
        width = 3 * maps * (2 + len(self.quantiles)) + 2 * maps
        if "ndvi" in self.indices:
            width += 4 if "mndwi" in self.indices else 2
        return (input_shape[0], width * (1 + len(self.centres)))


def linear_head(mean, scale, coef, intercept) -> keras.Model:
    """A logistic regression on standardised features as a Keras head (learning.selection's
    LinearHead: the same numbers, in float32). Its standardised input is the layer named
    "embedding", what the Models page projects."""
    width = len(mean)
    inputs = keras.Input((width,))
    norm = keras.layers.Normalization(mean=np.asarray(mean, "float32"),
                                      variance=np.square(np.asarray(scale, "float32")),
                                      name="embedding")
    logistic = keras.layers.Dense(1, activation="sigmoid", name="logistic")
    outputs = logistic(norm(inputs))
    logistic.set_weights([np.asarray(coef, "float32").reshape(width, 1),
                          np.array([intercept], "float32")])
    return keras.Model(inputs, outputs, name="head")


@keras.saving.register_keras_serializable(package="review")
class TreeEnsemble(keras.layers.Layer):
    """(N, features) -> (N, 1): the mean, over trees, of the share of mines in the leaf each
    detection reaches. The trees are flat arrays (tree x node) held as weights: the feature
    and threshold a node tests, its children (-1 at a leaf) and its share. Thresholds are
    compared in float64, as scikit-learn, which grew them, compares them."""

    def __init__(self, trees: int, nodes: int, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.trees, self.nodes, self.depth = int(trees), int(nodes), int(depth)

    def get_config(self):
        return {**super().get_config(), "trees": self.trees, "nodes": self.nodes,
                "depth": self.depth}

    def build(self, input_shape):
        size = (self.trees * self.nodes,)
        for name, dtype in (("feature", "int32"), ("left", "int32"), ("right", "int32"),
                            ("threshold", "float64"), ("value", "float32")):
            setattr(self, name, self.add_weight(shape=size, dtype=dtype, trainable=False,
                                                initializer="zeros", name=name))

    def set_trees(self, feature, threshold, left, right, value) -> None:
        self.feature.assign(np.asarray(feature, "int32").ravel())
        self.threshold.assign(np.asarray(threshold, "float64").ravel())
        self.left.assign(np.asarray(left, "int32").ravel())
        self.right.assign(np.asarray(right, "int32").ravel())
        self.value.assign(np.asarray(value, "float32").ravel())

    def call(self, x):
        x = ops.cast(x, "float64")
        offset = ops.arange(self.trees, dtype="int32")[None, :] * self.nodes
        node = ops.zeros((ops.shape(x)[0], self.trees), dtype="int32")
        for _ in range(self.depth):
            at = node + offset
            left = ops.take(self.left, at)
            tested = ops.take_along_axis(x, ops.take(self.feature, at), axis=1)
            step = ops.where(tested <= ops.take(self.threshold, at), left,
                             ops.take(self.right, at))
            node = ops.where(left < 0, node, step)             # leaves stay where they are
        shares = ops.take(self.value, node + offset)
        return ops.mean(shares, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


def change_head(mean, scale, coef, intercept, forest=None) -> keras.Model:
    """The features kind's head: the mean of a logistic regression (`linear_head`) and, when
    given, an extra-trees forest (an object with the arrays `feature`, `threshold`, `left`,
    `right`, `value` and its `depth`, learning.selection.Forest)."""
    linear = linear_head(mean, scale, coef, intercept)
    if forest is None:
        return linear
    inputs = keras.Input((len(mean),))
    trees = TreeEnsemble(*forest.feature.shape, forest.depth, name="forest")
    forest_score = trees(inputs)
    trees.set_trees(forest.feature, forest.threshold, forest.left, forest.right, forest.value)
    outputs = keras.layers.Average(name="mean_of_both")([linear(inputs), forest_score])
    return keras.Model(inputs, outputs, name="head")


def head_embedding(head) -> keras.Model:
    """The head's penultimate layer: every member's hidden units side by side (dense
    ensembles), or what the last layer weighs (the standardised features of a linear head,
    also inside a head with a forest; the single "embedding" layer of the first heads)."""
    hidden = [layer.output for layer in head.layers if layer.name.endswith("_hidden")]
    if not hidden:
        try:
            linear = head.get_layer("head")          # the regression beside a forest
        except ValueError:
            linear = None
        if linear is not None:
            return keras.Model(linear.inputs, linear.get_layer("embedding").output)
        return keras.Model(head.inputs, head.get_layer("embedding").output)
    return keras.Model(head.inputs, hidden[0] if len(hidden) == 1 else
                       keras.layers.Concatenate()(hidden))


def features_model(bands, patch: int, head, centres=(), detector=None) -> keras.Model:
    """Pair -> change statistics (and the detector's view of the after image) -> head."""
    inputs = keras.Input((patch, patch, 2 * len(bands)))
    x = PairFeatures(bands, centres=centres, name="pair_features")(inputs)
    if detector is not None:
        x = keras.layers.Concatenate(name="statistics_and_detector")([x, detector(inputs)])
    x = head(x)
    return keras.Model(inputs, x, name="change_features")


# Bands a published model needs that the pairs lack, as linear mixes of reflectance bands
# they have: the red edge lies between red and near-infrared, B8A beside B8, B1 beside B2,
# water vapour (B9) a fraction of near-infrared. Rough, but the detector's view of the
# after image made this way adds to the change statistics (bench/RESULTS.md).
BAND_MIXES = {
    "B1": {"B2": 1.1}, "B5": {"B4": 0.75, "B8": 0.25}, "B6": {"B4": 0.25, "B8": 0.75},
    "B7": {"B4": 0.1, "B8": 0.9}, "B8A": {"B8": 1.03}, "B9": {"B8": 0.3},
}


def band_mix(bands, wanted) -> np.ndarray | None:
    """(len(bands), len(wanted)) weights that make each wanted band from `bands` (itself
    where present, else its BAND_MIXES recipe), or None when one cannot be made."""
    bands = list(bands)
    weights = np.zeros((len(bands), len(wanted)), dtype="float32")
    for k, name in enumerate(wanted):
        recipe = {name: 1.0} if name in bands else BAND_MIXES.get(name)
        if not recipe or not set(recipe) <= set(bands):
            return None
        for source, weight in recipe.items():
            weights[bands.index(source), k] = weight
    return weights


def detector_layers(model) -> list:
    """A published Sequential model's layers up to its penultimate dense layer (none for
    a model of another shape)."""
    if not isinstance(model, keras.Sequential):
        return []
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Dense)]
    return list(model.layers[:dense[-2] + 1]) if len(dense) >= 2 else []


def detector_embedding(bands, patch: int, detector, detector_bands) -> keras.Model:
    """Pair (reflectance) -> how a published single-image detector sees the after image:
    its penultimate layer, frozen. A fixed 1x1 convolution makes the detector's bands from
    the after image's (`band_mix`) and the result is clipped to [0, 1], the detector's own
    reflectance scaling."""
    n = len(bands)
    mix = band_mix(bands, detector_bands)
    if mix is None:
        raise ValueError(f"the detector's bands {', '.join(detector_bands)} cannot be made "
                         f"from {', '.join(bands)}")
    inputs = keras.Input((patch, patch, 2 * n))
    weights = np.zeros((1, 1, 2 * n, len(detector_bands)), dtype="float32")
    weights[0, 0, n:, :] = mix
    pick = keras.layers.Conv2D(len(detector_bands), 1, use_bias=False, trainable=False,
                               name="after_in_detector_bands")
    x = pick(inputs)
    pick.set_weights([weights])
    x = keras.layers.ReLU(max_value=1.0, name="reflectance_clipped")(x)
    body = copied_layers(detector_layers(detector), (patch, patch, len(detector_bands)),
                         "detector")
    body.trainable = False
    return keras.Model(inputs, body(x), name="detector_embedding")


def cnn_model(bands, patch: int) -> keras.Model:
    inputs = keras.Input((patch, patch, 2 * len(bands)))
    x = keras.layers.BatchNormalization()(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D(name="embedding")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="change_cnn")


def copied_layers(layers: list, input_shape: tuple, name: str) -> keras.Sequential:
    """A new Sequential model of copies of a published model's layers, with their weights
    (the published model itself stays untouched)."""
    copy = keras.Sequential([keras.Input(input_shape)] +
                            [layer.__class__.from_config(layer.get_config()) for layer in layers],
                            name=name)
    for new, old in zip(copy.layers, layers):
        new.set_weights(old.get_weights())
    return copy


def trunk_layers(base) -> list:
    """The convolution and pooling layers at the start of a published Sequential model."""
    layers = []
    for layer in base.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D)):
            break
        layers.append(layer)
    return layers


def trunk_model(bands, patch: int, base, base_bands, unit_mean, unit_std) -> keras.Model:
    """Siamese change classifier on a published model's convolutional trunk.

    A fixed 1x1 convolution picks the base model's bands out of the pair's reflectance and
    applies the base model's own unit_norm scaling, so the trunk sees what it was trained
    on; the trunk's weights start as published and are fine-tuned."""
    n = len(bands)
    inputs = keras.Input((patch, patch, 2 * n))
    trunk = copied_layers(trunk_layers(base), (patch, patch, len(base_bands)), "trunk")
    encoded = []
    for offset in (0, n):
        weights = np.zeros((1, 1, 2 * n, len(base_bands)), dtype="float32")
        bias = np.zeros(len(base_bands), dtype="float32")
        for k, name in enumerate(base_bands):
            weights[0, 0, offset + list(bands).index(name), k] = 10000.0 / unit_std[k]
            bias[k] = -unit_mean[k] / unit_std[k]
        pick = keras.layers.Conv2D(len(base_bands), 1, trainable=False)
        picked = pick(inputs)
        pick.set_weights([weights, bias])
        encoded.append(keras.layers.GlobalAveragePooling2D()(trunk(picked)))
    before, after = encoded
    x = keras.layers.Concatenate(name="embedding")(
        [before, after, keras.layers.Subtract()([after, before])])
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="change_trunk")
