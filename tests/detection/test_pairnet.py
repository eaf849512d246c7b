"""The change statistics the features kind of trained model is built on."""
import numpy as np

from review.detection.pairnet import PairFeatures

BANDS = ["B2", "B3", "B4", "B8", "B11", "B12"]


def _pairs():
    return np.random.default_rng(0).uniform(0, 0.5, (3, 48, 48, 12)).astype("float32")


def test_each_centre_is_described_after_the_whole_patch():
    x = _pairs()
    whole = np.asarray(PairFeatures(BANDS)(x))
    width = whole.shape[1]
    layer = PairFeatures(BANDS, centres=(24, 16))
    out = np.asarray(layer(x))
    assert out.shape == (3, 3 * width) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(out[:, :width], whole, rtol=1e-5, atol=1e-6)
    for k, (start, side) in enumerate([(12, 24), (16, 16)], start=1):
        centre = np.asarray(PairFeatures(BANDS)(x[:, start:start + side, start:start + side, :]))
        np.testing.assert_allclose(out[:, k * width:(k + 1) * width], centre, rtol=1e-5, atol=1e-6)
        assert not np.allclose(centre, whole)                 # the centre is its own


def test_layers_saved_with_one_centre_or_none_work_as_they_did():
    config = PairFeatures(BANDS).get_config()
    config.pop("centres")
    before_centres = PairFeatures.from_config(config)          # saved before any centre
    assert before_centres.centres == []
    np.testing.assert_allclose(np.asarray(before_centres(_pairs())),
                               np.asarray(PairFeatures(BANDS)(_pairs())))
    one = PairFeatures.from_config({**config, "centre": 24})  # saved with `centre: 24`
    assert one.centres == [24]
    np.testing.assert_allclose(np.asarray(one(_pairs())),
                               np.asarray(PairFeatures(BANDS, centres=(24,))(_pairs())))


def test_missing_detector_bands_are_mixed_from_the_ones_there():
    from review.detection.pairnet import band_mix

    mix = band_mix(BANDS, ["B2", "B5", "B8A"])
    assert mix.shape == (6, 3)
    np.testing.assert_allclose(mix[:, 0], [1, 0, 0, 0, 0, 0])              # B2 is itself
    np.testing.assert_allclose(mix[:, 1], [0, 0, 0.75, 0.25, 0, 0])        # B5: red to NIR
    np.testing.assert_allclose(mix[:, 2], [0, 0, 0, 1.03, 0, 0])           # B8A beside B8
    assert band_mix(["B2", "B3", "B4"], ["B5"]) is None                    # no NIR: cannot
    assert band_mix(BANDS, ["B10"]) is None                                # no recipe


def _tiny_detector(bands: int):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((48, 48, bands)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5),
        keras.layers.Dense(5, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])


def test_the_detector_sees_the_after_image_in_its_own_bands_through_its_penultimate_layer():
    import keras

    from review.detection.pairnet import band_mix, detector_embedding

    wanted = ("B1", "B2", "B3", "B4", "B5", "B8A", "B11")
    detector = _tiny_detector(len(wanted))
    view = detector_embedding(BANDS, 48, detector, wanted)
    x = _pairs()
    x[0, :4, :4, 6] = 0.95                                  # bright enough to be clipped as B1
    after = np.clip(x[..., 6:] @ band_mix(BANDS, wanted), 0, 1)
    penultimate = keras.Model(detector.inputs[0], detector.layers[-2].output)
    np.testing.assert_allclose(np.asarray(view(x)), np.asarray(penultimate(after)),
                               rtol=1e-5, atol=1e-5)
    changed_before = x.copy()
    changed_before[..., :6] = 0.3                         # the before image plays no part
    np.testing.assert_allclose(np.asarray(view(changed_before)), np.asarray(view(x)), atol=1e-6)
    assert view.trainable_weights == []                   # frozen: only the head learns
