"""Footprints drawn in metres around (-57, -5) and a database of sites seen over four years,
shared by the sites and site-trends tests."""
import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from review.detection.importers import import_file

# Small squares are drawn in metres on UTM 21S around (-57, -5), its central meridian.
UTM = "EPSG:32721"
_E0, _N0 = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(-57.0, -5.0)
_TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
HA = 1.0008        # a 100 m square on the UTM plane (scale 0.9996 here) is 1.0008 ha on the ground


def rect(x, y, width, height=None):
    """A rectangle in lon/lat, its south-west corner x, y metres from the origin."""
    box = shapely.box(_E0 + x, _N0 + y, _E0 + x + width, _N0 + y + (height or width))
    return shapely.transform(box, lambda xy: np.column_stack(_TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


def load(db, folder, name, items):
    """Import (geometry, year or None) pairs as one GeoJSON file; returns the import report."""
    features = [{"type": "Feature", "properties": {"year": year, "n": f"{name}-{i}"},
                 "geometry": json.loads(shapely.to_geojson(geometry))}
                for i, (geometry, year) in enumerate(items)]
    path = folder / f"{name}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return import_file(db, path)


def db_path(db):
    return db.conn.execute("pragma database_list").fetchone()[2]


@pytest.fixture
def history_db(db, tmp_path):
    """Site 1 seen 2019 (1 ha), not 2020, 2021 grown to 2 ha, 2022 two overlapping
    footprints (2 ha together); site 2 only 2020 (1 ha); site 3 only 2022 (1 ha)."""
    load(db, tmp_path, "layers", [
        (rect(0, 0, 100), 2019),
        (rect(10_000, 0, 100), 2020),
        (rect(0, 0, 200, 100), 2021),
        (rect(0, 0, 200, 100), 2022), (rect(100, 0, 100), 2022),
        (rect(5_000, 0, 100), 2022),
    ])
    return db
