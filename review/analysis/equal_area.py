"""The one projection every hectare is measured in: EPSG:6933 (WGS 84 / NSIDC EASE-Grid 2.0
Global), equal area, in metres. Sites, trends, context overlaps, area assessments and
dossiers all take it from here, so their hectares agree."""
from __future__ import annotations

import numpy as np
import shapely

EQUAL_AREA = "EPSG:6933"


def to_equal_area(geometries: np.ndarray) -> np.ndarray:
    """Lon/lat geometries in EPSG:6933 (metres, equal area)."""
    import pyproj

    transformer = pyproj.Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    return shapely.transform(np.asarray(geometries, dtype=object), lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))
