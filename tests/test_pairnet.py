"""The change statistics the features kind of trained model is built on."""
import numpy as np

from review.pairnet import PairFeatures

BANDS = ["B2", "B3", "B4", "B8", "B11", "B12"]


def _pairs():
    return np.random.default_rng(0).uniform(0, 0.5, (3, 48, 48, 12)).astype("float32")


def test_the_centre_is_described_after_the_whole_patch():
    x = _pairs()
    whole = np.asarray(PairFeatures(BANDS)(x))
    layer = PairFeatures(BANDS, centre=24)
    both = np.asarray(layer(x))
    centre = np.asarray(PairFeatures(BANDS)(x[:, 12:36, 12:36, :]))
    assert both.shape == (3, 2 * whole.shape[1]) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(both[:, :whole.shape[1]], whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[:, whole.shape[1]:], centre, rtol=1e-5, atol=1e-6)
    assert not np.allclose(both[:, whole.shape[1]:], whole)      # the centre is its own


def test_a_layer_saved_before_the_centre_existed_works_as_it_did():
    config = PairFeatures(BANDS).get_config()
    config.pop("centre")
    old = PairFeatures.from_config(config)
    assert old.centre == 0
    np.testing.assert_allclose(np.asarray(old(_pairs())), np.asarray(PairFeatures(BANDS)(_pairs())))
