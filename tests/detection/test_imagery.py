import numpy as np
import pytest
from rasterio.windows import Window

from review.detection.imagery import canonical_band, open_tile, parse_band_mapping
from review.errors import BandError, ImageryError

from tests.conftest import GHANA, needs_fixtures, random_reflectance, write_tile


@pytest.mark.parametrize("raw, name", [
    ("B02", "B2"), ("b2", "B2"), ("B08", "B8"), ("B8A", "B8A"), ("b08a", "B8A"),
    ("nir08", "B8A"), ("nir", "B8"), ("swir16", "B11"), ("S2A_B11", "B11"), ("B10", "B10"),
    ("VV", "VV"), ("ndvi", "NDVI"), ("", None), (None, None),
])
def test_band_names_are_canonical(raw, name):
    assert canonical_band(raw) == name


def test_band_mapping_rejects_duplicates_and_keeps_ignored_bands():
    assert parse_band_mapping("B2, B03,-,nir") == ["B2", "B3", "-", "B8"]
    with pytest.raises(BandError, match="B2 more than once"):
        parse_band_mapping("B2,B02")


def test_open_tile_knows_bands_grid_nodata_and_period(tmp_path):
    path = write_tile(tmp_path / "t.tif", random_reflectance(3, 20, 30), ["B04", "B03", "B02"],
                      nodata=0, tags={"PERIOD_START": "2023-01-01", "PERIOD_END": "2023-12-31",
                                      "PRODUCT": "S2L1C"})
    tile = open_tile(path)
    assert tile.band_names == ("B4", "B3", "B2")
    assert tile.band_index("B02") == 3
    assert (tile.width, tile.height) == (30, 20)
    assert tile.crs.to_epsg() == 32633
    assert tile.pixel_size == (10.0, 10.0)
    assert tile.nodata == 0
    assert (tile.period_start, tile.period_end) == ("2023-01-01", "2023-12-31")
    assert tile.product == "S2L1C"
    assert not tile.warped


def test_given_period_and_mapping_override_the_file(tmp_path):
    path = write_tile(tmp_path / "t.tif", random_reflectance(2, 8, 8), ["B04", "B03"],
                      tags={"PERIOD_START": "2020-01-01", "PERIOD_END": "2020-12-31"})
    tile = open_tile(path, bands="B8,-", period=("2024-01-01", "2024-06-30"))
    assert tile.band_names == ("B8", "-")
    assert (tile.period_start, tile.period_end) == ("2024-01-01", "2024-06-30")
    with pytest.raises(BandError, match="gives 3 names but the file has 2 bands"):
        open_tile(path, bands="B2,B3,B4")


def test_nodata_pixels_are_reported_invalid(tmp_path):
    data = random_reflectance(2, 10, 10)
    data[:, :3, :] = 0
    tile = open_tile(write_tile(tmp_path / "t.tif", data, ["B2", "B3"], nodata=0))
    with tile.reader() as reader:
        pixels, valid = reader.read(Window(0, 0, 10, 10), [1, 2])
    assert pixels.dtype == np.float32
    assert not valid[:3].any() and valid[3:].all()


def test_not_a_raster_is_refused(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("this is not an image")
    with pytest.raises(ImageryError, match="not a raster"):
        open_tile(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ImageryError, match="no such file"):
        open_tile(tmp_path / "nope.tif")


def test_truncated_geotiff_fails_on_read_with_a_clear_message(tmp_path):
    import rasterio.shutil

    plain = write_tile(tmp_path / "plain.tif", random_reflectance(4, 200, 200),
                       ["B2", "B3", "B4", "B8"])
    path = tmp_path / "t.tif"
    rasterio.shutil.copy(plain, path, driver="COG")   # header first, pixels after it
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 3])
    tile = open_tile(path)          # the header is intact, so it opens
    with pytest.raises(ImageryError, match="truncated or corrupt"):
        with tile.reader() as reader:
            reader.read(Window(0, 0, 200, 200), [1, 2, 3, 4])


def test_tile_without_georeferencing_is_refused(tmp_path):
    path = write_tile(tmp_path / "t.tif", random_reflectance(2, 8, 8), ["B2", "B3"], crs=None)
    with pytest.raises(ImageryError, match="no georeferencing"):
        open_tile(path)


def test_tile_over_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    path = write_tile(tmp_path / "t.tif", random_reflectance(1, 40, 50), ["B2"])
    with pytest.raises(ImageryError, match="larger than the limit of 1,000 pixels"):
        open_tile(path, max_pixels=1000)
    monkeypatch.setenv("REVIEW_MAX_TILE_PIXELS", "1999")
    with pytest.raises(ImageryError, match="REVIEW_MAX_TILE_PIXELS"):
        open_tile(path)
    monkeypatch.setenv("REVIEW_MAX_TILE_PIXELS", "2000")
    assert open_tile(path).width == 50


def test_geographic_tile_is_warped_to_utm_at_10m(tmp_path):
    # 0.01 degree at the equator near Accra is about 1.1 km: ~111 pixels of 10 m.
    data = random_reflectance(2, 100, 100)
    path = write_tile(tmp_path / "geo.tif", data, ["B2", "B3"], crs="EPSG:4326",
                      origin=(-0.2, 5.6), pixel=0.0001)
    tile = open_tile(path)
    assert tile.warped and tile.source_crs.to_epsg() == 4326
    assert tile.crs.to_epsg() == 32630
    assert tile.pixel_size == (10.0, 10.0)
    assert tile.transform.c % 10 == 0 and tile.transform.f % 10 == 0
    assert 105 <= tile.width <= 115 and 105 <= tile.height <= 115
    with tile.reader() as reader:
        pixels, valid = reader.read(Window(0, 0, tile.width, tile.height), [1])
    # Nearest-neighbour warping keeps the original digital numbers.
    assert set(np.unique(pixels[0][valid])) <= set(np.unique(data[0]).astype(np.float32))
    assert valid.mean() > 0.9


@needs_fixtures
def test_real_ghana_tile_is_unnamed_and_warped():
    tile = open_tile(GHANA / "galamsey_001.tif")
    assert tile.band_names == (None,) * 8
    assert tile.crs.to_epsg() == 32630 and tile.pixel_size == (10.0, 10.0)


def test_reflectance_fractions_are_read_as_digital_numbers(tmp_path):
    dn = random_reflectance(3, 20, 20)
    fractions = open_tile(write_tile(tmp_path / "f.tif", dn / 10000.0, ["B4", "B3", "B2"],
                                     dtype="float32"))
    assert fractions.value_scale == 10000
    assert "f.tif holds reflectance as fractions" in fractions.rescaled_note
    with fractions.reader() as reader:
        pixels, valid = reader.read(Window(0, 0, 20, 20), [1, 2, 3])
    assert valid.all()
    np.testing.assert_allclose(pixels, dn, rtol=1e-6)


@pytest.mark.parametrize("case", ["integers", "float digital numbers", "indices only",
                                  "unnamed bands"])
def test_other_tiles_are_read_as_they_are(tmp_path, case):
    dn = random_reflectance(2, 20, 20)
    data, names = {
        "integers": (dn, ["B4", "B3"]),
        "float digital numbers": (dn.astype("float64"), ["B4", "B3"]),
        "indices only": ((dn - 3000) / 6000.0, ["NDVI", "NDWI"]),   # values in -1..1
        "unnamed bands": (dn / 10000.0, None),
    }[case]
    tile = open_tile(write_tile(tmp_path / "t.tif", data, names))
    assert tile.value_scale == 1 and tile.rescaled_note is None
    with tile.reader() as reader:
        pixels, _ = reader.read(Window(0, 0, 20, 20), [1, 2])
    np.testing.assert_allclose(pixels, data.astype("float32"))
