"""Before/after chips: the same ground, the same stretch, the footprint outlined."""
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from review.detection.imagery import open_tile
from review.detection.runs import scene_record
from review.errors import ImageryError
from review.review_imagery import chips

from tests.conftest import SLOVENIA, needs_fixtures, random_reflectance, write_tile

ORIGIN = (500000.0, 5000000.0)          # UTM 33N, 10 m pixels: a 100 x 100 px tile is 1 km


def _scene(path, data, names=("B4", "B3", "B2"), period=("2023-01-01", "2023-12-31")):
    tile = open_tile(write_tile(path, data, list(names), origin=ORIGIN,
                                tags={"PERIOD_START": period[0], "PERIOD_END": period[1]}))
    return {**scene_record(tile), "id": None}


def _footprint(x0=400, y0=400, side=200):
    """A square footprint (lon/lat) `side` metres wide, x0/y0 metres into the tile."""
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    left, top = ORIGIN[0] + x0, ORIGIN[1] - y0
    xs, ys = to_lonlat.transform([left, left + side], [top - side, top])
    return shapely.box(min(xs), min(ys), max(xs), max(ys))


def test_stretch_limits_ignore_outliers_and_never_divide_by_zero():
    values = np.concatenate([np.full(1000, 1000.0), np.full(1000, 3000.0), [60000.0]])
    low, high = chips.stretch_limits(values)
    assert (low, high) == (1000.0, 3000.0)
    assert chips.stretch_limits(np.full(10, 5.0)) == (5.0, 6.0)
    assert chips.stretch_limits(np.array([])) == (0.0, 1.0)


def test_a_pair_shares_its_stretch_so_a_brighter_after_looks_brighter(tmp_path):
    dark = random_reflectance(3, 100, 100, seed=1) // 4
    bright = dark * 3
    before = _scene(tmp_path / "before.tif", dark)
    after = _scene(tmp_path / "after.tif", bright, period=("2024-01-01", "2024-12-31"))
    pair = chips.render_pair([before, after], _footprint())
    assert len(pair) == 2 and pair[0].image.size == pair[1].image.size
    assert max(pair[0].image.size) >= chips.MIN_SIDE_PX          # small chips are enlarged
    assert np.asarray(pair[1].image).mean() > 2 * np.asarray(pair[0].image).mean()
    assert pair[1].caption == "after.tif (GeoTIFF), 2024-01-01 to 2024-12-31"
    # The footprint's outline is drawn in the outline colour on both chips.
    for chip in pair:
        assert (np.asarray(chip.image) == chips.OUTLINE).all(axis=-1).sum() > 100


def test_nodata_is_black_and_a_scene_without_true_colour_is_refused(tmp_path):
    rgb = np.zeros((3, 2, 2))
    valid = np.array([[True, False], [True, True]])
    rgb[:, valid] = 2000
    image = np.asarray(chips.to_image(rgb, valid, 1000, 3000))
    assert image[0, 1].tolist() == [0, 0, 0] and image[0, 0].tolist() == [127, 127, 127]
    nir_only = _scene(tmp_path / "nir.tif", random_reflectance(1, 100, 100), names=("B8",))
    with pytest.raises(ImageryError, match="no true-colour bands"):
        chips.render_pair([nir_only], _footprint())


def test_a_scene_that_does_not_cover_the_detection_is_refused(tmp_path):
    scene = _scene(tmp_path / "t.tif", random_reflectance(3, 100, 100))
    with pytest.raises(ImageryError, match="does not cover"):
        chips.render_pair([scene], _footprint(x0=50_000, y0=50_000))


def test_before_is_the_latest_scene_ending_before_the_after_begins():
    scenes = [{"period_start": f"{y}-01-01", "period_end": f"{y}-12-31", "name": str(y)}
              for y in (2019, 2021, 2023, 2024)]
    before, after = chips.pick_before_after(scenes, {"period_start": "2023-01-01",
                                                     "period_end": "2023-12-31"})
    assert (before["name"], after["name"]) == ("2021", "2023")
    before, after = chips.pick_before_after(scenes, {"period_start": None})
    assert (before["name"], after["name"]) == ("2023", "2024")
    assert chips.pick_before_after([], {}) == (None, None)


@needs_fixtures
def test_real_scene_chip_is_a_stretched_picture(tmp_path):
    tile = open_tile(SLOVENIA[0])
    west, south, east, north = tile.lonlat_bounds()
    centre = shapely.box(west, south, east, north).centroid
    footprint = shapely.box(centre.x - 0.002, centre.y - 0.002, centre.x + 0.002, centre.y + 0.002)
    (chip,) = chips.render_pair([{**scene_record(tile), "id": 1}], footprint)
    pixels = np.asarray(chip.image)
    assert chip.image.mode == "RGB" and pixels.std() > 10      # a picture, not a flat square
    assert chip.scene_id == 1 and chip.caption.startswith(tile.name)
