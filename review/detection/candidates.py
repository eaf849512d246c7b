"""From patch scores to candidate mine polygons, following earthrise's post-processing.

1. Keep patches with score >= t_main; they form the neighbour catalogue.
2. For each, the distance to its k-th nearest other patch in that catalogue; a patch
   farther than `isolation_km` from it (or with fewer than k neighbours) is isolated
   and is kept only if its score is also >= t_iso.
3. Dissolve touching or overlapping patches into polygons; each gets the mean and the
   maximum score of its patches and its area in hectares, measured in local UTM.

GeoJSON output follows RFC 7946: lon/lat (WGS 84), exterior rings counter-clockwise,
no "crs" member.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from shapely.geometry import mapping
from shapely.geometry.polygon import orient

from .detect import PatchScores
from .imagery import utm_crs_for

COORDINATE_DECIMALS = 7     # ~1 cm; keeps files small without moving a pixel edge
ISOLATION_K = 5
ISOLATION_KM = 3.0


@dataclass
class Candidate:
    geometry: shapely.Geometry     # in the tile's CRS
    score: float                   # mean score of its patches
    score_max: float
    patches: int
    area_ha: float


def kth_neighbour_km(xy_m: np.ndarray, k: int = ISOLATION_K) -> np.ndarray:
    """Distance in km from each point to its k-th nearest other point (inf if too few)."""
    from scipy.spatial import cKDTree          # here: a run without candidates never needs scipy

    n = len(xy_m)
    if n <= k:
        return np.full(n, np.inf)
    distances, _ = cKDTree(xy_m).query(xy_m, k=k + 1)
    return distances[:, k] / 1000.0


def keep_mask(scores: np.ndarray, centres_m: np.ndarray, t_main: float, t_iso: float,
              k: int = ISOLATION_K, isolation_km: float = ISOLATION_KM) -> np.ndarray:
    """Boolean mask over all patches: the two-threshold rule with the isolation filter."""
    keep = np.zeros(len(scores), dtype=bool)
    main = np.flatnonzero(scores >= t_main)
    if len(main) == 0:
        return keep
    isolated = kth_neighbour_km(centres_m[main], k) > isolation_km
    keep[main] = ~isolated | (scores[main] >= t_iso)
    return keep


def _metric_centres(result: PatchScores) -> np.ndarray:
    boxes = result.footprints()
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    crs = result.tile.crs
    if crs.is_projected and abs(crs.linear_units_factor[1] - 1.0) < 1e-9:
        return np.column_stack([cx, cy])
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    utm = utm_crs_for(float(np.mean(lon)), float(np.mean(lat)))
    x, y = Transformer.from_crs("EPSG:4326", utm, always_xy=True).transform(lon, lat)
    return np.column_stack([x, y])


def area_ha(geometry: shapely.Geometry, crs) -> float:
    """Area in hectares, measured in the local UTM zone of the geometry's centre."""
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lonlat = shapely.ops.transform(to_lonlat.transform, geometry)
    centre = lonlat.centroid
    utm = utm_crs_for(centre.x, centre.y)
    to_utm = Transformer.from_crs("EPSG:4326", utm, always_xy=True)
    return shapely.ops.transform(to_utm.transform, lonlat).area / 10_000


def candidates(result: PatchScores, t_main: float | None = None, t_iso: float | None = None,
               k: int = ISOLATION_K, isolation_km: float = ISOLATION_KM) -> list[Candidate]:
    t_main = result.card.t_main if t_main is None else t_main
    t_iso = result.card.t_iso if t_iso is None else t_iso
    if len(result) == 0:
        return []
    keep = keep_mask(result.scores, _metric_centres(result), t_main, t_iso, k, isolation_km)
    boxes = result.footprints()[keep]
    scores = result.scores[keep]
    if len(boxes) == 0:
        return []
    patches = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    merged = shapely.union_all(patches)
    parts = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
    tree = shapely.STRtree(patches)
    found = []
    for part in parts:
        # Patches that share area with the polygon (touching neighbours of other parts excluded).
        near = tree.query(part, predicate="intersects")
        members = near[shapely.area(shapely.intersection(patches[near], part)) > 0]
        member_scores = scores[members]
        found.append(Candidate(geometry=part, score=float(member_scores.mean()),
                               score_max=float(member_scores.max()), patches=len(members),
                               area_ha=area_ha(part, result.tile.crs)))
    found.sort(key=lambda c: -c.score)
    return found


# ------------------------------------------------------------------------- GeoJSON


def _round(value):
    if isinstance(value, float):
        return round(value, COORDINATE_DECIMALS)
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def to_lonlat_geojson(geometry: shapely.Geometry, crs) -> dict:
    """RFC 7946 geometry: WGS 84 lon/lat, exterior rings counter-clockwise."""
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lonlat = shapely.ops.transform(to_lonlat.transform, geometry)
    if lonlat.geom_type == "Polygon":
        lonlat = orient(lonlat, 1.0)
    elif lonlat.geom_type == "MultiPolygon":
        lonlat = shapely.MultiPolygon([orient(p, 1.0) for p in lonlat.geoms])
    geo = mapping(lonlat)
    return {"type": geo["type"], "coordinates": _round(geo["coordinates"])}


def _common_properties(result: PatchScores) -> dict:
    return {"model": result.card.id, "tile": result.tile.name,
            "period_start": result.tile.period_start, "period_end": result.tile.period_end}


def candidates_geojson(result: PatchScores, found: list[Candidate], t_main: float,
                       t_iso: float) -> dict:
    common = _common_properties(result)
    features = []
    for number, cand in enumerate(found, start=1):
        features.append({"type": "Feature", "id": number,
                         "geometry": to_lonlat_geojson(cand.geometry, result.tile.crs),
                         "properties": {"score": round(cand.score, 6),
                                        "score_max": round(cand.score_max, 6),
                                        "patches": cand.patches,
                                        "area_ha": round(cand.area_ha, 4),
                                        **common, "t_main": t_main, "t_iso": t_iso}})
    return {"type": "FeatureCollection", "features": features}


def raw_geojson(result: PatchScores) -> dict:
    """Every scored patch with its footprint and score, as earthrise's raw files.

    All footprints are transformed in one call: each is the ring of shapely.box in the
    tile's CRS (east-south, east-north, west-north, west-south, back), taken to lon/lat,
    turned counter-clockwise where the projection flipped it, rounded as to_lonlat_geojson
    rounds; the output is the same as calling it on each patch."""
    common = _common_properties(result)
    boxes = result.footprints()
    if len(boxes) == 0:
        return {"type": "FeatureCollection", "features": []}
    west, south, east, north = boxes.T
    xs = np.column_stack([east, east, west, west, east])
    ys = np.column_stack([south, north, north, south, south])
    to_lonlat = Transformer.from_crs(result.tile.crs, "EPSG:4326", always_xy=True)
    lon, lat = (np.asarray(v).reshape(xs.shape) for v in to_lonlat.transform(xs.ravel(), ys.ravel()))
    # Shoelace signed area of each closed ring; clockwise rings are reversed (as orient does).
    signed = (lon[:, :-1] * lat[:, 1:] - lon[:, 1:] * lat[:, :-1]).sum(axis=1)
    clockwise = signed < 0
    lon[clockwise] = lon[clockwise, ::-1]
    lat[clockwise] = lat[clockwise, ::-1]
    digits = COORDINATE_DECIMALS
    # Python's round (correctly rounded), not numpy's, so the digits match to_lonlat_geojson.
    lon_r = [round(v, digits) for v in lon.ravel().tolist()]
    lat_r = [round(v, digits) for v in lat.ravel().tolist()]
    points = [[x, y] for x, y in zip(lon_r, lat_r)]
    features = [{"type": "Feature",
                 "geometry": {"type": "Polygon", "coordinates": [points[5 * i:5 * i + 5]]},
                 "properties": {"score": round(score, 7), "row": row, "col": col, **common}}
                for i, (row, col, score) in enumerate(zip(result.rows.tolist(), result.cols.tolist(),
                                                          result.scores.tolist()))]
    return {"type": "FeatureCollection", "features": features}
