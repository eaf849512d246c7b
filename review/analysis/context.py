"""Context layers: the polygons a story is told against (Indigenous territories, protected
areas, mining concessions, a property registry), and which detections and sites overlap
them, by how many hectares and under which name.

A layer is read from any vector file in any CRS (GeoJSON, GeoPackage, shapefile), its
features stored in lon/lat (GeoJSON text) with their bounding boxes, each with its value:
the chosen field (`--field`), else a name-like field (name, nombre, nome...), else the
feature's number. Only polygons are taken; an invalid polygon is repaired (make_valid,
its polygonal part) or refused naming the feature.

Overlaps are measured in an equal-area projection (EPSG:6933), per detection and value:
features sharing a value (a territory in several parts, overlapping zones of one country)
count their common ground once. They are computed for every detection when a layer is
added; detections added later are checked by `refresh`, which every reader here calls
first (a layer's `checked_through` is the highest detection id checked against it). A
site's overlap is its members' footprints, unioned, intersected with each value's
polygons: ground seen in several periods counts once.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import numpy as np
import shapely

from ..errors import ReviewError
from ..judging.queue import context_clause
from ..store import now, transaction
from .equal_area import to_equal_area

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")
# Fields that usually hold a feature's name, in the order they are tried (case aside):
# WDPA's NAME, RAISG's nombre, Brazil's nome (FUNAI, CAR), generic names; a country last.
NAME_FIELDS = ("name", "nombre", "nome", "nom", "name_en", "title", "label", "country", "país", "pais")
MIN_OVERLAP_HA = 1e-6      # ground shared only along an edge is no overlap


class ContextError(ReviewError):
    """A context layer cannot be read, stored or found as asked."""


# ------------------------------------------------------------------------- geometry


def _valid(geometries: np.ndarray) -> np.ndarray:
    # Stored detections are repaired on import; a detector's own are valid. Repair anyway:
    # one bad footprint must not stop a layer.
    bad = ~shapely.is_valid(geometries)
    if bad.any():
        geometries = geometries.copy()
        geometries[bad] = shapely.make_valid(geometries[bad])
    return geometries


def _intersection(a, b):
    try:
        return shapely.intersection(a, b)
    except shapely.errors.GEOSException:
        # A nearly degenerate pair: snap both to a 1 cm grid and try again.
        return shapely.intersection(shapely.set_precision(a, 0.01), shapely.set_precision(b, 0.01))


def measure(places: np.ndarray, features: np.ndarray, values: list[str]) -> dict[tuple[int, str], float]:
    """{(place index, value): hectares} of places (equal-area geometries) overlapping the
    features (equal-area, each with its value); features of one value count their shared
    ground once."""
    if len(places) == 0 or len(features) == 0:
        return {}
    # The tree holds the places and the features query it: each feature (maybe a polygon
    # of a hundred thousand vertices) is prepared once for all the places it is tested against.
    tree = shapely.STRtree(places)
    feature_at, place_at = tree.query(features, predicate="intersects")
    if len(place_at) == 0:
        return {}
    shapely.prepare(features)
    # A place wholly inside a feature is its own overlap: no overlay with a polygon that
    # may have a hundred thousand vertices.
    inside = shapely.contains_properly(features[feature_at], places[place_at])
    pieces = np.empty(len(place_at), dtype=object)
    pieces[inside] = places[place_at[inside]]
    crossing = np.flatnonzero(~inside)
    if len(crossing):
        try:
            pieces[crossing] = shapely.intersection(places[place_at[crossing]],
                                                    features[feature_at[crossing]])
        except shapely.errors.GEOSException:
            for i in crossing:
                pieces[i] = _intersection(places[place_at[i]], features[feature_at[i]])
    grouped: dict[tuple[int, str], list] = defaultdict(list)
    for piece, place, feature in zip(pieces, place_at, feature_at):
        grouped[(int(place), values[int(feature)])].append(piece)
    found = {}
    for key, parts in grouped.items():
        area = shapely.area(parts[0]) if len(parts) == 1 else shapely.area(shapely.union_all(parts))
        if area / 10_000 > MIN_OVERLAP_HA:
            found[key] = float(area / 10_000)
    return found


# ------------------------------------------------------------------------- reading


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):                  # numpy scalars
        return _text(value.item())
    text = str(value).strip()
    return text or None


def _value_field(frame, field: str | None, name: str) -> str | None:
    columns = [c for c in frame.columns if c != "geometry"]
    if field:
        if field not in columns:
            raise ContextError(f"{name} has no field {field!r}; its fields are "
                               f"{', '.join(columns) or '(none)'}")
        return field
    lower = {c.lower(): c for c in reversed(columns)}
    return next((lower[n] for n in NAME_FIELDS if n in lower), None)


def _polygons(geometries: np.ndarray, labels: list[str], name: str) -> tuple[np.ndarray, int]:
    """Every geometry checked: polygons only, invalid ones repaired. Returns (geometries, repaired)."""
    missing = [i for i, g in enumerate(geometries) if g is None or g.is_empty]
    if missing:
        raise ContextError(f"{name}: {labels[missing[0]]} has no geometry"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    kinds = sorted({g.geom_type for g in geometries} - {"Polygon", "MultiPolygon"})
    if kinds:
        raise ContextError(f"a context layer must be polygons; {name} has {', '.join(kinds)}")
    out = np.asarray(geometries, dtype=object).copy()
    repaired = 0
    for i in np.flatnonzero(~shapely.is_valid(out)):
        why = shapely.is_valid_reason(out[i])
        fixed = shapely.make_valid(out[i])
        if fixed.geom_type not in ("Polygon", "MultiPolygon"):
            parts = [p for p in getattr(fixed, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
            fixed = shapely.union_all(parts) if parts else None
        if fixed is None or fixed.is_empty or fixed.area == 0:
            raise ContextError(f"{name}: {labels[i]} is an invalid polygon ({why}) with no area "
                               "left once repaired; fix or remove it and add the layer again")
        out[i] = fixed
        repaired += 1
    return out, repaired


def read_layer(path: str | Path, field: str | None = None) -> dict:
    """A polygon file read and checked: {values, geometries (lon/lat), field, source_crs,
    repaired}. Nothing is stored."""
    from ..detection.importers import read_vector

    path = Path(path)
    if not path.is_file():
        raise ContextError(f"{path}: no such file")
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise ContextError(f"{path.name}: give a context layer as GeoJSON, GeoPackage or a shapefile")
    try:
        frame = read_vector(path)
    except ReviewError as exc:
        raise ContextError(f"{path.name} is not a vector file this tool can read: give GeoJSON, "
                           "GeoPackage or a shapefile", details=exc.details) from exc
    if len(frame) == 0:
        raise ContextError(f"{path.name} has no features")
    chosen = _value_field(frame, field, path.name)
    raw = [_text(v) for v in frame[chosen]] if chosen else [None] * len(frame)
    labels = [f"feature {i + 1}" + (f" ({v})" if v else "") for i, v in enumerate(raw)]
    geometries, repaired = _polygons(frame.geometry.values, labels, path.name)
    if frame.crs is None:
        west, south, east, north = shapely.total_bounds(geometries)
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ContextError(f"{path.name} says nothing of its coordinate reference system and its "
                               "coordinates are not longitude/latitude; save it with its CRS "
                               "(a shapefile needs its .prj)")
        source_crs = "EPSG:4326 (assumed: the file names none)"
    else:
        source_crs = frame.crs.to_string()
        if not frame.crs.equals("EPSG:4326"):
            import geopandas as gpd

            geometries = gpd.GeoSeries(geometries, crs=frame.crs).to_crs("EPSG:4326").values
            geometries = np.asarray(geometries, dtype=object)
            geometries, more = _polygons(geometries, labels, path.name)
            repaired += more
    west, south, east, north = shapely.total_bounds(geometries)
    if not np.isfinite([west, south, east, north]).all() or not (
            -180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ContextError(f"{path.name}: its polygons do not fall within longitude ±180 and "
                           "latitude ±90 once projected; is its CRS right?")
    values = [v or f"feature {i + 1}" for i, v in enumerate(raw)]
    return {"values": values, "geometries": geometries, "field": chosen,
            "source_crs": source_crs, "repaired": repaired}


# ------------------------------------------------------------------------- storing


def _layer(db, name: str) -> dict:
    cursor = db.execute("select * from context_layers where name = ?", [name])
    row = cursor.fetchone()
    if row is None:
        known = [r[0] for r in db.execute("select name from context_layers order by name")]
        raise ContextError(f"there is no context layer {name!r}; "
                           + (f"the layers are: {', '.join(known)}" if known else
                              "add one with `context add FILE --name NAME`"))
    return dict(zip([d[0] for d in cursor.description], row))


def _detections(db, after: int, through: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, lon/lat footprints) of the detections with after < id <= through."""
    rows = db.execute("select id, geometry from detections where id > ? and id <= ? order by id",
                      [after, through]).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.empty(0, dtype=object)
    return ids, _valid(shapely.from_geojson([r[1] for r in rows]))


def _max_detection(db) -> int:
    return db.execute("select coalesce(max(id), 0) from detections").fetchone()[0]


def _overlap_rows(layer_id: int, ids: np.ndarray, found: dict) -> list[tuple]:
    return [(layer_id, value, int(ids[place]), hectares) for (place, value), hectares in found.items()]


def add(db, path: str | Path, name: str, field: str | None = None, by: str | None = None) -> dict:
    """Read a polygon file as the context layer `name` and measure every stored detection
    against it; the layer, its features and overlaps are written together or not at all.
    Returns a summary (layer, file, features, values, field, source_crs, repaired,
    detections_checked, detections_inside, seconds)."""
    from ..detection.models import sha256_of

    started = time.perf_counter()
    name = " ".join(str(name or "").split())
    if not name:
        raise ContextError("a context layer needs a name, e.g. --name \"Indigenous territories\"")
    if db.execute("select 1 from context_layers where name = ?", [name]).fetchone():
        raise ContextError(f"there is already a context layer {name!r}; remove it first "
                           "(`context remove`) or choose another name")
    path = Path(path)
    layer = read_layer(path, field)
    geometries, values = layer["geometries"], layer["values"]
    through = _max_detection(db)
    ids, footprints = _detections(db, 0, through)
    found = measure(to_equal_area(footprints), to_equal_area(geometries), values)
    texts = shapely.to_geojson(geometries)
    bounds = shapely.bounds(geometries)
    digest = sha256_of(path)
    with transaction(db):
        if db.execute("select 1 from context_layers where name = ?", [name]).fetchone():
            raise ContextError(f"there is already a context layer {name!r}")
        layer_id = db.execute(
            "insert into context_layers (name, field, source_file, sha256, source_crs, features, "
            "checked_through, added_at, added_by) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [name, layer["field"], path.name, digest, layer["source_crs"], len(values), through,
             now(), by]).lastrowid
        db.conn.executemany(
            "insert into context_features (layer_id, value, geometry, west, south, east, north) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [(layer_id, v, t, *map(float, b)) for v, t, b in zip(values, texts, bounds)])
        db.conn.executemany("insert into context_overlaps (layer_id, value, detection_id, overlap_ha) "
                            "values (?, ?, ?, ?)", _overlap_rows(layer_id, ids, found))
    return {"layer": name, "file": path.name, "features": len(values), "values": len(set(values)),
            "field": layer["field"], "source_crs": layer["source_crs"], "repaired": layer["repaired"],
            "detections_checked": len(ids), "detections_inside": len({p for p, _ in found}),
            "seconds": round(time.perf_counter() - started, 2)}


def summary_line(summary: dict) -> str:
    """An add's summary in words."""
    field = f"values from {summary['field']}" if summary["field"] else "features numbered (no name field)"
    text = (f"context layer {summary['layer']!r}: {summary['features']:,} polygons from "
            f"{summary['file']} ({summary['source_crs']}; {field}, {summary['values']:,} distinct); "
            f"{summary['detections_inside']:,} of {summary['detections_checked']:,} detections "
            "overlap it")
    if summary["repaired"]:
        text += f"; {summary['repaired']} invalid polygons repaired"
    return text + f"; in {summary['seconds']:.1f} s"


def _features(db, layer_id: int, box: tuple[float, float, float, float] | None = None
              ) -> tuple[np.ndarray, list[str]]:
    sql, params = "select value, geometry from context_features where layer_id = ?", [layer_id]
    if box is not None:
        sql += " and east >= ? and west <= ? and north >= ? and south <= ?"
        params += [box[0], box[2], box[1], box[3]]
    rows = db.execute(sql + " order by id", params).fetchall()
    if not rows:
        return np.empty(0, dtype=object), []
    return to_equal_area(shapely.from_geojson([r[1] for r in rows])), [r[0] for r in rows]


def refresh(db) -> int:
    """Measure the detections added since each layer was last checked; returns how many
    detection checks were made (0 when every layer is up to date: one cheap query)."""
    through = _max_detection(db)
    stale = db.execute("select id, checked_through from context_layers where checked_through < ?",
                       [through]).fetchall()
    checked = 0
    for layer_id, after in stale:
        ids, footprints = _detections(db, after, through)
        found = {}
        if len(ids):
            # Only the features near the new detections are read and projected.
            features, values = _features(db, layer_id, tuple(shapely.total_bounds(footprints)))
            found = measure(to_equal_area(footprints), features, values)
        with transaction(db):
            # Another process may have brought this layer up to date (or removed it) meanwhile.
            current = db.execute("select checked_through from context_layers where id = ?",
                                 [layer_id]).fetchone()
            if current is None or current[0] != after:
                continue
            db.conn.executemany("insert or replace into context_overlaps (layer_id, value, "
                                "detection_id, overlap_ha) values (?, ?, ?, ?)",
                                _overlap_rows(layer_id, ids, found))
            db.execute("update context_layers set checked_through = ? where id = ?", [through, layer_id])
        checked += len(ids)
    return checked


def remove(db, name: str) -> dict:
    """Remove a layer with its features and overlaps; returns {layer, features}."""
    layer = _layer(db, name)
    with transaction(db):
        for table in ("context_overlaps", "context_features"):
            db.execute(f"delete from {table} where layer_id = ?", [layer["id"]])
        db.execute("delete from context_layers where id = ?", [layer["id"]])
    return {"layer": layer["name"], "features": layer["features"]}


# ------------------------------------------------------------------------- reading back


def listing(db) -> list[dict]:
    """Every layer, by name: name, field, features, values, detections_inside, source_file,
    source_crs, added_at, added_by, checked_through."""
    refresh(db)
    cursor = db.execute(
        "select l.name, l.field, l.features, (select count(distinct value) from context_features f "
        "where f.layer_id = l.id) as \"values\", (select count(distinct detection_id) from "
        "context_overlaps o where o.layer_id = l.id) as detections_inside, l.source_file, "
        "l.source_crs, l.added_at, l.added_by, l.checked_through from context_layers l order by l.name")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def layer_names(db) -> list[str]:
    """The layers' names, sorted (no refresh: for menus)."""
    return [r[0] for r in db.execute("select name from context_layers order by name")]


def values(db, name: str) -> list[tuple[str, int]]:
    """(value, detections overlapping it) of a layer's values that some detection overlaps,
    by value."""
    layer = _layer(db, name)
    refresh(db)
    return [(v, n) for v, n in db.execute(
        "select value, count(*) from context_overlaps where layer_id = ? group by value "
        "order by value", [layer["id"]])]


def _check_detection(db, detection_id: int) -> None:
    if db.execute("select 1 from detections where id = ?", [int(detection_id)]).fetchone() is None:
        raise ContextError(f"there is no detection {detection_id}")


def _check_site(db, site_id: int) -> None:
    from .sites import SiteError, merge_chain, require_build

    try:
        require_build(db)
    except SiteError as exc:
        raise ContextError(f"there is no site {site_id}: {exc}") from exc
    if db.execute("select 1 from sites where id = ?", [int(site_id)]).fetchone() is None:
        chain = merge_chain(db, site_id)
        if chain:
            raise ContextError(f"site {site_id} was merged into site {chain[-1]['into_id']}")
        raise ContextError(f"there is no site {site_id}")


def overlaps(db, name: str | None = None, site_id: int | None = None,
             detection_id: int | None = None) -> list[dict]:
    """Detections overlapping context polygons: rows {layer, value, detection_id, site_id,
    overlap_ha} (site_id: the detection's site in the last build, else None), by layer,
    detection and value; only one layer, one site's detections or one detection if asked."""
    clauses, params = [], []
    if name is not None:
        clauses.append("o.layer_id = ?")
        params.append(_layer(db, name)["id"])
    if site_id is not None:
        _check_site(db, site_id)
        clauses.append("m.site_id = ?")
        params.append(int(site_id))
    if detection_id is not None:
        _check_detection(db, detection_id)
        clauses.append("o.detection_id = ?")
        params.append(int(detection_id))
    refresh(db)
    cursor = db.execute(
        "select l.name as layer, o.value, o.detection_id, m.site_id, o.overlap_ha "
        "from context_overlaps o join context_layers l on l.id = o.layer_id "
        "left join site_members m on m.detection_id = o.detection_id "
        f"where {' and '.join(clauses) or '1'} order by l.name, o.detection_id, o.value", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def site_overlaps(db, site_id: int) -> list[dict]:
    """A site's overlaps: rows {layer, value, overlap_ha} of its members' footprints, unioned
    (ground seen in several periods counts once), with each layer's values; by layer, value."""
    _check_site(db, site_id)
    rows = db.execute("select d.geometry from site_members m join detections d on "
                      "d.id = m.detection_id where m.site_id = ?", [int(site_id)]).fetchall()
    if not rows:
        return []
    footprints = _valid(shapely.from_geojson([r[0] for r in rows]))
    box = tuple(shapely.total_bounds(footprints))
    site = to_equal_area(np.array([shapely.union_all(footprints)], dtype=object))
    out = []
    for layer_id, layer in db.execute("select id, name from context_layers order by name").fetchall():
        features, values = _features(db, layer_id, box)
        found = measure(site, features, values)
        out += [{"layer": layer, "value": value, "overlap_ha": hectares}
                for (_, value), hectares in sorted(found.items(), key=lambda item: item[0][1])]
    return out


def check_filter(db, name: str, value: str | None = None) -> None:
    """Refuse an unknown layer, or a value none of its features has (naming those there
    are), and bring the overlaps up to date: what a filter by context needs before its SQL
    (review.judging.queue.context_clause) runs."""
    layer = _layer(db, name)
    if value is not None and db.execute("select 1 from context_features where layer_id = ? and "
                                        "value = ? limit 1", [layer["id"], value]).fetchone() is None:
        known = [r[0] for r in db.execute("select distinct value from context_features where "
                                          "layer_id = ? order by value limit 11", [layer["id"]])]
        more = ", ..." if len(known) > 10 else ""
        raise ContextError(f"no polygon of the context layer {name!r} has the value {value!r}; "
                           f"its values include {', '.join(known[:10])}{more}")
    refresh(db)


def detection_ids_in(db, name: str, value: str | None = None) -> set[int]:
    """Ids of the detections overlapping a layer (only its polygons with this value, if
    given), brought up to date first."""
    check_filter(db, name, value)
    sql, params = context_clause(name, value)
    return {r[0] for r in db.execute(f"select id from detections where {sql}", params)}


def parse_filter(text: str) -> tuple[str, str | None]:
    """NAME or NAME=VALUE (a command line's --context) as (layer, value or None)."""
    name, _, value = str(text).partition("=")
    if not name.strip():
        raise ContextError(f"--context {text!r}: give a layer's name, or NAME=VALUE")
    return name.strip(), (value.strip() or None) if _ else None
