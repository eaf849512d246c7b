import hashlib
import json
import shutil

import numpy as np
import pytest

from review.detection import models
from review.detection.models import CARDS, ModelCard, load_model, resolve, sha256_of
from review.errors import ModelError

from tests.conftest import MODELS, TINY_BANDS, TINY_PATCH, needs_fixtures


def _card(filename, sha256):
    return ModelCard(id="test", filename=filename, sha256=sha256, patch_size=TINY_PATCH,
                     bands=TINY_BANDS, scaling="reflectance", output="sigmoid",
                     t_raw=0.4, t_main=0.5, t_iso=0.8, url=None)


def test_download_verifies_checksum_and_reports_progress(tmp_path, file_server, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    payload = np.random.default_rng(1).bytes(300_000)
    (served / "weights.h5").write_bytes(payload)
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", file_server(served))
    cache = tmp_path / "cache"
    seen = []
    path = models.download(_card("weights.h5", hashlib.sha256(payload).hexdigest()),
                           cache / "weights.h5", progress=lambda done, total, what: seen.append((done, total)))
    assert path.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload))
    assert list(cache.iterdir()) == [path]          # no partial file left behind


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, file_server, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "weights.h5").write_bytes(b"tampered weights")
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", file_server(served))
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="was not kept"):
        models.download(_card("weights.h5", "0" * 64), cache / "weights.h5",
                        progress=lambda *a: None)
    assert list(cache.iterdir()) == []


def test_download_failure_is_a_clear_error(tmp_path, file_server, monkeypatch):
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", file_server(tmp_path))   # file absent: 404
    with pytest.raises(ModelError, match="model test could not be downloaded"):
        models.download(_card("missing.h5", "0" * 64), tmp_path / "c" / "missing.h5",
                        progress=lambda *a: None)


@needs_fixtures
def test_cards_pin_the_published_checksums_and_commit():
    for card in CARDS.values():
        assert sha256_of(MODELS / card.filename) == card.sha256, card.id
        assert models.EARTHRISE_COMMIT in card.url and card.url.endswith(card.filename)


@needs_fixtures
def test_card_id_is_downloaded_on_first_use_then_cached(tmp_path, file_server, monkeypatch):
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", file_server(MODELS))
    card, path = resolve("48px_v3.2", progress=lambda *a: None)
    assert path == tmp_path / "model-cache" / "48px_v3.2_2024-01-07.h5"
    assert sha256_of(path) == card.sha256
    monkeypatch.setenv("REVIEW_MODEL_BASE_URL", "http://127.0.0.1:9/")   # nothing listens
    assert resolve("48px_v3.2")[1] == path                                  # served from cache


def test_corrupt_cached_file_is_refused(tmp_path):
    cache = tmp_path / "model-cache"
    cache.mkdir()
    (cache / CARDS["48px_v3.2"].filename).write_bytes(b"half a download")
    with pytest.raises(ModelError, match="does not match the published checksum"):
        resolve("48px_v3.2")


def test_unknown_model_id_lists_the_known_ones():
    with pytest.raises(ModelError, match="48px_v4.21"):
        resolve("yolo_v8")


@needs_fixtures
def test_published_file_is_recognised_by_checksum(tmp_path):
    copy = tmp_path / "renamed.h5"
    shutil.copy(MODELS / "44px_v2.8_2021-11-11.h5", copy)
    card, path = resolve(str(copy))
    assert card.id == "44px_v2.8" and path == copy


def test_unpublished_file_needs_a_card_beside_it(tmp_path, tiny_model_path):
    alone = tmp_path / "mine.keras"
    shutil.copy(tiny_model_path, alone)
    with pytest.raises(ModelError, match="write a card mine.json beside it"):
        resolve(str(alone))
    (tmp_path / "mine.json").write_text(json.dumps(
        {"patch_size": TINY_PATCH, "bands": list(TINY_BANDS)}))
    card, _ = resolve(str(alone))
    assert card.id == "mine" and card.bands == TINY_BANDS and card.output == "sigmoid"


def test_file_whose_checksum_differs_from_its_card_is_refused(tmp_path, tiny_model_path):
    alone = tmp_path / "mine.keras"
    shutil.copy(tiny_model_path, alone)
    card = {"patch_size": TINY_PATCH, "bands": list(TINY_BANDS), "sha256": "ab" * 32}
    (tmp_path / "mine.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="is not the one the card describes"):
        resolve(str(alone))
    card["sha256"] = sha256_of(alone)
    (tmp_path / "mine.json").write_text(json.dumps(card))
    assert resolve(str(alone))[0].sha256 == card["sha256"]


def test_card_with_bad_fields_is_refused(tmp_path, tiny_model_path):
    alone = tmp_path / "mine.keras"
    shutil.copy(tiny_model_path, alone)
    (tmp_path / "mine.json").write_text(json.dumps(
        {"patch_size": 16, "bands": ["B2"], "output": "argmax"}))
    with pytest.raises(ModelError, match="output must be one of"):
        resolve(str(alone))


def test_model_whose_shape_does_not_match_its_card_is_refused(tmp_path, tiny_model_path):
    alone = tmp_path / "mine.keras"
    shutil.copy(tiny_model_path, alone)
    (tmp_path / "mine.json").write_text(json.dumps({"patch_size": 48, "bands": list(TINY_BANDS)}))
    with pytest.raises(ModelError, match="takes input 16x16x4 but card mine says 48x48x4"):
        load_model(str(alone))


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"not hdf5")
    (tmp_path / "fake.json").write_text(json.dumps({"patch_size": 16, "bands": ["B2"]}))
    with pytest.raises(ModelError, match="fake.h5"):
        load_model(str(fake))


@needs_fixtures
@pytest.mark.parametrize("card_id", list(CARDS))
def test_every_published_model_loads_and_scores_in_unit_range(card_id, real_model_cache):
    model = load_model(card_id)
    card = model.card
    rng = np.random.default_rng(0)
    dn = rng.uniform(300, 3000, (3, card.patch_size, card.patch_size, len(card.bands)))
    scores = model.scores(card.scale(dn.astype(np.float32)))
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


@needs_fixtures
def test_ensemble_is_rebuilt_with_its_published_members(real_model_cache):
    ensemble = load_model("48px_v3.2-3.7ensemble")
    single = load_model("48px_v3.2")
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 0.4, (5, 48, 48, 12)).astype(np.float32)
    members = ensemble.raw_outputs(x)
    assert members.shape == (5, 6)
    # Its first member is the published v3.2 checkpoint, weight for weight.
    np.testing.assert_allclose(members[:, 0], single.scores(x), atol=1e-6)
    np.testing.assert_allclose(ensemble.scores(x), members.mean(axis=1), atol=1e-7)


def test_scaling_follows_the_card():
    dn = np.array([[[[0, 5000, 20000, 1175.9235]]]], dtype=np.float32)
    reflectance = _card("x.h5", None)
    assert reflectance.scale(dn).ravel().tolist() == [0.0, 0.5, 1.0, pytest.approx(0.11759235)]
    unit = CARDS["44px_v2.6_rgb_ir"]              # B2, B3, B4, B8 with 2021 statistics
    out = unit.scale(np.full((1, 1, 1, 4), 1175.9235, dtype=np.float32)).ravel()
    assert out[0] == pytest.approx(0.0, abs=1e-6)
    assert out[3] == pytest.approx((1175.9235 - 2491.2354) / 893.9428, rel=1e-6)


def test_a_model_is_loaded_once_per_process(tiny_model_path, monkeypatch):
    calls = []
    real = models.load_model
    monkeypatch.setattr(models, "_loaded", {})
    monkeypatch.setattr(models, "load_model", lambda spec, progress=None: calls.append(spec) or real(spec))
    first = models.cached_model(str(tiny_model_path))
    assert models.cached_model(str(tiny_model_path)) is first
    assert calls == [str(tiny_model_path)]
