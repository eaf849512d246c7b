"""Model cards for the published mining detectors, and how to fetch, verify and load them.

A card says everything the engine needs to run a checkpoint the way its authors did:
where it is published (pinned to a commit), its sha256, patch size, the band names in
the model's own order, how pixels are scaled and how the output becomes one score.

Published checkpoints: earthrise-media/mining-detector (MIT licence).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import settings
from ..errors import ModelError, first_line
from ..progress import Progress
from .tensorflow_runtime import tensorflow

EARTHRISE_COMMIT = "bbbcb2d722c930626f322bec751a22e4acb22750"
EARTHRISE_URL = (f"https://github.com/earthrise-media/mining-detector/raw/"
                 f"{EARTHRISE_COMMIT}/models/")

# Earthrise's current (Earth Engine) band order: B8A comes before B8.
EARTHRISE_13 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B8", "B9", "B10", "B11", "B12")
EARTHRISE_12 = tuple(b for b in EARTHRISE_13 if b != "B10")
# The 2021 Descartes Labs models took Descartes' band list: nir (B8) before red-edge-4 (B8A).
DESCARTES_12 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")

# Channel statistics of the 2021 models' `unit_norm` (deprecated/scripts/dl_utils.py).
UNIT_NORM_MEAN = dict(zip(DESCARTES_12, (
    1405.8951, 1175.9235, 1172.4902, 1091.9574, 1321.1304, 2181.5363,
    2670.2361, 2491.2354, 2948.3846, 420.1552, 2028.0025, 1076.2417)))
UNIT_NORM_STD = dict(zip(DESCARTES_12, (
    291.9438, 398.5558, 504.557, 748.6153, 651.8549, 730.9811,
    913.6062, 893.9428, 1055.297, 225.2153, 970.1915, 752.8637)))

SCALINGS = ("reflectance", "unit_norm")
OUTPUTS = ("sigmoid", "softmax1", "mean")
# single: one image's bands; pair: the before image's bands, then the after image's, as
# channels of one patch (the before tile read on the after tile's grid).
INPUTS = ("single", "pair")


@dataclass(frozen=True)
class ModelCard:
    id: str
    filename: str
    sha256: str | None
    patch_size: int
    bands: tuple[str, ...]
    scaling: str          # reflectance: clip(DN/10000, 0, 1); unit_norm: (DN-mean)/std per band
    output: str           # sigmoid: column 0; softmax1: column 1; mean: mean of members' columns
    t_raw: float          # patches below this are not written even to raw output
    t_main: float
    t_iso: float
    product: str = "L1C"  # Sentinel-2 product the model was trained on
    url: str | None = None
    description: str = ""
    input: str = "single"  # single | pair (INPUTS)
    # What a trained model's card adds (threshold's precision, training set, metrics,
    # parent, date); kept as written and shown, never needed to run the model.
    training: dict | None = dataclasses.field(default=None, compare=False, hash=False)

    @property
    def stride(self) -> int:
        return self.patch_size // 2

    @property
    def is_pair(self) -> bool:
        return self.input == "pair"

    @property
    def channels(self) -> int:
        return len(self.bands) * (2 if self.is_pair else 1)

    def download_url(self) -> str | None:
        base = settings.model_base_url()
        if base:
            return base.rstrip("/") + "/" + self.filename
        return self.url

    def scale(self, patches: np.ndarray) -> np.ndarray:
        """DN patches (N, H, W, bands in card order; for a pair model the before bands then
        the after bands) -> model input, float32."""
        if self.is_pair and patches.shape[-1] == 2 * len(self.bands):
            half = len(self.bands)
            single = dataclasses.replace(self, input="single")
            return np.concatenate([single.scale(patches[..., :half]),
                                   single.scale(patches[..., half:])], axis=-1)
        if self.scaling == "reflectance":
            return np.clip(patches / np.float32(10000), 0, 1).astype(np.float32, copy=False)
        mean = np.array([UNIT_NORM_MEAN[b] for b in self.bands], dtype=np.float32)
        std = np.array([UNIT_NORM_STD[b] for b in self.bands], dtype=np.float32)
        return ((patches - mean) / std).astype(np.float32, copy=False)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["bands"] = list(self.bands)
        training = data.pop("training", None)
        if training:
            data.update(training)
        return data


def _card(id, filename, sha256, patch, bands, scaling, output, t_raw, t_main, t_iso, text):
    return ModelCard(id=id, filename=filename, sha256=sha256, patch_size=patch, bands=bands,
                     scaling=scaling, output=output, t_raw=t_raw, t_main=t_main, t_iso=t_iso,
                     url=EARTHRISE_URL + filename, description=text)


CARDS: dict[str, ModelCard] = {card.id: card for card in (
    _card("48px_v4.21", "48px_v4.21-CNN100ka_2026-05-08ep179.h5",
          "a55c5eb45c04c18a10056f9cbfb2e14437fecba087d99138862957cce2c12fe3",
          48, EARTHRISE_13, "reflectance", "sigmoid", 0.4, 0.43, 0.75,
          "2026 CNN, all 13 L1C bands; earthrise's current production model"),
    _card("48px_v3.2", "48px_v3.2_2024-01-07.h5",
          "d60eee0443e106282cc427f893b93f3be81e5b16fb0047935931de1988d847db",
          48, EARTHRISE_12, "reflectance", "sigmoid", 0.4, 0.43, 0.75,
          "2024 CNN, 12 L1C bands (no B10)"),
    _card("48px_v3.2-3.7ensemble", "48px_v3.2-3.7ensemble_2024-02-13.h5",
          "285020775a01db5b8423b10d3bb3d07bff01dc7908a1b341bcd6395e76bacce8",
          48, EARTHRISE_12, "reflectance", "mean", 0.4, 0.55, 0.8,
          "mean of six 2024 CNNs (v3.2 to v3.7); members rebuilt for Keras 3"),
    _card("44px_v2.8", "44px_v2.8_2021-11-11.h5",
          "b5e07a1476d8be881c1a3ff49ac1808e8db0becf2d62018f514057af7f60312a",
          44, DESCARTES_12, "unit_norm", "softmax1", 0.5, 0.8, 0.9,
          "2021 CNN, 12 L1C bands in Descartes order, softmax"),
    _card("44px_v2.6_rgb_ir", "44px_v2.6_rgb_ir_2021-11-11.h5",
          "42fc45e260e96b4ac267e7333f6f3b33b794e066407d5421cd3a8249919cd780",
          44, ("B2", "B3", "B4", "B8"), "unit_norm", "softmax1", 0.5, 0.8, 0.9,
          "2021 CNN on blue, green, red, near-infrared only; softmax"),
)}
DEFAULT_MODEL = "48px_v4.21"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_for_checksum(sha256: str) -> ModelCard | None:
    return next((c for c in CARDS.values() if c.sha256 == sha256), None)


def _tqdm_progress(label: str) -> tuple[Progress, Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=label, unit="B", unit_scale=True, file=sys.stderr, leave=False,
               disable=None)

    def update(done: int, total: int | None, what: str = "") -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


class ModelUnavailable(ModelError):
    """A published model could not be downloaded; a local copy of the file can stand in."""


def download(card: ModelCard, destination: Path, progress: Progress | None = None) -> Path:
    """Fetch a checkpoint into the cache, verifying its sha256 before it is kept."""
    from .downloads import DownloadFailed, fetch

    url = card.download_url()
    if not url:
        raise ModelError(f"model {card.id} has no download URL; put {card.filename} "
                         f"in {destination.parent}")
    close = None
    if progress is None:
        progress, close = _tqdm_progress(f"downloading {card.filename}")
    try:
        return fetch(url, destination, sha256=card.sha256, progress=progress)
    except DownloadFailed as exc:
        if exc.unreachable:
            raise ModelUnavailable(
                f"{exc}. If you have {card.filename} on this computer, use that file instead "
                f"(on the Detect page: 'A file on this machine'), or copy it into "
                f"{destination.parent} once", details=exc.details) from exc
        raise ModelUnavailable(f"model {card.id} could not be downloaded: {exc}",
                               details=exc.details) from exc
    finally:
        if close:
            close()


def resolve(spec: str, progress: Progress | None = None) -> tuple[ModelCard, Path]:
    """A card id (downloaded into the cache on first use) or a path to a checkpoint."""
    if spec in CARDS:
        card = CARDS[spec]
        path = settings.model_cache_dir() / card.filename
        if not path.exists():
            download(card, path, progress)
        elif sha256_of(path) != card.sha256:
            raise ModelError(f"{path} does not match the published checksum of {card.id}; "
                             "delete it and it will be downloaded again")
        return card, path
    path = Path(spec)
    if not path.exists():
        known = ", ".join(CARDS)
        raise ModelError(f"unknown model '{spec}': give one of {known}, "
                         "or the path of a .h5/.keras file")
    if path.suffix.lower() not in (".h5", ".keras", ".hdf5"):
        raise ModelError(f"{path.name}: a model must be a Keras .h5 or .keras file")
    checksum = sha256_of(path)
    card = card_for_checksum(checksum)
    if card is not None:
        return card, path
    card = read_card_beside(path)
    if card.sha256 and card.sha256 != checksum:
        raise ModelError(f"{path.name} has sha256 {checksum[:12]}... but its card says "
                         f"{card.sha256[:12]}...; the file is not the one the card describes")
    return card, path


def read_card_beside(path: Path) -> ModelCard:
    """Cards for unpublished models: PATH.json or STEM.json beside the checkpoint."""
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.exists():
            return parse_card(candidate, default_id=path.stem, filename=path.name)
    raise ModelError(
        f"{path.name} has no model card and is not a published checkpoint this product "
        f"knows; write a card "
        f"{path.with_suffix('.json').name} beside it, e.g. "
        '{"patch_size": 48, "bands": ["B2","B3","B4","B8"], "scaling": "reflectance", '
        '"output": "sigmoid"}')


_CARD_FIELDS = {f.name for f in dataclasses.fields(ModelCard)} - {"training"}


def local_cards(folder: Path | None = None) -> list[tuple[ModelCard, Path]]:
    """Models with a card beside them in a folder (default: the models folder), by name:
    the ones trained here (`python -m review train`) or put there by hand."""
    folder = Path(folder or settings.model_cache_dir())
    found = []
    for path in sorted(folder.glob("*.keras")) + sorted(folder.glob("*.h5")):
        if card_for_checksum_name(path.name):
            continue
        try:
            found.append((read_card_beside(path), path))
        except ModelError:
            continue
    return found


def card_for_checksum_name(filename: str) -> ModelCard | None:
    """The published card whose checkpoint has this file name (a cached download)."""
    return next((c for c in CARDS.values() if c.filename == filename), None)


def parse_card(card_path: Path, default_id: str, filename: str) -> ModelCard:
    try:
        data = json.loads(card_path.read_text())
        bands = tuple(str(b) for b in data["bands"])
        card = ModelCard(
            id=str(data.get("id", default_id)), filename=filename,
            sha256=data.get("sha256"), patch_size=int(data["patch_size"]), bands=bands,
            scaling=data.get("scaling", "reflectance"), output=data.get("output", "sigmoid"),
            t_raw=float(data.get("t_raw", 0.4)), t_main=float(data.get("t_main", 0.5)),
            t_iso=float(data.get("t_iso", 0.8)), product=data.get("product", "L1C"),
            url=data.get("url"), description=data.get("description", ""),
            input=str(data.get("input", "single")),
            training={k: v for k, v in data.items() if k not in _CARD_FIELDS} or None)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{card_path.name}: not a valid model card ({exc!r}); it needs "
                         "patch_size, bands, and optionally scaling and output") from exc
    if card.input not in INPUTS:
        raise ModelError(f"{card_path.name}: input must be one of {', '.join(INPUTS)}")
    if card.scaling not in SCALINGS:
        raise ModelError(f"{card_path.name}: scaling must be one of {', '.join(SCALINGS)}")
    if card.output not in OUTPUTS:
        raise ModelError(f"{card_path.name}: output must be one of {', '.join(OUTPUTS)}")
    if card.scaling == "unit_norm" and not set(card.bands) <= set(UNIT_NORM_MEAN):
        raise ModelError(f"{card_path.name}: unit_norm scaling knows only bands "
                         f"{', '.join(DESCARTES_12)}")
    return card


# ------------------------------------------------------------------ loading and running


class LoadedModel:
    """A checkpoint ready to score batches of scaled patches."""

    def __init__(self, card: ModelCard, path: Path, keras_model):
        tf = tensorflow()
        self.card = card
        self.path = path
        self.keras_model = keras_model
        self.sha256 = sha256_of(path)
        self._call = tf.function(lambda x: keras_model(x, training=False), reduce_retracing=True)

    def raw_outputs(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(scaled))

    def scores(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled patches (N, P, P, C) -> one score per patch in [0, 1]."""
        return adapt_output(self.raw_outputs(scaled), self.card.output)


def adapt_output(out: np.ndarray, output: str) -> np.ndarray:
    out = np.asarray(out, dtype=np.float32)
    if output == "sigmoid":
        return out[:, 0]
    if output == "softmax1":
        return out[:, 1]
    return out.mean(axis=1)


def load(card: ModelCard, path: Path) -> LoadedModel:
    tensorflow()
    import keras

    from . import pairnet  # noqa: F401  (registers the layers of trained change models)

    try:
        model = keras.models.load_model(path, compile=False)
    except ValueError as exc:
        if "Functional model" not in str(exc) or card.output != "mean":
            raise ModelError(f"{path.name}: Keras cannot load it ({first_line(exc)})") from exc
        model = rebuild_concatenated_ensemble(path)
    except (OSError, TypeError, KeyError) as exc:
        raise ModelError(f"{path.name}: not a loadable Keras model ({first_line(exc)})") from exc
    _check_shape(card, path, model)
    return LoadedModel(card, path, model)



def _check_shape(card: ModelCard, path: Path, model) -> None:
    shape = tuple(model.input_shape[1:])
    expected = (card.patch_size, card.patch_size, card.channels)
    if shape != expected:
        what = (f"{len(card.bands)} bands before and after" if card.is_pair
                else f"{len(card.bands)} bands")
        raise ModelError(
            f"{path.name}: takes input {'x'.join(map(str, shape))} but card {card.id} says "
            f"{'x'.join(map(str, expected))} ({what})")
    width = model.output_shape[-1]
    if (card.output == "sigmoid" and width != 1) or (card.output == "softmax1" and width != 2):
        raise ModelError(f"{path.name}: gives {width} outputs per patch, which does not fit "
                         f"the '{card.output}' output of card {card.id}")


def rebuild_concatenated_ensemble(path: Path):
    """Load earthrise's concatenated ensemble, which Keras 3 refuses as saved.

    The file is a Keras 2 Functional model whose layers are Sequential members joined by
    a Concatenate; Keras 3 cannot resolve that graph. Each member is a plain stack of
    built-in layers, so it is rebuilt from its config and given its saved weights in
    order; the members are then concatenated again, exactly as published.
    """
    import h5py
    import keras

    members = []
    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
        weights = handle["model_weights"]
        inputs = None
        for layer in config["config"]["layers"]:
            if layer["class_name"] != "Sequential":
                continue
            member_config = layer["config"]
            stack = member_config["layers"]
            shape = tuple(stack[0]["config"]["batch_input_shape"][1:])
            if inputs is None:
                inputs = keras.Input(shape)
            member = keras.Sequential(
                [keras.Input(shape)] + [_layer_from_legacy(spec) for spec in stack[1:]],
                name=member_config["name"])
            group = weights[member_config["name"]]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            member.set_weights([group[n][()] for n in names])
            members.append(member)
    if not members:
        raise ModelError(f"{path.name}: no ensemble members found to rebuild")
    outputs = keras.layers.Concatenate()([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=path.stem)


def _layer_from_legacy(spec: dict):
    import keras

    # Initialisers, regularisers and constraints only matter for training, and their
    # Keras 2 configs do not deserialise in Keras 3.
    config = {k: v for k, v in spec["config"].items()
              if not k.endswith(("_initializer", "_regularizer", "_constraint"))
              and k != "batch_input_shape"}
    layer_class = getattr(keras.layers, spec["class_name"], None)
    if layer_class is None:
        raise ModelError(f"ensemble member layer {spec['class_name']} is not a Keras layer")
    return layer_class.from_config(config)


def load_model(spec: str, progress: Progress | None = None) -> LoadedModel:
    card, path = resolve(spec, progress)
    return load(card, path)


_loaded: dict[str, LoadedModel] = {}
_loaded_lock = threading.Lock()


def cached_model(spec: str, progress: Progress | None = None) -> LoadedModel:
    """load_model once per process and spec: the dashboard's sessions and a Dask worker's
    tasks share one copy (a Keras model is safe to call from several threads)."""
    key: object = spec
    path = Path(spec)
    if path.is_file():
        # A file trained again under the same name is loaded again, not served stale.
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = load_model(spec, progress)
        return _loaded[key]
