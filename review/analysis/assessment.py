"""Area assessment: a stratified random sample of reference labels over a whole region.

The detector's map only knows what it found; ground it missed never enters a count of
detections. A design (Olofsson et al. 2014; Stehman 2014, strata that differ from the map)
splits a region into strata: `detected` (the union of the detections' footprints in the
region and period: the map's "mining"), `near` (a ring within a distance of them, measured
in the region's local UTM zone, where misses concentrate) and `rest`. Each stratum's area
is measured in EPSG:6933 (equal area), and sample units are points drawn independently and
uniformly by area inside it (seeded), kept in the order drawn: any prefix of a stratum's
units is itself a simple random sample, so labelling can stop anywhere and still estimate.

A design is stored in one transaction: a crash leaves all of it or none. Labels of its
units live in review.judging.unit_labels; the estimate in review.analysis.area_results.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import shapely
from pyproj import Transformer

from ..errors import ReviewError
from ..store import now, transaction
from .equal_area import EQUAL_AREA
from .periods import period_label

DEFAULT_NEAR_M = 1000.0
DEFAULT_N = 50            # per stratum with area when no size is asked (Olofsson: 50-100)
STRATUM_KINDS = ("detected", "near", "rest")
MAPPED = ("detected",)    # the strata the map calls mining
# Region edges are straight in lon/lat; densified before projecting so they stay put.
DENSIFY_DEG = 0.01


class AssessmentError(ReviewError):
    """A design cannot be made or used as asked."""


@dataclass
class Period:
    label: str
    start: str
    end: str


def parse_period(text: str) -> Period:
    """`YYYY` or `START/END` (ISO dates)."""
    text = (text or "").strip()
    if re.fullmatch(r"\d{4}", text):
        return Period(text, f"{text}-01-01", f"{text}-12-31")
    if "/" in text:
        start, end = (part.strip() for part in text.split("/", 1))
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            first = last = None
        if first and last and first <= last:
            return Period(text, first.isoformat(), last.isoformat())
    raise AssessmentError(f"--period must be a year (2024) or START/END dates "
                          f"(2024-01-01/2024-06-30), not {text!r}")


def parse_strata(text: str | None) -> tuple[list[str], float | None]:
    """`detected,near:METRES,rest` as (names in order, the near distance or None)."""
    names, near_m = [], None
    for part in (text or f"detected,near:{DEFAULT_NEAR_M:g},rest").split(","):
        name, _, value = part.strip().partition(":")
        if name not in STRATUM_KINDS:
            raise AssessmentError(f"unknown stratum {name!r}: use detected, near:METRES and rest")
        if name in names:
            raise AssessmentError(f"stratum {name} is named twice")
        if name == "near":
            try:
                near_m = float(value) if value else DEFAULT_NEAR_M
            except ValueError:
                raise AssessmentError(f"near:{value}: the distance must be metres, e.g. near:1000") from None
            if not 0 < near_m <= 100_000:
                raise AssessmentError("the near stratum's distance must be over 0 and at most 100 km")
        elif value:
            raise AssessmentError(f"stratum {name} takes no value")
        names.append(name)
    if "detected" not in names or "rest" not in names:
        raise AssessmentError("the strata must include detected and rest (near is optional)")
    return names, near_m


def parse_sizes(text: str, count: int) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise AssessmentError(f"--n must be whole numbers separated by commas, not {text!r}") from None
    if len(sizes) != count:
        raise AssessmentError(f"--n gives {len(sizes)} sizes for {count} strata")
    if any(s < 0 for s in sizes):
        raise AssessmentError("a stratum's sample size cannot be negative")
    return sizes


@dataclass
class StratumGeometry:
    name: str
    geometry: shapely.Geometry          # EPSG:6933, metres
    detections: int = 0

    @property
    def area_ha(self) -> float:
        return float(self.geometry.area) / 10_000

    @property
    def mapped(self) -> bool:
        return self.name in MAPPED


@dataclass
class Strata:
    """A region split into strata, with what they were made from."""

    region: shapely.Geometry            # lon/lat
    period: Period
    sources: list[str]
    near_m: float | None
    utm_epsg: int
    strata: list[StratumGeometry] = field(default_factory=list)

    def by_name(self) -> dict[str, StratumGeometry]:
        return {s.name: s for s in self.strata}


def utm_epsg(geometry: shapely.Geometry) -> int:
    """The WGS 84 UTM zone of a lon/lat geometry's centre."""
    centre = geometry.centroid
    zone = min(60, int((centre.x + 180) // 6) + 1)
    return (32600 if centre.y >= 0 else 32700) + zone


def check_region(region: shapely.Geometry) -> shapely.Geometry:
    if region is None or region.is_empty or region.geom_type not in ("Polygon", "MultiPolygon"):
        raise AssessmentError("the region must be a polygon")
    if not region.is_valid:
        region = shapely.make_valid(region)
        region = shapely.union_all([g for g in shapely.get_parts(region)
                                    if g.geom_type in ("Polygon", "MultiPolygon")])
    west, south, east, north = region.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise AssessmentError("the region is not in longitude and latitude degrees")
    return region


def footprints(db, region: shapely.Geometry, period: Period, sources: list[str] | None = None,
               statuses: tuple[str, ...] | None = None) -> list[shapely.Geometry]:
    """Footprints (lon/lat) of the detections that touch the region, of the period (by the
    middle day of each detection's period, as Trends counts them), of the sources and, if
    given, of these review statuses."""
    west, south, east, north = region.bounds
    sql = ("select geometry, period_start, period_end from detections where east >= ? and "
           "west <= ? and north >= ? and south <= ? and period_start <= ?")
    params: list = [west, east, south, north, period.end]
    if sources:
        sql += f" and source in ({', '.join('?' * len(sources))})"
        params += list(sources)
    if statuses:
        sql += f" and status in ({', '.join('?' * len(statuses))})"
        params += list(statuses)
    shapely.prepare(region)
    found = []
    for geometry, start, end in db.execute(sql, params):
        middle = _middle(start, end)
        if middle is None or not period.start <= middle <= period.end:
            continue
        try:
            shape = shapely.from_geojson(geometry)
        except shapely.errors.GEOSException:
            continue                     # an unreadable footprint draws nothing here either
        if shape.is_empty:
            continue
        if not shape.is_valid:
            shape = shapely.make_valid(shape)
        if region.intersects(shape):
            found.append(shape)
    return found


def _middle(start: str | None, end: str | None) -> str | None:
    if not start:
        return None
    try:
        first = date.fromisoformat(start[:10])
        last = date.fromisoformat((end or start)[:10])
    except ValueError:
        label = period_label(start, end, "year")
        return f"{label}-07-01" if label else None
    return (first + (max(last, first) - first) / 2).isoformat()


def _project(geometry: shapely.Geometry, transformer: Transformer) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))


def make_strata(db, region: shapely.Geometry, period: Period, names: list[str],
                near_m: float | None, sources: list[str] | None = None) -> Strata:
    """The region split into the named strata (equal-area geometries)."""
    region = check_region(region)
    epsg = utm_epsg(region)
    to_area = Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    utm_to_area = Transformer.from_crs(f"EPSG:{epsg}", EQUAL_AREA, always_xy=True)
    region_area = shapely.make_valid(_project(shapely.segmentize(region, DENSIFY_DEG), to_area))
    found = footprints(db, region, period, sources)
    detected_ll = shapely.union_all(found) if found else shapely.Polygon()
    detected = shapely.intersection(shapely.make_valid(_project(detected_ll, to_area)), region_area)
    strata = Strata(region, period, list(sources or []), near_m if "near" in names else None, epsg)
    taken = detected
    pieces = {"detected": StratumGeometry("detected", _polygons(detected), len(found))}
    if "near" in names:
        if detected_ll.is_empty:
            zone = shapely.Polygon()
        else:
            # The distance is measured in the local UTM zone, as a person on the ground would.
            zone_utm = shapely.buffer(_project(detected_ll, to_utm), near_m, quad_segs=8)
            zone = shapely.make_valid(_project(zone_utm, utm_to_area))
        near = shapely.difference(shapely.intersection(zone, region_area), detected)
        pieces["near"] = StratumGeometry("near", _polygons(near))
        taken = shapely.union(taken, near)
    pieces["rest"] = StratumGeometry("rest", _polygons(shapely.difference(region_area, taken)))
    strata.strata = [pieces[name] for name in names]
    return strata


def covered_area_ha(region: shapely.Geometry, shapes: list[shapely.Geometry]) -> float:
    """The area (EPSG:6933, hectares) of the union of lon/lat shapes inside a region."""
    if not shapes:
        return 0.0
    to_area = Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    region_area = shapely.make_valid(_project(shapely.segmentize(region, DENSIFY_DEG), to_area))
    union = shapely.make_valid(_project(shapely.union_all(shapes), to_area))
    return float(shapely.intersection(union, region_area).area) / 10_000


def region_of(db, design_id: int) -> tuple[shapely.Geometry, list[str]]:
    """A stored design's region (lon/lat) and the sources it was limited to."""
    region, sources = db.execute("select region, sources from assessments where id = ?",
                                 [design_id]).fetchone()
    return shapely.from_geojson(region), json.loads(sources or "[]")


def _polygons(geometry: shapely.Geometry) -> shapely.Geometry:
    """Only the areal parts of an overlay's result (slivers of lines and points dropped)."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon" and g.area > 0]
    return shapely.MultiPolygon(parts) if parts else shapely.MultiPolygon()


def uniform_points(geometry: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points drawn independently and uniformly by area inside a planar geometry, in
    draw order (n x 2): a part is chosen by its area, then a point by rejection in the
    part's bounding box."""
    if n == 0:
        return np.empty((0, 2))
    parts = [g for g in shapely.get_parts(geometry) if g.area > 0]
    if not parts:
        raise AssessmentError("cannot draw units in a stratum with no area")
    areas = np.array([p.area for p in parts])
    chosen = rng.choice(len(parts), size=n, p=areas / areas.sum())
    points = np.empty((n, 2))
    for index in np.unique(chosen):
        part = parts[index]
        shapely.prepare(part)
        slots = np.flatnonzero(chosen == index)
        west, south, east, north = part.bounds
        fill = max(part.area / max((east - west) * (north - south), 1e-9), 1e-4)
        kept: list[np.ndarray] = []
        have = 0
        while have < len(slots):
            batch = int(min(1_000_000, max(64, 2 * (len(slots) - have) / fill)))
            xs = rng.uniform(west, east, batch)
            ys = rng.uniform(south, north, batch)
            inside = shapely.contains_xy(part, xs, ys)
            got = np.column_stack([xs[inside], ys[inside]])
            kept.append(got)
            have += len(got)
        points[slots] = np.concatenate(kept)[:len(slots)]
    return points


def stratum_rng(seed: int, position: int) -> np.random.Generator:
    """Each stratum's own stream: changing one stratum's n leaves the others' units as they were."""
    return np.random.default_rng([seed, position])


BLOCK = 256


def stratum_points(geometry: shapely.Geometry, n: int, seed: int, position: int) -> np.ndarray:
    """A stratum's first n points of its seeded sequence, drawn in blocks of BLOCK, each
    from its own stream: the same seed gives the same points, and a larger n only adds
    points after them (a design enlarged later keeps its units and their order)."""
    blocks = [uniform_points(geometry, BLOCK, np.random.default_rng([seed, position, b]))
              for b in range(-(-n // BLOCK))]
    return np.concatenate(blocks)[:n] if blocks else np.empty((0, 2))


@dataclass
class Design:
    id: int
    name: str
    period: Period
    strata: list[dict]                  # name, area_ha, n, mapped, detections
    sizing: str
    near_m: float | None

    def summary(self) -> str:
        parts = []
        for s in self.strata:
            empty = " (empty: no detections in the region and period)" if (
                s["name"] == "detected" and s["area_ha"] == 0) else ""
            parts.append(f"{s['name']} {s['area_ha']:,.1f} ha, n={s['n']}{empty}")
        return (f"design {self.name} ({self.period.label}): " + "; ".join(parts)
                + f"; {sum(s['n'] for s in self.strata)} units. {self.sizing}")


def plan_for(strata: Strata, target_se_ha: float, expected_accuracy: dict[str, float] | None = None):
    """Sample sizes for a target standard error of the mined area (Olofsson et al. 2014
    eq. 13): `expected_accuracy` gives a stratum's expected user's accuracy as a map class
    (for `detected`, the share that is mining; elsewhere, the share that is not)."""
    from .area_estimate import plan

    expected = dict(expected_accuracy or {})
    unknown = set(expected) - {s.name for s in strata.strata}
    if unknown:
        raise AssessmentError(f"--expected-accuracy names {', '.join(sorted(unknown))}, which is "
                              "not a stratum of this design")
    return plan({s.name: s.area_ha for s in strata.strata},
                {k: v for k, v in expected.items() if k in MAPPED} or 0.9,
                target_se_ha=target_se_ha,
                expected_share={k: 1 - v for k, v in expected.items() if k not in MAPPED} or None,
                mapped=tuple(s.name for s in strata.strata if s.mapped))


def sizes_for(strata: Strata, sizes: list[int] | None) -> tuple[list[int], str]:
    """Each stratum's n: as given (an empty stratum gets none), else DEFAULT_N each."""
    if sizes is None:
        sizes = [DEFAULT_N if s.area_ha > 0 else 0 for s in strata.strata]
        how = f"Sizes: {DEFAULT_N} units per stratum with area (the default; see `assess plan`)."
    else:
        how = "Sizes as given."
    final = []
    for stratum, n in zip(strata.strata, sizes):
        if stratum.area_ha <= 0:
            final.append(0)
        elif n == 0:
            raise AssessmentError(f"stratum {stratum.name} has {stratum.area_ha:,.1f} ha but n is 0: "
                                  "a stratum with area needs units, or its area is never estimated")
        else:
            final.append(n)
    return final, how


def create(db, name: str, strata: Strata, sizes: list[int], sizing: str, seed: int = 1,
           by: str | None = None) -> Design:
    """Draw the units and store the design, all in one transaction."""
    name = (name or "").strip()
    if not name:
        raise AssessmentError("a design needs a name")
    rows = []
    for position, (stratum, n) in enumerate(zip(strata.strata, sizes), start=1):
        points = stratum_points(stratum.geometry, n, seed, position)
        if len(points):
            lon, lat = Transformer.from_crs(EQUAL_AREA, "EPSG:4326", always_xy=True).transform(
                points[:, 0], points[:, 1])
            rows += [{"stratum": stratum.name, "position": i, "lon": float(x), "lat": float(y)}
                     for i, (x, y) in enumerate(zip(lon, lat), start=1)]
    with transaction(db):
        if db.execute("select 1 from assessments where name = ?", [name]).fetchone():
            raise AssessmentError(f"a design named {name!r} exists already; choose another name")
        design_id = db["assessments"].insert({
            "name": name, "region": shapely.to_geojson(strata.region), "period": strata.period.label,
            "period_start": strata.period.start, "period_end": strata.period.end,
            "sources": json.dumps(strata.sources), "near_m": strata.near_m, "seed": seed,
            "sizing": sizing, "utm_epsg": strata.utm_epsg, "created_at": now(),
            "created_by": by}).last_pk
        db["assessment_strata"].insert_all(
            {"assessment_id": design_id, "position": position, "name": s.name,
             "area_ha": s.area_ha, "n": n, "mapped": int(s.mapped), "detections": s.detections,
             "geometry": shapely.to_wkb(s.geometry, hex=True)}
            for position, (s, n) in enumerate(zip(strata.strata, sizes), start=1))
        db["assessment_units"].insert_all({**row, "assessment_id": design_id, "status": "pending"}
                                          for row in rows)
    return get(db, name)


def get(db, name: str) -> Design:
    row = db.execute("select id, name, period, period_start, period_end, sizing, near_m "
                     "from assessments where name = ?", [name]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("select name from assessments order by id")]
        hint = f" (designs: {', '.join(known)})" if known else " (there is none yet: `assess design`)"
        raise AssessmentError(f"no assessment design named {name!r}{hint}")
    design_id = row[0]
    strata = [dict(zip(("name", "area_ha", "n", "mapped", "detections"), r)) for r in db.execute(
        "select name, area_ha, n, mapped, detections from assessment_strata where assessment_id = ? "
        "order by position", [design_id])]
    return Design(design_id, row[1], Period(row[2], row[3], row[4]), strata, row[5] or "", row[6])


def listing(db) -> list[dict]:
    """Every design with its units and how many are labelled."""
    return [dict(zip(("id", "name", "period", "created_at", "units", "settled"), r)) for r in db.execute(
        "select a.id, a.name, a.period, a.created_at, count(u.id), "
        "sum(u.status in ('mining', 'not_mining', 'unsure')) from assessments a "
        "left join assessment_units u on u.assessment_id = a.id group by a.id order by a.id")]


UNIT_COLUMNS = ("unit_id", "stratum", "position", "lon", "lat", "status", "label", "reviewer")


def units(db, design: Design) -> list[dict]:
    """The design's units in review order, each with its settled label and who gave it."""
    rows = db.execute(
        "select u.id, u.stratum, u.position, u.lon, u.lat, u.status, "
        "(select group_concat(reviewer, '; ') from (select distinct reviewer from verdicts v "
        " where v.unit_id = u.id and v.verdict != 'undo')) "
        "from assessment_units u where u.assessment_id = ? order by u.position, "
        "(select position from assessment_strata s where s.assessment_id = u.assessment_id "
        " and s.name = u.stratum)", [design.id]).fetchall()
    settled = ("mining", "not_mining", "unsure")
    return [{"unit_id": r[0], "stratum": r[1], "position": r[2], "lon": r[3], "lat": r[4],
             "status": r[5], "label": r[5] if r[5] in settled else None, "reviewer": r[6]}
            for r in rows]
