"""Checks before a detector run: a tile that names no bands, a tile smaller than a patch and
a local copy of a published model, each said in plain words."""
import numpy as np

from review.detection import preflight
from review.detection.imagery import open_tile
from review.detection.models import CARDS
from review.errors import sentence

from tests.conftest import MODELS, assert_plain, needs_fixtures, write_tile


def _unnamed_tile(path, size):
    data = np.full((4, size, size), 1000, dtype=np.uint16)
    return write_tile(path, data, names=None)


def test_a_tile_without_band_names_points_to_the_band_box(tmp_path, tiny_model):
    tile = open_tile(_unnamed_tile(tmp_path / "unnamed.tif", 64))
    message = preflight.unnamed_bands(tile, tiny_model.card, None)
    assert "Type the band names in file order in the box 'Band names in file order'" in message
    assert_plain(sentence(message))
    assert preflight.unnamed_bands(tile, tiny_model.card, "B2,B3,B4,B8") is None


@needs_fixtures
def test_a_tile_smaller_than_a_patch_says_why_nothing_can_be_scored(tmp_path):
    card = CARDS["48px_v3.2"] if "48px_v3.2" in CARDS else next(c for c in CARDS.values() if c.patch_size == 48)
    tile = open_tile(write_tile(tmp_path / "small.tif", np.full((len(card.bands), 40, 40), 1000, np.uint16),
                                names=list(card.bands), origin=(500005.0, 5000005.0)))
    message = preflight.too_small(tile, card)
    assert message.startswith("small.tif is 40 × 40 pixels, so no 48-pixel patch")
    one_patch = open_tile(write_tile(tmp_path / "chip.tif", np.full((len(card.bands), 48, 48), 1000, np.uint16),
                                     names=list(card.bands), origin=(500005.0, 5000005.0)))
    assert preflight.too_small(one_patch, card) is None          # a 48-px chip is one patch
    assert "Use a larger tile or fetch a larger area." in message
    assert_plain(sentence(message))


@needs_fixtures
def test_a_local_copy_of_a_published_model_is_recognised_by_its_checksum():
    path = next(MODELS.glob("48px_v3.2_*.h5"))
    card = preflight.published_card(path)
    assert card is not None and card.filename == path.name
    assert preflight.published_card(path.with_name("missing.h5")) is None
