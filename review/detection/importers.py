"""Import detections made elsewhere (GeoJSON, GeoPackage, shapefile, lat/lon CSV) for review.

Every earthrise vintage is recognised: the score in `pred`, `mean` or `confidence`;
website layers with `year` as YYYYQQ (202400 = 2024, 202503 = 2025 Q3) and
`Mined area (ha)`; diff files with `Polygon area (ha)`. For anything else the user names
the score, period and id fields. Points get a square review footprint.

Imports are idempotent: each feature gets a stable external id (its id field, or a hash
of its geometry and properties), unique within its source, so importing a file twice
adds nothing. The whole file is checked before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..errors import ReviewError, first_line
from ..progress import Progress
from ..store import now, transaction
from .downloads import fetch as download
from .models import sha256_of

POINT_SIZE_M = 480.0        # a point's review footprint: one 48-pixel patch at 10 m
SCORE_FIELDS = ("pred", "mean", "confidence", "score")
AREA_FIELDS = ("Mined area (ha)", "mined_area_ha", "area_ha")
ID_FIELDS = ("id", "fid", "pcode", "site_id")
DATE_FIELDS = ("visit_date", "fecha_situ", "date", "observed", "acquired", "start_date")
BATCH_SIZE = 1000
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")


class ImportFailed(ReviewError):
    """The file cannot be imported; nothing was stored."""


@dataclass
class FieldMap:
    """Fields to use when the file is not a vintage the importer knows."""

    score: str | None = None
    period: str | None = None      # a date, a year, YYYYQQ, or START/END
    id: str | None = None
    area: str | None = None        # hectares


@dataclass
class ImportReport:
    source: str
    path: str
    features: int
    added: int
    vintage: str
    repaired: int
    seconds: float

    @property
    def already_present(self) -> int:
        return self.features - self.added

    def summary(self) -> str:
        text = (f"{self.path}: {self.features:,} features as source '{self.source}' "
                f"({self.vintage}); {self.added:,} added, {self.already_present:,} already present")
        if self.repaired:
            text += f"; {self.repaired} invalid polygons repaired"
        return text + f" in {self.seconds:.1f} s"


# ------------------------------------------------------------------------------ periods


def _year(y: int) -> tuple[str, str]:
    return f"{y:04d}-01-01", f"{y:04d}-12-31"


def period_of(value) -> tuple[str | None, str | None]:
    """A value from a date/period field -> (start, end) ISO dates.

    202400 -> the year 2024; 202503 -> 2025 Q3; 2019 -> the year; a date -> that day;
    'START/END' -> that range.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None, None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        day = value.strftime("%Y-%m-%d")
        return day, day
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = int(value)
        if 100000 <= number <= 999999:
            year, quarter = divmod(number, 100)
            if quarter == 0:
                return _year(year)
            if 1 <= quarter <= 4:
                first = 3 * (quarter - 1) + 1
                last_day = pd.Timestamp(year, first + 2, 1).days_in_month
                return f"{year:04d}-{first:02d}-01", f"{year:04d}-{first + 2:02d}-{last_day:02d}"
        if 1900 <= number <= 2100:
            return _year(number)
        return None, None
    text = str(value).strip()
    if "/" in text:
        start, end = text.split("/", 1)
        return period_of(start)[0], period_of(end)[1]
    if re.fullmatch(r"\d{4}", text) or re.fullmatch(r"\d{6}", text):
        return period_of(int(text))
    match = re.match(r"(\d{4}-\d{2}-\d{2})", text)
    if match:
        return match.group(1), match.group(1)
    return None, None


def _period_value(value, field_name: str) -> tuple[str | None, str | None]:
    # A field called "year" holding a date (Ghana's files: 2017-01-01) means that year.
    if field_name.lower() == "year" and isinstance(value, (pd.Timestamp, datetime, date)):
        return _year(value.year)
    return period_of(value)


def period_from_filename(name: str) -> tuple[str | None, str | None]:
    match = re.search(r"(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})", name)
    if match:
        return match.group(1), match.group(2)
    match = re.search(r"(?<!\d)(\d{4})diff", name)
    if match:
        return _year(int(match.group(1)))
    return None, None


# ------------------------------------------------------------------------------ reading


def read_table(path: Path):
    """Read any supported file into a GeoDataFrame in lon/lat (EPSG:4326)."""

    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise ImportFailed(f"{path.name}: import GeoJSON, GeoPackage, shapefile or a lat/lon CSV")
    try:
        frame = read_vector(path)
    except ReviewError as exc:
        raise ImportFailed(str(exc), details=exc.details) from exc
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    elif not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return frame


def _detections_layer(path: Path) -> str | None:
    """In a GeoPackage of several layers (an export holds `detections` and the table
    `verdict_log`), the detections, else the first layer with geometry."""
    import pyogrio

    if path.suffix.lower() != ".gpkg":
        return None
    try:
        layers = [(str(name), kind) for name, kind in pyogrio.list_layers(path)]
    except Exception:           # unreadable: read_file says why, in its own words
        return None
    names = [name for name, _ in layers]
    if len(layers) < 2:
        return None
    if "detections" in names:
        return "detections"
    return next((name for name, kind in layers if kind is not None), None)


def read_vector(path: Path):
    """A vector file through pyogrio; its errors become one clear ReviewError."""
    import geopandas as gpd
    import pyogrio.errors

    try:
        return gpd.read_file(path, layer=_detections_layer(path))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, pyogrio.errors.CRSError,
            ValueError, OSError) as exc:
        raise ReviewError(f"{path.name} is not a file of detections this tool can read: import "
                          "GeoJSON, GeoPackage, a zipped shapefile or a lat/lon CSV",
                          details=first_line(exc, 2000)) from exc


def _read_csv(path: Path):
    import geopandas as gpd

    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path.name}: not a readable CSV ({first_line(exc)})") from exc
    lower = {c.lower().strip(): c for c in table.columns}
    if "wkt" in lower:         # this tool's own CSV export carries footprints as WKT
        try:
            geometries = shapely.from_wkt(table[lower["wkt"]].astype(str).to_numpy())
        except shapely.errors.GEOSException as exc:
            raise ImportFailed(f"{path.name}: the wkt column holds an unreadable geometry ({exc})") from exc
        return gpd.GeoDataFrame(table.drop(columns=lower["wkt"]), geometry=geometries, crs="EPSG:4326")
    lat = next((lower[n] for n in ("lat", "latitude", "y") if n in lower), None)
    lon = next((lower[n] for n in ("lon", "lng", "long", "longitude", "x") if n in lower), None)
    if lat is None or lon is None:
        raise ImportFailed(f"{path.name}: a CSV needs latitude and longitude columns "
                           f"(lat/latitude and lon/longitude); it has {', '.join(table.columns)}")
    lats = pd.to_numeric(table[lat], errors="coerce")
    lons = pd.to_numeric(table[lon], errors="coerce")
    bad = table.index[lats.isna() | lons.isna()]
    if len(bad):
        raise ImportFailed(f"{path.name}: row {bad[0] + 2} has no numeric {lat}/{lon}")
    return gpd.GeoDataFrame(table, geometry=shapely.points(lons, lats), crs="EPSG:4326")



def _footprints(geometries: np.ndarray, point_size_m: float, name: str) -> tuple[np.ndarray, int]:
    """Check every geometry; squares for points; repaired polygons. Returns (geoms, repaired)."""
    out = np.empty(len(geometries), dtype=object)
    repaired = 0
    problems = []
    for index, geom in enumerate(geometries):
        if geom is None or geom.is_empty:
            problems.append(f"feature {index + 1} has no geometry")
            continue
        west, south, east, north = geom.bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            problems.append(f"feature {index + 1} has coordinates out of range "
                            f"({west:g}, {south:g}); lon/lat must be within ±180/±90")
            continue
        kind = geom.geom_type
        if kind in ("Point", "MultiPoint"):
            centre = geom.centroid
            half_lat = point_size_m / 2 / 111_320
            half_lon = half_lat / max(math.cos(math.radians(centre.y)), 0.01)
            out[index] = shapely.box(centre.x - half_lon, centre.y - half_lat,
                                     centre.x + half_lon, centre.y + half_lat)
        elif kind in ("Polygon", "MultiPolygon"):
            if not geom.is_valid:
                geom = _polygonal(shapely.make_valid(geom))
                repaired += 1
                if geom is None:
                    problems.append(f"feature {index + 1} is an invalid polygon with no area")
                    continue
            out[index] = geom
        else:
            problems.append(f"feature {index + 1} is a {kind}; detections are polygons or points")
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ImportFailed(f"{name}: {problems[0]}{more}; nothing was imported")
    return out, repaired


def _polygonal(geom):
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom if not geom.is_empty else None
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


def _json_value(value):
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _field(frame, wanted: str | None, candidates: tuple[str, ...], what: str) -> str | None:
    if wanted:
        if wanted not in frame.columns:
            raise ImportFailed(f"no field {wanted!r} for the {what}; the file has "
                               f"{', '.join(c for c in frame.columns if c != 'geometry')}")
        return wanted
    return next((c for c in candidates if c in frame.columns), None)


def prepare(path: str | Path, fields: FieldMap | None = None,
            point_size_m: float = POINT_SIZE_M) -> tuple[list[dict], str, int]:
    """Read and check a file; returns (detection rows without source, vintage, repaired)."""
    path = Path(path)
    fields = fields or FieldMap()
    frame = read_table(path)
    if len(frame) == 0:
        raise ImportFailed(f"{path.name}: the file has no features")
    geoms, repaired = _footprints(frame.geometry.values, point_size_m, path.name)
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)      # RFC 7946 right-hand rule

    score_field = _field(frame, fields.score, SCORE_FIELDS, "score")
    area_field = _field(frame, fields.area, AREA_FIELDS, "area")
    id_field = _field(frame, fields.id, (), "id") or next(
        (c for c in ID_FIELDS if c in frame.columns and frame[c].notna().all()
         and frame[c].is_unique), None)
    period_field = _field(frame, fields.period, ("year",) + DATE_FIELDS, "period")

    properties = frame.drop(columns="geometry")
    columns = list(properties.columns)
    values = properties.to_numpy(dtype=object)
    scores = pd.to_numeric(frame[score_field], errors="coerce") if score_field else None
    if area_field:
        areas = pd.to_numeric(frame[area_field], errors="coerce").to_numpy()
        area_source = area_field
    else:
        import geopandas as gpd

        areas = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs("EPSG:6933").area.to_numpy() / 10_000
        area_source = "footprint"
    # This tool's own exports say where each feature came from: keep it, so a re-import
    # of an export is recognised feature by feature.
    own_export = {"source", "external_id"} <= set(frame.columns) and \
        frame["source"].notna().all() and frame["external_id"].notna().all()
    file_period = period_from_filename(path.name)
    model = re.search(r"\d+px_v[\d.]+(?:-[\d.]+ensemble)?", path.name)
    threshold = re.search(r"_(0\.\d+)_", path.name)
    texts = shapely.to_geojson(geoms)
    points = shapely.point_on_surface(geoms)
    bounds = shapely.bounds(geoms)
    raw_wkb = shapely.to_wkb(frame.geometry.values)
    seen: Counter = Counter()
    rows = []
    for i in range(len(frame)):
        props = {c: _json_value(v) for c, v in zip(columns, values[i])}
        if own_export:
            external = str(props["external_id"])
        elif id_field:
            external = f"{id_field}:{props[id_field]}"
        else:
            digest = hashlib.sha1(raw_wkb[i] + json.dumps(props, sort_keys=True,
                                                          default=str).encode()).hexdigest()
            seen[digest] += 1       # identical features stay distinct, and stable
            external = f"sha1:{digest}" + (f"#{seen[digest]}" if seen[digest] > 1 else "")
        start, end = _period_value(frame[period_field].iloc[i], period_field) if period_field \
            else (None, None)
        if start is None:
            start, end = file_period
        score = None if scores is None or pd.isna(scores.iloc[i]) else float(scores.iloc[i])
        area = None if pd.isna(areas[i]) else float(areas[i])
        rows.append({"external_id": external, "geometry": texts[i],
                     "lon": points[i].x, "lat": points[i].y,
                     "west": bounds[i][0], "south": bounds[i][1],
                     "east": bounds[i][2], "north": bounds[i][3],
                     "score": score, "area_ha": area, "area_source": area_source,
                     "period_start": start, "period_end": end,
                     "model_id": props.get("model") if own_export else (model.group(0) if model else None),
                     "threshold": props.get("threshold") if own_export else (
                         float(threshold.group(1)) if threshold else None),
                     **({"source": str(props["source"])} if own_export else {}),
                     "properties": json.dumps(props, default=str)})
    return rows, _vintage(frame, score_field, area_field, period_field), repaired


def _vintage(frame, score_field, area_field, period_field) -> str:
    kinds = set(frame.geom_type.dropna())
    if "year" in frame.columns and "Mined area (ha)" in frame.columns:
        return "earthrise website layer: year as YYYYQQ, Mined area (ha)"
    if "Polygon area (ha)" in frame.columns:
        return "earthrise diff file: Polygon area (ha), Mined area (ha)"
    parts = []
    parts.append(f"score in {score_field}" if score_field else "no score")
    if period_field:
        parts.append(f"period from {period_field}")
    if area_field:
        parts.append(f"area from {area_field}")
    if kinds <= {"Point", "MultiPoint"}:
        parts.append("points given square footprints")
    return ", ".join(parts)


def example_name(url: str) -> str:
    """The file name a published layer is saved under (the URL's last part)."""
    return url.rstrip("/").rsplit("/", 1)[-1] or "example.geojson"


def import_example(db, url: str, folder: str | Path, download_progress: Progress | None = None,
                   import_progress: Progress | None = None) -> ImportReport:
    """Download a published detections layer into folder and import it as
    'example: <name>' (a second call imports nothing new)."""
    from .downloads import DownloadFailed

    name = example_name(url)
    try:
        path = download(url, Path(folder) / name, progress=download_progress)
    except DownloadFailed as exc:
        if exc.unreachable:
            raise ImportFailed(f"{exc}. Without it you can still import a file from this computer "
                               "and review what is already in the database",
                               details=exc.details) from exc
        raise ImportFailed(str(exc), details=exc.details) from exc
    return import_file(db, path, source="example: " + Path(name).stem, progress=import_progress)


def import_file(db, path: str | Path, source: str | None = None, fields: FieldMap | None = None,
                point_size_m: float = POINT_SIZE_M, batch_size: int = BATCH_SIZE,
                progress: Progress | None = None) -> ImportReport:
    """Check a whole file, then add its new features and the import's record in one
    transaction: an import stopped halfway (even by kill -9) leaves nothing of itself."""
    started = time.perf_counter()
    path = Path(path)
    source = (source or path.stem).strip()
    if not source:
        raise ImportFailed("the source name is empty")
    rows, vintage, repaired = prepare(path, fields, point_size_m)
    stamp = now()
    digest = sha256_of(path)
    with transaction(db):
        before = db.execute("select count(*) from detections").fetchone()[0]
        for first in range(0, len(rows), batch_size):
            db["detections"].insert_all(
                ({"source": source, **row, "added_at": stamp} for row in rows[first:first + batch_size]),
                ignore=True, batch_size=batch_size)
            if progress:
                progress(min(first + batch_size, len(rows)), len(rows), "features")
        added = db.execute("select count(*) from detections").fetchone()[0] - before
        db["imports"].insert({"source": source, "path": str(path), "sha256": digest,
                              "features": len(rows), "added": added, "vintage": vintage,
                              "imported_at": stamp})
    report = ImportReport(source=source, path=path.name, features=len(rows), added=added,
                          vintage=vintage, repaired=repaired,
                          seconds=time.perf_counter() - started)
    return report
