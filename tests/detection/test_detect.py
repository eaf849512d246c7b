import numpy as np
import pytest
import rasterio

from review.detection import detect
from review.detection.detect import grid_offsets, score_tile
from review.detection.imagery import open_tile
from review.detection.models import load_model
from review.errors import BandError, ImageryError

from tests.conftest import (GHANA, SLOVENIA, TINY_BANDS, needs_fixtures, random_reflectance,
                            write_tile)


def _scores_by_position(result):
    """{(x, y) of the patch's top-left corner in the CRS: score}."""
    t = result.tile.transform
    return {(round(t.c + c * t.a, 3), round(t.f + r * t.e, 3)): float(s)
            for r, c, s in zip(result.rows, result.cols, result.scores)}


def test_grid_is_anchored_to_the_crs_not_the_tile_corner():
    # A tile starting 13 pixels past a grid line starts its patches 8 - 13 % 8 = 3 in.
    offsets = grid_offsets(origin=130.0, pixel=10.0, length=40, patch=16, stride=8)
    assert offsets.tolist() == [3, 11, 19]


def test_overlapping_tiles_produce_the_same_patches(tmp_path, tiny_model):
    big = random_reflectance(4, 90, 100, seed=2)
    a = write_tile(tmp_path / "a.tif", big[:, :70, :80], TINY_BANDS)
    # b starts 13 columns and 5 rows into a: not a multiple of the stride.
    b = write_tile(tmp_path / "b.tif", big[:, 5:90, 13:100], TINY_BANDS,
                   origin=(500000.0 + 130, 5000000.0 - 50))
    sa = _scores_by_position(score_tile(open_tile(a), tiny_model))
    sb = _scores_by_position(score_tile(open_tile(b), tiny_model))
    shared = sa.keys() & sb.keys()
    assert len(shared) >= 9
    for key in shared:
        assert sa[key] == pytest.approx(sb[key], abs=1e-6)
    # All patch corners sit on multiples of the stride (8 px = 80 m) from the origin.
    assert all(x % 80 == 0 and y % 80 == 0 for x, y in sa.keys() | sb.keys())


def test_band_order_comes_from_names_not_positions(tmp_path, tiny_model):
    data = random_reflectance(4, 40, 40, seed=5)
    in_order = write_tile(tmp_path / "in_order.tif", data, TINY_BANDS)
    shuffled = write_tile(tmp_path / "shuffled.tif", data[[3, 1, 0, 2]],
                          [TINY_BANDS[i] for i in (3, 1, 0, 2)])
    first = score_tile(open_tile(in_order), tiny_model)
    second = score_tile(open_tile(shuffled), tiny_model)
    np.testing.assert_array_equal(first.scores, second.scores)
    # The same pixels named in file order would score differently: names matter.
    wrong = write_tile(tmp_path / "wrong.tif", data[[3, 1, 0, 2]], TINY_BANDS)
    assert not np.allclose(score_tile(open_tile(wrong), tiny_model).scores, first.scores)


def test_scores_do_not_depend_on_batch_size_or_strip_height(tmp_path, tiny_model, monkeypatch):
    path = write_tile(tmp_path / "t.tif", random_reflectance(4, 64, 72, seed=8), TINY_BANDS)
    tile = open_tile(path)
    reference = score_tile(tile, tiny_model, batch_size=512)
    small_batches = score_tile(tile, tiny_model, batch_size=3)
    monkeypatch.setattr(detect, "STRIP_BYTES", 72 * 4 * 4 * 20)   # one patch row per strip
    strips = score_tile(tile, tiny_model, batch_size=5)
    assert len(reference) == 7 * 8
    for other in (small_batches, strips):
        np.testing.assert_array_equal(other.rows, reference.rows)
        np.testing.assert_array_equal(other.cols, reference.cols)
        np.testing.assert_allclose(other.scores, reference.scores, atol=1e-6)


def test_patches_that_are_mostly_nodata_are_skipped(tmp_path, tiny_model):
    data = random_reflectance(4, 32, 48, seed=1)
    data[:, :, :20] = 0                    # left 20 columns empty
    tile = open_tile(write_tile(tmp_path / "t.tif", data, TINY_BANDS, nodata=0))
    result = score_tile(tile, tiny_model)
    # Columns 0, 8 (>= 8/16 empty... 0 is all empty, 8 has 12/16 empty) are skipped;
    # column 16 has 4/16 empty and is kept.
    assert sorted(set(result.cols.tolist())) == [16, 24, 32]
    assert result.skipped_nodata == 2 * 3
    lenient = score_tile(tile, tiny_model, max_nodata_fraction=1.0)
    assert len(lenient) == 5 * 3


@pytest.mark.parametrize("scaling", ["reflectance", "unit_norm"])
def test_nodata_pixels_count_as_zero_before_scaling(tmp_path, tiny_model, scaling):
    """As earthrise fills nodata: DN 0, then the card's scaling (for unit_norm 0 is not 0)."""
    from dataclasses import replace

    from review.detection.models import LoadedModel

    data = random_reflectance(4, 64, 64, seed=11)
    data[:, 5:12, 20:40] = 65535                      # holes, each under half of any patch
    data[1, 40:44, 3:9] = 65535
    path = write_tile(tmp_path / "holes.tif", data, TINY_BANDS, nodata=65535)
    model = LoadedModel(replace(tiny_model.card, scaling=scaling), tiny_model.path,
                        tiny_model.keras_model)
    result = score_tile(open_tile(path), model)
    assert len(result) == 49 and result.skipped_nodata == 0
    filled = np.where((data == 65535).any(axis=0), 0, data).astype(np.float32)
    windows = np.stack([np.moveaxis(filled[:, r:r + 16, c:c + 16], 0, -1)
                        for r, c in zip(result.rows, result.cols)])
    expected = model.scores(model.card.scale(windows))
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)


def test_progress_is_reported_to_the_end(tmp_path, tiny_model):
    tile = open_tile(write_tile(tmp_path / "t.tif", random_reflectance(4, 40, 40), TINY_BANDS))
    seen = []
    score_tile(tile, tiny_model, progress=lambda done, total, what: seen.append((done, total)))
    assert seen[-1] == (16, 16)


def test_missing_bands_are_named(tmp_path, tiny_model):
    tile = open_tile(write_tile(tmp_path / "t.tif", random_reflectance(2, 20, 20), ["B2", "B4"]))
    with pytest.raises(BandError, match="needs bands B3, B8 which the tile lacks"):
        score_tile(tile, tiny_model)


def test_unnamed_bands_without_a_mapping_are_refused(tmp_path, tiny_model):
    tile = open_tile(write_tile(tmp_path / "t.tif", random_reflectance(4, 20, 20)))
    with pytest.raises(BandError, match="no names; model tiny needs B2, B3, B4, B8"):
        score_tile(tile, tiny_model)


def test_8_bit_imagery_is_refused_for_a_reflectance_model(tmp_path, tiny_model):
    data = np.random.default_rng(0).integers(0, 255, (4, 20, 20)).astype("uint8")
    tile = open_tile(write_tile(tmp_path / "t.tif", data, TINY_BANDS))
    with pytest.raises(ImageryError, match="8-bit"):
        score_tile(tile, tiny_model)


def test_device_is_reported(tmp_path, tiny_model):
    tile = open_tile(write_tile(tmp_path / "t.tif", random_reflectance(4, 20, 20), TINY_BANDS))
    assert score_tile(tile, tiny_model).device.split(" ")[0] in ("CPU", "GPU")


# ------------------------------------------------------------------ real models, real pixels


def _direct_predictions(model, path, result):
    """model.predict on each 48x48 window, bands in card order by name, card scaling."""
    card = model.card
    with rasterio.open(path) as src:
        names = [d.upper().replace("B0", "B") for d in src.descriptions]
        cube = src.read([names.index(b) + 1 for b in card.bands]).astype(np.float32)
    size = card.patch_size
    windows = np.stack([np.moveaxis(cube[:, r:r + size, c:c + size], 0, -1)
                        for r, c in zip(result.rows, result.cols)])
    return model.keras_model.predict(card.scale(windows), verbose=0)[:, 0]


@needs_fixtures
@pytest.mark.parametrize("card_id", ["48px_v4.21", "48px_v3.2"])
def test_raw_scores_equal_a_direct_predict_on_real_l1c_scenes(card_id, real_model_cache):
    model = load_model(card_id)
    checked = 0
    for path in SLOVENIA:
        result = score_tile(open_tile(path), model)
        assert len(result) > 0
        expected = _direct_predictions(model, path, result)
        np.testing.assert_allclose(result.scores, expected, atol=1e-5, rtol=0)
        checked += len(result)
    assert checked >= 5 * 4


@needs_fixtures
def test_swapping_b8a_and_b08_in_the_file_gives_identical_scores(tmp_path, real_model_cache):
    model = load_model("48px_v4.21")
    with rasterio.open(SLOVENIA[2]) as src:
        profile, data, names = src.profile, src.read(), list(src.descriptions)
    i8, i8a = names.index("B08"), names.index("B8A")
    order = list(range(len(names)))
    order[i8], order[i8a] = i8a, i8
    swapped = tmp_path / "swapped.tif"
    with rasterio.open(swapped, "w", **profile) as dst:
        dst.write(data[order])
        for index, source in enumerate(order, start=1):
            dst.set_band_description(index, names[source])
    original = score_tile(open_tile(SLOVENIA[2]), model)
    reordered = score_tile(open_tile(swapped), model)
    np.testing.assert_array_equal(original.scores, reordered.scores)
    # The bands really differ, so a positional reading would have changed the scores.
    assert not np.array_equal(data[i8], data[i8a])


@needs_fixtures
def test_ghana_tile_needs_a_mapping_then_names_what_is_still_missing(real_model_cache):
    model = load_model("48px_v4.21")
    unnamed = open_tile(GHANA / "galamsey_001.tif")
    with pytest.raises(BandError) as refused:
        score_tile(unnamed, model)
    message = str(refused.value)
    assert "have no names" in message
    assert "B1, B2, B3, B4, B5, B6, B7, B8A, B8, B9, B10, B11, B12" in message
    mapped = open_tile(GHANA / "galamsey_001.tif", bands="B2,B3,B4,B8,VV,VH,NDVI,NDWI")
    with pytest.raises(BandError) as missing:
        score_tile(mapped, model)
    assert "needs bands B1, B5, B6, B7, B8A, B9, B10, B11, B12 which the tile lacks" in str(missing.value)


@needs_fixtures
def test_ghana_tile_with_a_mapping_runs_on_the_rgb_ir_model(real_model_cache):
    model = load_model("44px_v2.6_rgb_ir")
    tile = open_tile(GHANA / "galamsey_001.tif", bands="B2,B3,B4,B8,-,-,-,-")
    result = score_tile(tile, model)
    assert len(result) >= 9
    assert np.all((result.scores >= 0) & (result.scores <= 1))
