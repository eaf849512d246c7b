"""Field reports: what people on the ground saw, with their photos.

A report has a text, a reporter, the date seen, and is about a detection, a site, or a
position. A position (given, or read from a photo's EXIF GPS) with nothing else attaches
the report to the nearest detection within 1 km (and to the nearest site within 1 km
when the database has sites); with nothing that near, the report is kept as a lead.

Photos (JPEG, PNG, HEIC when pillow-heif is installed) are checked before anything is
stored: a size limit, Pillow's decompression-bomb limit left on, a full decode. Each is
stored once under `data/photos/`, named by its sha256, with the GPS position and capture
time from its EXIF. Photo files are written to a temporary name first and moved into
place inside the report's transaction; if the report does not commit they are removed.
Texts and names are stored as given; whoever renders them escapes them.

A report keeps the site id it was filed under. When a later site build merges that site
into another (review.analysis.sites records it in `site_merges`), the report is read under
the site it lives on in now, following chains of merges: by site, listings show it there
and each row's `merged_into` names that site.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import numpy as np
import shapely
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pyproj import Transformer

from .. import files, settings
from ..analysis.sites import merge_chain, merged_away
from ..errors import ReviewError, first_line
from ..store import box_overlap, has_table, now, transaction

MAX_PHOTO_BYTES = 25 * 1024 * 1024      # per photo
MAX_TEXT_CHARS = 20_000
MAX_NAME_CHARS = 200
ATTACH_WITHIN_M = 1000.0
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "HEIF": ".heic"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError,
                ZeroDivisionError, AttributeError, OverflowError, struct.error)

try:                                      # HEIC photos from phones, when the plugin is there
    from pillow_heif import register_heif_opener
except ImportError:
    HEIC = False
else:
    register_heif_opener()
    HEIC = True


class ReportError(ReviewError):
    """A field report or one of its photos cannot be stored."""


@dataclass
class Photo:
    """A checked photo, ready to store."""

    name: str
    data: bytes
    sha256: str
    format: str
    width: int
    height: int
    taken_at: str | None = None
    lon: float | None = None
    lat: float | None = None

    def metadata(self) -> dict:
        return {"sha256": self.sha256, "taken_at": self.taken_at, "lon": self.lon, "lat": self.lat}


# ----------------------------------------------------------------------------- photos


def photos_dir() -> Path:
    return settings.data_dir() / "photos"


def photo_path(sha256: str) -> Path:
    """The stored file of a photo, by its checksum."""
    if not _SHA256.match(sha256 or ""):
        raise ReportError(f"{sha256!r} is not a photo checksum")
    found = sorted(photos_dir().glob(f"{sha256}.*"))
    if not found:
        raise ReportError(f"photo {sha256[:12]}… is not in {photos_dir()}")
    return found[0]


def _kind_list() -> str:
    return "JPEG, PNG or HEIC" if HEIC else "JPEG or PNG (HEIC needs pillow-heif)"


def _read_source(source) -> tuple[str, bytes]:
    """(name, bytes) from a path, a (name, bytes) pair, or an uploaded file object."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_PHOTO_BYTES:
                raise ReportError(_too_big(path.name, size))
            with path.open("rb") as handle:
                data = handle.read(MAX_PHOTO_BYTES + 1)
        except FileNotFoundError as exc:
            raise ReportError(f"{path.name}: no such photo file") from exc
        except IsADirectoryError as exc:
            raise ReportError(f"{path.name}: a folder, not a photo") from exc
        except PermissionError as exc:
            raise ReportError(f"{path.name}: the photo cannot be read (permission denied)") from exc
        name = path.name
    elif isinstance(source, tuple):
        name, data = source
        data = bytes(data)
    else:                                  # a file-like upload (Streamlit's UploadedFile)
        name = getattr(source, "name", "photo")
        data = source.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise ReportError(_too_big(name, len(data)))
    return str(name), data


def _too_big(name: str, size: int) -> str:
    return (f"{name}: {size / 2**20:,.0f} MB is over the {MAX_PHOTO_BYTES // 2**20} MB limit "
            f"for a photo; send a smaller copy")


def _rational(value) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _degrees(dms, ref) -> float:
    degrees, minutes, seconds = (_rational(v) for v in dms)
    value = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -value if str(ref).strip().upper() in ("S", "W") else value


def _exif_time(raw) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        return None
    return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S").isoformat()


def read_exif(image: Image.Image) -> tuple[str | None, float | None, float | None]:
    """(capture time, lon, lat) from a photo's EXIF; None for whatever is absent or garbage."""
    try:
        exif = image.getexif()
    except _EXIF_ERRORS:
        return None, None, None
    taken_at = lon = lat = None
    try:
        taken_at = _exif_time(exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
                              or exif.get(ExifTags.Base.DateTime))
    except _EXIF_ERRORS:
        taken_at = None
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            lat = _degrees(gps[ExifTags.GPS.GPSLatitude], gps.get(ExifTags.GPS.GPSLatitudeRef, "N"))
            lon = _degrees(gps[ExifTags.GPS.GPSLongitude], gps.get(ExifTags.GPS.GPSLongitudeRef, "E"))
            if not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
                lon = lat = None
    except _EXIF_ERRORS:
        lon = lat = None
    return taken_at, lon, lat


def read_photo(source) -> Photo:
    """Check a photo (path, (name, bytes) or upload) and read its checksum, size and EXIF."""
    name, data = _read_source(source)
    if not data:
        raise ReportError(f"{name}: the file is empty, not a photo")
    with warnings.catch_warnings():
        # Images over Pillow's MAX_IMAGE_PIXELS are refused, not just warned about.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                if kind not in FORMATS or (kind == "HEIF" and not HEIC):
                    raise ReportError(f"{name}: a {kind} image; photos must be {_kind_list()}")
                taken_at, lon, lat = read_exif(image)
                image.load()                          # a full decode: damaged files stop here
                width, height = image.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ReportError(f"{name}: the image is too large to open safely "
                              f"(over {Image.MAX_IMAGE_PIXELS:,} pixels)") from exc
        except UnidentifiedImageError as exc:
            raise ReportError(f"{name}: not a photo (photos must be {_kind_list()})") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ReportError(f"{name}: the image is damaged or cut short ({first_line(exc)})") from exc
    return Photo(name=name, data=data, sha256=hashlib.sha256(data).hexdigest(), format=kind,
                 width=width, height=height, taken_at=taken_at, lon=lon, lat=lat)


def thumbnail(sha256: str, size: int = 320) -> Image.Image:
    """A stored photo, upright (EXIF orientation applied), fitted in size x size, RGB."""
    with Image.open(photo_path(sha256)) as image:
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size, size))
        return image.convert("RGB")


def thumbnail_png(sha256: str, size: int = 320) -> bytes:
    buffer = io.BytesIO()
    thumbnail(sha256, size).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------ attachment


def check_position(lon, lat) -> tuple[float, float]:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"a position needs a longitude and a latitude in degrees "
                          f"(got {lon!r}, {lat!r})") from exc
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ReportError(f"{lon}, {lat} is not a place on Earth: the longitude must be between "
                          f"-180 and 180 and the latitude between -90 and 90")
    return lon, lat


def _local(lon: float, lat: float) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +units=m",
                                always_xy=True)


def _distance_m(to_local: Transformer, geometry: shapely.Geometry) -> float:
    local = shapely.transform(geometry, lambda xy: np.column_stack(
        to_local.transform(xy[:, 0], xy[:, 1])))
    return float(local.distance(shapely.Point(0, 0)))


def _search_box(lon: float, lat: float, within_m: float) -> tuple[float, float, float, float]:
    dlat = within_m / 111_000 * 1.05
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def nearest_detection(db, lon: float, lat: float,
                      within_m: float = ATTACH_WITHIN_M) -> tuple[int, float] | None:
    """(id, metres) of the detection whose footprint is nearest, if within `within_m`."""
    overlap, box = box_overlap(*_search_box(lon, lat, within_m))
    rows = db.execute(f"select id, geometry from detections where {overlap}", box).fetchall()
    return _nearest(rows, lon, lat, within_m)


def nearest_site(db, lon: float, lat: float,
                 within_m: float = ATTACH_WITHIN_M) -> tuple[int, float] | None:
    """(id, metres) of the nearest site within `within_m`, when the database has sites."""
    if not has_table(db, "sites"):
        return None
    names = {row[1] for row in db.execute('pragma table_info("sites")')}
    if "id" not in names:
        return None
    if "geometry" in names:
        rows = db.execute("select id, geometry from sites where geometry is not null").fetchall()
    elif {"lon", "lat"} <= names:
        rows = [(i, shapely.to_geojson(shapely.Point(x, y))) for i, x, y in
                db.execute("select id, lon, lat from sites where lon is not null and lat is not null")]
    else:
        return None
    return _nearest(rows, lon, lat, within_m)


def _nearest(rows, lon, lat, within_m):
    to_local = _local(lon, lat)
    best = None
    for identifier, text in rows:
        try:
            geometry = shapely.from_geojson(text)
        except shapely.errors.GEOSException:
            continue
        distance = _distance_m(to_local, geometry)
        if distance <= within_m and (best is None or distance < best[1]):
            best = (identifier, round(distance, 1))
    return best


# --------------------------------------------------------------------------- reports


def _clean(text, what: str, limit: int) -> str:
    if text is None or not str(text).strip():
        raise ReportError(f"{what} is empty")
    text = str(text).strip()
    if len(text) > limit:
        raise ReportError(f"{what} is {len(text):,} characters long; the limit is {limit:,}")
    if "\x00" in text:
        raise ReportError(f"{what} contains a NUL character")
    return text


def _seen(text) -> str | None:
    if text is None or text == "":
        return None
    if isinstance(text, date):
        day = text
    else:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(text).strip()):
            raise ReportError(f"the date seen must look like 2024-05-31 (got {text!r})")
        try:
            day = date.fromisoformat(str(text).strip())
        except ValueError as exc:
            raise ReportError(f"{text} is not a date") from exc
    if day > date.today():
        raise ReportError(f"the date seen, {day.isoformat()}, is in the future")
    return day.isoformat()


def add(db, text: str, reporter: str, detection_id: int | None = None,
        site_id: int | None = None, lon: float | None = None, lat: float | None = None,
        seen=None, photos: Iterable = (), via: str = "dashboard") -> dict:
    """Store a field report and its photos, all or nothing; returns what was stored."""
    text = _clean(text, "the report's text", MAX_TEXT_CHARS)
    reporter = _clean(reporter, "the reporter's name", MAX_NAME_CHARS)
    seen = _seen(seen)
    if detection_id is not None and site_id is not None:
        raise ReportError("a report is about one detection or one site, not both")
    if (lon is None) != (lat is None):
        raise ReportError("a position needs both a longitude and a latitude")
    position_from = None
    if lon is not None:
        lon, lat = check_position(lon, lat)
        position_from = "given"
    checked: list[Photo] = []
    for source in photos:
        photo = read_photo(source)
        if photo.sha256 not in {p.sha256 for p in checked}:
            checked.append(photo)
    if lon is None:
        located = next((p for p in checked if p.lon is not None), None)
        if located is not None:
            lon, lat, position_from = located.lon, located.lat, "photo"
    if detection_id is None and site_id is None and lon is None:
        raise ReportError("a report needs what it is about: a site, a detection, or a position "
                          "(given, or read from a photo's GPS)")

    folder = photos_dir()
    temporary: list[tuple[Photo, Path]] = []
    placed: list[Path] = []
    try:
        if checked:
            folder.mkdir(parents=True, exist_ok=True)
        for photo in checked:
            part = files.temporary_path(folder / f"{photo.sha256}{FORMATS[photo.format]}")
            part.write_bytes(photo.data)
            temporary.append((photo, part))
        with transaction(db):
            distance = None
            if detection_id is not None:
                if db.execute("select 1 from detections where id = ?", [detection_id]).fetchone() is None:
                    raise ReportError(f"no detection with id {detection_id}")
            if site_id is not None:
                if not has_table(db, "sites"):
                    raise ReportError("this database has no sites yet")
                if db.execute("select 1 from sites where id = ?", [site_id]).fetchone() is None:
                    raise ReportError(f"no site with id {site_id}")
            if detection_id is None and site_id is None:
                near = nearest_detection(db, lon, lat)
                if near:
                    detection_id, distance = near
                near_site = nearest_site(db, lon, lat)
                if near_site:
                    site_id = near_site[0]
                    distance = near_site[1] if distance is None else distance
            report_id = db["field_reports"].insert({
                "detection_id": detection_id, "site_id": site_id, "lon": lon, "lat": lat,
                "position_from": position_from, "distance_m": distance, "text": text,
                "reporter": reporter, "seen": seen, "via": via, "created_at": now()}).last_pk
            for position, (photo, part) in enumerate(temporary):
                db.execute("insert or ignore into photos (sha256, format, bytes, width, height, "
                           "taken_at, lon, lat, added_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [photo.sha256, photo.format, len(photo.data), photo.width, photo.height,
                            photo.taken_at, photo.lon, photo.lat, now()])
                db.execute("insert into report_photos (report_id, sha256, position, filename) "
                           "values (?, ?, ?, ?)", [report_id, photo.sha256, position, photo.name])
                final = folder / f"{photo.sha256}{FORMATS[photo.format]}"
                if not final.exists():          # inside the write lock: nobody else places it
                    files.commit(part, final)
                    placed.append(final)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for _, part in temporary:
            part.unlink(missing_ok=True)
    return {"id": report_id, "detection_id": detection_id, "site_id": site_id, "lon": lon,
            "lat": lat, "position_from": position_from, "distance_m": distance,
            "lead": detection_id is None and site_id is None,
            "photos": [p.metadata() for p in checked]}


def _photos_of(db, report_ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {i: [] for i in report_ids}
    for start in range(0, len(report_ids), 500):
        chunk = report_ids[start:start + 500]
        for report_id, sha, taken_at, lon, lat in db.execute(
                "select rp.report_id, p.sha256, p.taken_at, p.lon, p.lat from report_photos rp "
                f"join photos p on p.sha256 = rp.sha256 where rp.report_id in "
                f"({', '.join('?' * len(chunk))}) order by rp.report_id, rp.position", chunk):
            found[report_id].append({"sha256": sha, "taken_at": taken_at, "lon": lon, "lat": lat})
    return found


def _merged(db) -> dict[int, int]:
    """Each site id merged away by a site build -> the site it lives on in now."""
    return merged_away(db) if has_table(db, "site_merges") else {}


def _site_ids(db, site_id: int) -> tuple[int, str]:
    """The site a site id lives on in now, and (as a JSON list, for json_each) every site
    id whose reports are read under it: its own and those merged into it."""
    merged = _merged(db)
    live = merged.get(int(site_id), int(site_id))
    return live, json.dumps([live] + sorted(a for a, into in merged.items() if into == live))


def _rows(db, where: str = "1", params: list | None = None) -> list[dict]:
    cursor = db.execute(f"select * from field_reports where {where} order by id", params or [])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    photos = _photos_of(db, [r["id"] for r in rows])
    merged = _merged(db) if any(r["site_id"] is not None for r in rows) else {}
    for row in rows:
        row["photos"] = photos[row["id"]]
        row["merged_into"] = merged.get(row["site_id"])
    return rows


def listing(db, leads_only: bool = False, detection_id: int | None = None,
            site_id: int | None = None) -> list[dict]:
    """Reports (oldest first) with their photos; leads are attached to nothing. By site:
    the reports filed on the site it lives on in now or on any site merged into that one."""
    clauses, params = [], []
    if leads_only:
        clauses.append("detection_id is null and site_id is null")
    if detection_id is not None:
        clauses.append("detection_id = ?")
        params.append(detection_id)
    if site_id is not None:
        clauses.append("site_id in (select value from json_each(?))")
        params.append(_site_ids(db, site_id)[1])
    return _rows(db, " and ".join(clauses) or "1", params)


def for_detections(db, ids: list[int]) -> dict[int, list[dict]]:
    """Each detection's reports as exports carry them: text, reporter, seen, photos."""
    found: dict[int, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in _rows(db, f"detection_id in ({', '.join('?' * len(chunk))})", chunk):
            found[row["detection_id"]].append({
                "text": row["text"], "reporter": row["reporter"], "seen": row["seen"],
                "reported_at": row["created_at"], "photos": row["photos"]})
    return found


def first_photo(db, detection_id: int) -> str | None:
    """The sha256 of the first photo reported on a detection, if any."""
    row = db.execute("select rp.sha256 from field_reports r join report_photos rp on rp.report_id = r.id "
                     "where r.detection_id = ? order by r.id, rp.position limit 1",
                     [detection_id]).fetchone()
    return row[0] if row else None


def preview_png(photo: Photo, size: int = 240) -> bytes:
    """A checked but not yet stored photo (read_photo), upright and fitted in size x size,
    as PNG: what the Field report page shows before the report is saved."""
    with Image.open(io.BytesIO(photo.data)) as image:
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def attachment(db, lon: float, lat: float) -> dict:
    """Where a report at this position would go, as add() decides it: the nearest
    detection and the nearest site within 1 km ((id, metres) or None each)."""
    lon, lat = check_position(lon, lat)
    return {"detection": nearest_detection(db, lon, lat), "site": nearest_site(db, lon, lat)}


def photos_for(db, detection_id: int) -> list[dict]:
    """Every photo reported on a detection, in report order, each with its report's
    reporter, date seen and text: {sha256, report_id, reporter, seen, text, taken_at, lon, lat}."""
    return [{**photo, "report_id": row["id"], "reporter": row["reporter"], "seen": row["seen"],
             "text": row["text"]}
            for row in listing(db, detection_id=detection_id) for photo in row["photos"]]


def for_site(db, site_id: int) -> list[dict]:
    """Reports on a site, on a site merged into it, or on any detection of it
    (review.analysis.sites), oldest first. A site merged away reads as the site it lives on
    in now."""
    if not has_table(db, "site_members"):
        return listing(db, site_id=site_id)
    live, ids = _site_ids(db, site_id)
    return _rows(db, "site_id in (select value from json_each(?)) or detection_id in "
                     "(select detection_id from site_members where site_id = ?)", [ids, live])


def site_listing(db, site_id: int) -> tuple[list[dict], str | None]:
    """What `report list --site ID` shows: the reports under the site ID lives on in now
    (for_site) and, when a site build merged ID away, one line saying where they went. An
    id that was never a site and has no reports is refused."""
    chain = merge_chain(db, site_id) if has_table(db, "site_merges") else []
    rows = for_site(db, site_id)
    if not chain:
        known = has_table(db, "sites") and db.execute(
            "select 1 from sites where id = ?", [int(site_id)]).fetchone() is not None
        if not known and not rows:
            raise ReportError(f"no site with id {site_id}")
        return rows, None
    first, *later = chain
    steps = [f"site {first['absorbed_id']} was merged into site {first['into_id']} on "
             f"{first['merged_at'][:10]}"]
    steps += [f"then site {m['absorbed_id']} into site {m['into_id']} on {m['merged_at'][:10]}"
              for m in later]
    live = chain[-1]["into_id"]
    return rows, f"{', '.join(steps)}; its reports are listed under site {live}"
