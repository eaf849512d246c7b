import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin

from review.detection.candidates import (candidates, candidates_geojson, keep_mask,
                                         kth_neighbour_km, raw_geojson)
from review.detection.detect import PatchScores
from review.detection.imagery import Tile
from review.detection.models import ModelCard

CARD = ModelCard(id="m", filename="m.h5", sha256=None, patch_size=48, bands=("B2",),
                 scaling="reflectance", output="sigmoid", t_raw=0.4, t_main=0.5, t_iso=0.8)


def _tile(width=4000, height=4000):
    return Tile(path=Path("scene.tif"), band_names=("B2",),
                crs=CRS.from_epsg(32721), transform=from_origin(600000, 9000000, 10, 10),
                width=width, height=height, dtype="uint16", nodata=None,
                period_start="2023-01-01", period_end="2023-12-31")


def _result(cells, scores):
    rows = np.array([r for r, _ in cells]) * 24
    cols = np.array([c for _, c in cells]) * 24
    return PatchScores(tile=_tile(), card=CARD, rows=rows, cols=cols,
                       scores=np.array(scores, dtype=np.float32))


def test_kth_neighbour_distance_needs_k_other_points():
    points = np.array([[0, 0], [1000, 0], [2000, 0]], dtype=float)
    assert np.isinf(kth_neighbour_km(points, k=5)).all()
    assert kth_neighbour_km(points, k=2).tolist() == [2.0, 1.0, 2.0]


def test_two_threshold_rule_with_isolation():
    # Nine patches close together (a 3x3 block) and one 20 km away.
    centres = np.array([[x, y] for y in (0, 240, 480) for x in (0, 240, 480)] + [[20000, 0]],
                       dtype=float)
    scores = np.array([0.6, 0.55, 0.7, 0.9, 0.5, 0.45, 0.6, 0.6, 0.6, 0.79])
    keep = keep_mask(scores, centres, t_main=0.5, t_iso=0.8)
    # In the block: kept at >= t_main; the 0.45 patch is below t_main.
    assert keep.tolist() == [True] * 5 + [False] + [True] * 3 + [False]
    # The isolated patch survives only at >= t_iso.
    scores[-1] = 0.85
    assert keep_mask(scores, centres, t_main=0.5, t_iso=0.8)[-1]


def test_patches_below_t_main_do_not_count_as_neighbours():
    centres = np.array([[0, 0], [240, 0], [480, 0], [720, 0], [960, 0], [1200, 0]], dtype=float)
    scores = np.array([0.6, 0.6, 0.6, 0.6, 0.6, 0.3])
    # Only 5 patches reach t_main, so none has a 5th neighbour: all are isolated.
    assert not keep_mask(scores, centres, t_main=0.5, t_iso=0.8).any()


def test_touching_patches_dissolve_and_areas_are_in_hectares():
    # A 3x3 block of overlapping patches (stride 24 px = 240 m) and a single strong patch far away.
    block = [(r, c) for r in range(3) for c in range(3)]
    result = _result(block + [(100, 100)], [0.6] * 8 + [0.9] + [0.95])
    found = candidates(result)
    assert len(found) == 2
    big = max(found, key=lambda c: c.area_ha)
    # 3 patches of 480 m at a 240 m stride cover 960 m x 960 m = 92.16 ha.
    assert big.area_ha == pytest.approx(92.16, rel=1e-3)
    assert big.patches == 9
    assert big.score == pytest.approx((0.6 * 8 + 0.9) / 9, rel=1e-6)
    assert big.score_max == pytest.approx(0.9)
    lone = min(found, key=lambda c: c.area_ha)
    assert lone.area_ha == pytest.approx(23.04, rel=1e-3) and lone.patches == 1


def test_candidates_geojson_is_rfc7946():
    result = _result([(r, c) for r in range(3) for c in range(3)], [0.7] * 9)
    collection = candidates_geojson(result, candidates(result), 0.5, 0.8)
    assert "crs" not in collection
    (feature,) = collection["features"]
    props = feature["properties"]
    assert props["model"] == "m" and props["tile"] == "scene.tif"
    assert props["period_start"] == "2023-01-01" and props["area_ha"] == pytest.approx(92.16, rel=1e-3)
    ring = feature["geometry"]["coordinates"][0]
    lons, lats = zip(*ring)
    assert all(-180 <= x <= 180 for x in lons) and all(-90 <= y <= 90 for y in lats)
    assert -58 < lons[0] < -56 and -10 < lats[0] < -8        # UTM 21S near the origin used
    assert ring[0] == ring[-1]
    assert shapely.Polygon(ring).exterior.is_ccw                # right-hand rule


def test_raw_geojson_has_every_patch_and_score():
    result = _result([(0, 0), (0, 1), (5, 5)], [0.1, 0.2, 0.3])
    collection = raw_geojson(result)
    assert [f["properties"]["score"] for f in collection["features"]] == pytest.approx([0.1, 0.2, 0.3])
    polygon = shapely.geometry.shape(collection["features"][0]["geometry"])
    assert len(polygon.exterior.coords) == 5


def test_no_patches_means_no_candidates():
    assert candidates(_result([(0, 0)], [0.1])) == []


def _raw_geojson_per_patch(result):
    """The per-patch implementation raw_geojson replaced, kept as the reference."""
    from shapely.geometry import box

    from review.detection.candidates import _common_properties, to_lonlat_geojson

    common = _common_properties(result)
    features = []
    for (w, s, e, n), row, col, score in zip(result.footprints(), result.rows, result.cols,
                                             result.scores):
        features.append({"type": "Feature",
                         "geometry": to_lonlat_geojson(box(w, s, e, n), result.tile.crs),
                         "properties": {"score": round(float(score), 7), "row": int(row),
                                        "col": int(col), **common}})
    return {"type": "FeatureCollection", "features": features}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("epsg, origin", [
    (32721, (600000, 9000000)),      # UTM 21S, as the Amazon tiles
    (22275, (10000, 3700000)),       # South African Lo15: westing/southing, rings come out clockwise
])
def test_raw_geojson_is_byte_for_byte_what_the_per_patch_code_wrote(epsg, origin):
    tile = Tile(path=Path("scene.tif"), band_names=("B2",), crs=CRS.from_epsg(epsg),
                transform=from_origin(*origin, 10, 10), width=400, height=400, dtype="uint16",
                nodata=None, period_start="2023-01-01", period_end="2023-12-31")
    rows, cols = np.meshgrid(np.arange(0, 240, 24), np.arange(0, 72, 24), indexing="ij")
    scores = np.random.default_rng(3).random(rows.size).astype(np.float32)
    result = PatchScores(tile=tile, card=CARD, rows=rows.ravel(), cols=cols.ravel(), scores=scores)
    fast = raw_geojson(result)
    assert json.dumps(fast) == json.dumps(_raw_geojson_per_patch(result))
    for feature in fast["features"]:                            # RFC 7946 either way
        assert shapely.Polygon(feature["geometry"]["coordinates"][0]).exterior.is_ccw


def test_raw_geojson_of_no_patches_is_an_empty_collection():
    result = PatchScores(tile=_tile(), card=CARD, rows=np.zeros(0, np.int64),
                         cols=np.zeros(0, np.int64), scores=np.zeros(0, np.float32))
    assert raw_geojson(result) == {"type": "FeatureCollection", "features": []}
