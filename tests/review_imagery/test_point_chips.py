"""Chips of assessment points: the same imagery machinery as detections (stored scenes of
the design's period and the year before, prepared ahead into the chip cache), a crosshair
with an open centre at the point and no outline, and chips that never mix with a
detection's of the same number."""
import numpy as np
import shapely
from PIL import Image
from pyproj import Transformer

from review.analysis import assessment
from review.detection.imagery import open_tile
from review.detection.runs import scene_record
from review.review_imagery import chip_cache, chips, preparation
from review.store import add_scene

from tests.conftest import UTM33_ORIGIN, write_tile

TO_LONLAT = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)


def _lonlat_box(left, bottom, right, top):
    xs, ys = TO_LONLAT.transform([left, right, left, right], [bottom, bottom, top, top])
    return shapely.box(min(xs), min(ys), max(xs), max(ys))


def _design_with_scenes(db, tmp_path):
    """Two 4 km tiles (2023, 2024) in UTM 33N, grey gradients (so only a mark is coloured);
    a detection of 2024 in the middle; a design whose points (and the ground around them)
    all lie inside the tiles."""
    x0, y0 = UTM33_ORIGIN
    grey = np.add.outer(np.arange(400), np.arange(400)).astype("uint16") * 5 + 500
    for year in (2023, 2024):
        path = write_tile(tmp_path / f"s2_{year}.tif", np.stack([grey] * 4),
                          ["B2", "B3", "B4", "B8"], origin=UTM33_ORIGIN,
                          tags={"PERIOD_START": f"{year}-01-01", "PERIOD_END": f"{year}-12-31"})
        add_scene(db, scene_record(open_tile(path)))
    footprint = _lonlat_box(x0 + 1900, y0 - 2100, x0 + 2100, y0 - 1900)
    west, south, east, north = footprint.bounds
    db["detections"].insert({"source": "t", "external_id": "t-1", "geometry": shapely.to_geojson(footprint),
                             "lon": footprint.centroid.x, "lat": footprint.centroid.y, "west": west,
                             "south": south, "east": east, "north": north, "score": 0.9,
                             "period_start": "2024-01-01", "period_end": "2024-12-31"})
    region = _lonlat_box(x0 + 800, y0 - 3200, x0 + 3200, y0 - 800)
    strata = assessment.make_strata(db, region, assessment.parse_period("2024"),
                                    *assessment.parse_strata("detected,near:300,rest"))
    return assessment.create(db, "tiles", strata, [2, 2, 2], "given")


def test_points_get_before_and_after_chips_with_a_crosshair_and_no_outline(db, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes")
    design = _design_with_scenes(db, tmp_path)
    from review.judging import unit_labels

    units = [unit_labels.unit(db, u["unit_id"]) for u in assessment.units(db, design)]
    places = [preparation.unit_place(u) for u in units]
    done = preparation.prepare_places(db, places, len(places))
    assert (done.prepared, done.failed) == (6, 0)
    cache = chip_cache.cache_for(db)
    for place in places:
        prepared = cache.lookup(place)
        assert prepared.before.imagery.start == "2023-01-01"
        assert prepared.after.imagery.start == "2024-01-01"
        image = np.asarray(Image.open(prepared.after.path("true")).convert("RGB")).astype(int)
        red, green, blue = image[..., 0], image[..., 1], image[..., 2]
        yellow = (red - blue > 80) & (green - blue > 60)
        rows, cols = np.nonzero(yellow)
        # The mark is centred on the point (the middle of the chip, give or take a pixel
        # of the window's rounding) and nothing else is marked: no outline anywhere.
        centre_row, centre_col = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
        assert abs(centre_row - image.shape[0] / 2) < 6 and abs(centre_col - image.shape[1] / 2) < 6
        reach = chips.CROSSHAIR_GAP_PX + chips.CROSSHAIR_ARM_PX + 3
        assert len(rows) > 4 * chips.CROSSHAIR_ARM_PX
        assert rows.max() - rows.min() <= 2 * reach and cols.max() - cols.min() <= 2 * reach
        # The centre is left open, so the ground judged is seen as it is.
        gap = chips.CROSSHAIR_GAP_PX - 2
        assert not yellow[int(centre_row) - gap:int(centre_row) + gap,
                          int(centre_col) - gap:int(centre_col) + gap].any()
    # A point's chips are kept apart from detection #1's (ids are negative for points).
    assert all(place["id"] < 0 for place in places)
    assert cache.lookup(db["detections"].get(1)) is None
    # Prepared once: a second run finds them all in the cache.
    again = preparation.prepare_places(db, places, len(places))
    assert again.cached == 6
