"""Footprints grouped into sites, and each site's area and state per period: the geometry of
`sites.build`, on arrays of shapely footprints, with no database.

Footprints within a distance of each other (overlap included) are one site: the connected
components of the "within distance" graph, the distances measured in each footprint's UTM
zone (an STRtree `dwithin` query per zone, footprints near a zone's edge taken in too).
Per period a site's area is the union of its footprints there, in hectares, in an
equal-area projection; its state is new, expanding (grown by more than `growth` over the
previous period it was seen in), stable, or not_seen.
"""
from __future__ import annotations

import math

import numpy as np
import shapely


def _transformer(crs: str):
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def project(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Lon/lat footprints in another CRS (a UTM zone, an equal-area projection)."""
    transformer = _transformer(crs)

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, move)


def _pairs(geoms: np.ndarray, distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of footprints within distance_m of each other (overlap included),
    measured in the UTM zone of i; footprints near the zone's edges are taken in as well."""
    bounds = shapely.bounds(geoms)
    zone = np.clip(np.floor(((bounds[:, 0] + bounds[:, 2]) / 2 + 180) / 6).astype(int), 0, 59)
    max_lat = min(float(np.abs(bounds[:, [1, 3]]).max()), 85.0)
    margin = distance_m / (111_320 * math.cos(math.radians(max_lat))) + 1e-6
    firsts, seconds = [], []
    for z in np.unique(zone):
        west = -180.0 + 6 * z
        near = np.flatnonzero((bounds[:, 2] >= west - margin) & (bounds[:, 0] <= west + 6 + margin))
        home = np.searchsorted(near, np.flatnonzero(zone == z))
        projected = project(geoms[near], f"EPSG:{32601 + z}")
        tree = shapely.STRtree(projected)
        left, right = tree.query(projected[home], predicate="dwithin", distance=distance_m)
        firsts.append(near[home[left]])
        seconds.append(near[right])
    if not firsts:
        return np.empty(0, int), np.empty(0, int)
    return np.concatenate(firsts), np.concatenate(seconds)


def components(geoms: np.ndarray, distance_m: float) -> np.ndarray:
    """Component label of each footprint (connected components of the within-distance graph:
    a union-find over the STRtree's pairs). Labels are numbered by each component's first
    footprint in input order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(geoms)
    if n == 0:
        return np.empty(0, int)
    first, second = _pairs(geoms, distance_m)
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber by first appearance so labels follow input (detection id) order.
    _, first_seen = np.unique(labels, return_index=True)
    order = np.argsort(first_seen)
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[labels]


def union_of(geoms: np.ndarray) -> shapely.Geometry:
    """One geometry covering the footprints (the footprint itself when there is one)."""
    return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)


def period_rows(labels: np.ndarray, periods: np.ndarray, all_periods: list[str],
                equal_area: np.ndarray, growth: float) -> list[tuple]:
    """(label, period, area_ha, cumulative area_ha, state, detections) for every site from
    its first period on; areas of unions in the equal-area projection."""
    if not all_periods:
        return []
    index_of = {p: i for i, p in enumerate(all_periods)}
    pidx = np.array([index_of.get(p, -1) for p in periods], dtype=np.int64)
    dated = np.flatnonzero(pidx >= 0)
    order = dated[np.lexsort((dated, pidx[dated], labels[dated]))]
    keys = labels[order] * len(all_periods) + pidx[order]
    starts = np.flatnonzero(np.r_[True, np.diff(keys) != 0])
    ends = np.r_[starts[1:], len(order)]
    unions = equal_area[order[starts]].copy()
    for g in np.flatnonzero(ends - starts > 1):
        unions[g] = shapely.union_all(equal_area[order[starts[g]:ends[g]]])
    areas = shapely.area(unions) / 10_000
    group_label = labels[order[starts]]
    group_period = pidx[order[starts]]
    # Cumulative union per site, period by period (a site seen once needs no union).
    cumulative = areas.copy()
    site_starts = np.flatnonzero(np.r_[True, np.diff(group_label) != 0])
    site_ends = np.r_[site_starts[1:], len(starts)]
    for first, last in zip(site_starts, site_ends):
        union = unions[first]
        for g in range(first + 1, last):
            union = shapely.union(union, unions[g])
            cumulative[g] = shapely.area(union) / 10_000
    rows = []
    for first, last in zip(site_starts, site_ends):
        label = int(group_label[first])
        seen = {int(group_period[g]): g for g in range(first, last)}
        previous, total = None, 0.0
        for p in range(int(group_period[first]), len(all_periods)):
            g = seen.get(p)
            if g is None:
                rows.append((label, all_periods[p], 0.0, total, "not_seen", 0))
                continue
            area, total = float(areas[g]), float(cumulative[g])
            if previous is None:
                state = "new"
            elif area > previous * (1 + growth):
                state = "expanding"
            else:
                state = "stable"
            previous = area
            rows.append((label, all_periods[p], area, total, state, int(ends[g] - starts[g])))
    return rows
