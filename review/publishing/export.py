"""What leaves the tool: hand-verified detections, training samples, evidence pictures.

GeoJSON follows RFC 7946: lon/lat, exterior rings counter-clockwise, no "crs" member.
Every feature carries where it came from, its final status and its whole verdict
history with the imagery each verdict was based on. Exported features keep their
`source` and `external_id`, so importing an export adds nothing new.

Each export signs the verdict log as it stands (a checkpoint, review.judging.transparency_log)
and carries it at top level with the verifier key; every verdict carries its log index, its
exact log entry and its inclusion proof, so `verify-export` (publishing.export_check) checks
the file on its own, without the database.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import shapely

from .. import files
from ..errors import ReviewError
from ..judging import transparency_log
from ..judging.queue import Filters, matching
from ..judging.transparency_log import Snapshot
from ..judging.verdicts import NO_IMAGERY, decisions, standing

FORMATS = ("geojson", "gpkg", "csv", "kml", "kmz")
SPLITS = (("train", 0.7), ("val", 0.85), ("test", 1.0))


def _history(db, ids: list[int], log: Snapshot | None = None) -> dict[int, list[dict]]:
    """Each detection's verdicts; with a log snapshot, only those it covers (a verdict made
    after the checkpoint waits for the next export), each with its proof."""
    found: dict[int, list[dict]] = {i: [] for i in ids}
    covered = "" if log is None else f" and id <= {int(log.last_id)}"
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = db.execute(
            f"select id, detection_id, reviewer, verdict, reason, note, created_at, before_source, "
            f"before_start, before_end, after_source, after_start, after_end, model_id, threshold, "
            f"via, final, override, hash "
            f"from verdicts where detection_id in ({', '.join('?' * len(chunk))}){covered} "
            f"order by id", chunk)
        names = [d[0] for d in rows.description]
        for row in rows.fetchall():
            record = dict(zip(names, row))
            found[record.pop("detection_id")].append({
                "id": record["id"], "reviewer": record["reviewer"], "verdict": record["verdict"],
                "reason": record["reason"], "note": record["note"], "time": record["created_at"],
                "before": {"source": record["before_source"], "start": record["before_start"],
                           "end": record["before_end"]},
                "after": {"source": record["after_source"], "start": record["after_start"],
                          "end": record["after_end"]},
                "model": record["model_id"], "threshold": record["threshold"],
                "via": record["via"], "final": bool(record["final"]), "override": record["override"],
                "hash": record["hash"], **({} if log is None else log.proof(record["id"]))})
    return found


def ready(db, filters: Filters) -> None:
    """Refuse a context filter naming no layer or value, and bring the layer's overlaps up
    to date for detections added since (review.analysis.context)."""
    if filters.context:
        from ..analysis.context import check_filter

        check_filter(db, filters.context, filters.context_value)


def select(db, filters: Filters) -> list[dict]:
    ready(db, filters)
    return list(matching(db, filters, "score", page=2000))


def features(db, filters: Filters, log: Snapshot | None = None) -> list[dict]:
    """GeoJSON features (RFC 7946) of the detections matching the filters; with a log
    snapshot, each verdict carries its proof of inclusion in it."""
    from .reports import for_detections

    rows = select(db, filters)
    histories = _history(db, [r["id"] for r in rows], log)
    field_reports = for_detections(db, [r["id"] for r in rows])
    out = []
    for row in rows:
        geometry = shapely.orient_polygons(shapely.from_geojson(row["geometry"]), exterior_cw=False)
        out.append({
            "type": "Feature", "id": row["id"],
            "geometry": json.loads(shapely.to_geojson(geometry)),
            "properties": {
                "id": row["id"], "source": row["source"], "external_id": row["external_id"],
                "model": row["model_id"], "score": row["score"], "threshold": row["threshold"],
                "period_start": row["period_start"], "period_end": row["period_end"],
                "area_ha": row["area_ha"], "area_source": row["area_source"],
                "status": row["status"], "verdicts": histories[row["id"]],
                "field_reports": field_reports[row["id"]],
                "original_properties": json.loads(row["properties"] or "{}")}})
    return out


def unseen_verified(found: list[dict]) -> list[int]:
    """Ids of the verified detections whose standing 'verified' verdicts were all given with
    no imagery on screen: a claim nobody checked by eye."""
    unseen = []
    for feature in found:
        properties = feature["properties"]
        standing_verified = [v for v in decisions(properties["verdicts"], lambda v: v["verdict"])
                             if v["verdict"] == "verified"]
        if properties["status"] == "verified" and standing_verified and all(
                (v["before"] or {}).get("source") == NO_IMAGERY.source
                and (v["after"] or {}).get("source") == NO_IMAGERY.source for v in standing_verified):
            unseen.append(properties["id"])
    return unseen


class Written(NamedTuple):
    """What an export wrote: how many detections, and the verified ones nobody saw imagery
    of (unseen_verified) among those that matched, whether left out or written."""
    count: int
    unseen: list[int]


def export(db, path: str | Path, filters: Filters, fmt: str | None = None,
           by: str | None = None, leave_out_unseen: bool = False) -> int:
    """Write the matching detections; returns how many (see write)."""
    return write(db, path, filters, fmt, by, leave_out_unseen).count


def write(db, path: str | Path, filters: Filters, fmt: str | None = None,
          by: str | None = None, leave_out_unseen: bool = False) -> Written:
    """Write the matching detections, format from the suffix by default. Signs the verdict
    log first (a kept checkpoint, by `by`) and proves every verdict in it.
    `leave_out_unseen` drops verified detections no one saw imagery of (unseen_verified)."""
    path = Path(path)
    fmt = fmt or _format(path, FORMATS)
    log = transparency_log.snapshot(db, by)
    found = features(db, filters, log)
    unseen = unseen_verified(found)
    if leave_out_unseen:
        dropped = set(unseen)
        found = [f for f in found if f["properties"]["id"] not in dropped]
    with files.replacing(path, make_folder=False) as partial:
        if fmt in ("kml", "kmz"):
            from .kml import write_kml

            write_kml(db, found, partial, with_chips=fmt == "kmz")
        else:
            _write(found, partial, fmt, "detections", _flat_frame, log_header(log))
    return Written(len(found), unseen)


def log_header(log: Snapshot) -> dict:
    """The top-level `verdict_log` of an export: the signed checkpoint and its verifier key."""
    return {"checkpoint": log.kept.note, "key": log.kept.key}


def _format(path: Path, allowed: tuple[str, ...]) -> str:
    suffixes = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv",
                ".kml": "kml", ".kmz": "kmz"}
    fmt = suffixes.get(path.suffix.lower())
    if fmt not in allowed:
        names = [s for s, f in suffixes.items() if f in allowed and s != ".json"]
        raise ReviewError(f"{path.name}: export as {', '.join(names[:-1])} or {names[-1]}")
    return fmt


def _write(found: list[dict], partial: Path, fmt: str, layer: str, flat,
           header: dict | None = None) -> None:
    """GeoJSON as is; GeoPackage and CSV (footprints as WKT) from a flat frame. The log's
    header goes at GeoJSON's top level and in a GeoPackage table `verdict_log`; a CSV has no
    top level, its rows carry each verdict's entry and proof in the verdicts column."""
    if fmt == "geojson":
        top = {"type": "FeatureCollection", **({"verdict_log": header} if header else {})}
        partial.write_text(json.dumps({**top, "features": found}))
        return
    frame = flat(found)
    if fmt == "csv":
        frame.drop(columns="geometry").assign(wkt=frame.geometry.to_wkt()).to_csv(partial, index=False)
    else:
        frame.to_file(partial, driver="GPKG", layer=layer)
        if header:
            import sqlite3

            with contextlib.closing(sqlite3.connect(partial)) as gpkg, gpkg:
                gpkg.execute("create table verdict_log (checkpoint text not null, key text not null)")
                gpkg.execute("insert into verdict_log values (?, ?)", [header["checkpoint"], header["key"]])


def export_sites(db, path: str | Path, filters: Filters | None = None,
                 fmt: str | None = None) -> int:
    """Write sites (review.analysis.sites) as dissolved footprints with their status, per-period
    history (area_ha, state) and member detection ids; returns how many. `filters.status`
    is the site's status; a site is written when any of its detections matches the other
    filters (and, with an area, when its footprint meets the area)."""
    from ..analysis.sites import features as site_features

    path = Path(path)
    filters = filters or Filters(status=None)
    fmt = fmt or _format(path, ("geojson", "gpkg", "csv"))
    members = Filters(**{**filters.__dict__, "status": None, "area": None})
    ready(db, members)
    where, params = members.where()
    site_ids = None
    if where != "1":
        site_ids = {row[0] for row in db.execute(
            f"select distinct site_id from site_members where detection_id in "
            f"(select id from detections where {where})", params).fetchall()}
    found = site_features(db, site_ids=site_ids, status=filters.status)
    if filters.area is not None:
        found = [f for f in found if shapely.geometry.shape(f["geometry"]).intersects(filters.area)]
    with files.replacing(path, make_folder=False) as partial:
        _write(found, partial, fmt, "sites", _flat_sites)
    return len(found)


def _flat_sites(found: list[dict]):
    import geopandas as gpd

    records = [{**f["properties"], "history": json.dumps(f["properties"]["history"]),
                "detection_ids": json.dumps(f["properties"]["detection_ids"])} for f in found]
    return gpd.GeoDataFrame(records, geometry=[shapely.geometry.shape(f["geometry"]) for f in found],
                            crs="EPSG:4326")


def export_bytes(db, name: str, filters: Filters, by: str | None = None,
                 leave_out_unseen: bool = False) -> tuple[bytes, int]:
    """The export of the matching detections as a file's bytes (format from the name's
    suffix), and how many detections it holds."""
    content, written = file_bytes(db, name, filters, by, leave_out_unseen)
    return content, written.count


def file_bytes(db, name: str, filters: Filters, by: str | None = None,
               leave_out_unseen: bool = False) -> tuple[bytes, Written]:
    """export_bytes, with what the file holds (Written: count, unseen)."""
    with tempfile.TemporaryDirectory(prefix="review-export-") as folder:
        path = Path(folder) / Path(name).name
        written = write(db, path, filters, by=by, leave_out_unseen=leave_out_unseen)
        return path.read_bytes(), written


def _flat_frame(found: list[dict]):
    """One row per feature; nested verdicts as JSON text, plus the latest verdict in columns."""
    import geopandas as gpd

    records = []
    for feature in found:
        props = dict(feature["properties"])
        history = props.pop("verdicts")
        last = standing(history, lambda v: v["verdict"])
        props["original_properties"] = json.dumps(props["original_properties"])
        props["verdicts"] = json.dumps(history)
        props["field_reports"] = json.dumps(props.get("field_reports", []))
        props["last_reviewer"] = last["reviewer"] if last else None
        props["last_reason"] = last["reason"] if last else None
        props["last_note"] = last["note"] if last else None
        props["last_verdict_time"] = last["time"] if last else None
        records.append(props)
    geometries = [shapely.geometry.shape(f["geometry"]) for f in found]
    return gpd.GeoDataFrame(records, geometry=geometries, crs="EPSG:4326")


# ------------------------------------------------------------------ training samples


def _split(key: str) -> str:
    fraction = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return next(name for name, upper in SPLITS if fraction <= upper)


def training_samples(db, path: str | Path, filters: Filters | None = None) -> int:
    """Reviewed detections as earthrise sampling locations: label 1 verified, 0 false positive."""
    filters = filters or Filters(status=None)
    rows = [r for r in select(db, Filters(**{**filters.__dict__, "status": None}))
            if r["status"] in ("verified", "false_positive")]
    out = []
    for row in rows:
        point = shapely.point_on_surface(shapely.from_geojson(row["geometry"]))
        out.append({"type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [round(point.x, 7), round(point.y, 7)]},
                    "properties": {"label": 1 if row["status"] == "verified" else 0,
                                   "start_date": row["period_start"], "end_date": row["period_end"],
                                   "source_file": row["source"],
                                   "split": _split(f"{row['source']}|{row['external_id']}"),
                                   "detection_id": row["id"]}})
    files.write_text(path, json.dumps({"type": "FeatureCollection", "features": out}), make_folder=False)
    return len(out)


def training_samples_bytes(db, filters: Filters | None = None) -> tuple[bytes, int]:
    """Training samples (see training_samples) as GeoJSON bytes, and how many points."""
    with tempfile.TemporaryDirectory(prefix="review-export-") as folder:
        path = Path(folder) / "training_samples.geojson"
        written = training_samples(db, path, filters)
        return path.read_bytes(), written


# --------------------------------------------------------------------- evidence pack


def _field_photo(db, detection_id: int, side: int):
    """The first field photo of a detection as a chip-sized picture, or None."""
    from ..judging.verdicts import Imagery
    from ..review_imagery import chips
    from .reports import ReportError, first_photo, thumbnail

    sha = first_photo(db, detection_id)
    if sha is None:
        return None
    try:
        image = thumbnail(sha, side)
    except (ReportError, OSError):
        return None
    taken = db.execute("select taken_at from photos where sha256 = ?", [sha]).fetchone()[0]
    return chips.Chip(image=image, imagery=Imagery(source=f"field photo {sha[:12]}", start=taken))


def latest_verified(db) -> int | None:
    """The detection most recently verified (the evidence a journalist most likely wants),
    or None when nothing is verified."""
    row = db.execute("select v.detection_id from verdicts v join detections d on "
                     "d.id = v.detection_id where d.status = 'verified' and v.verdict = "
                     "'verified' order by v.id desc limit 1").fetchone()
    return int(row[0]) if row else None


def evidence_png(db, detection_id: int) -> bytes:
    """Before and after chips side by side, footprint outlined, with a caption to publish."""
    from PIL import Image, ImageDraw, ImageFont

    from ..judging.queue import get
    from ..judging.verdicts import REASONS, VERDICTS, history, standing
    from ..review_imagery import chips

    detection = get(db, detection_id)
    geometry = shapely.from_geojson(detection["geometry"])
    scenes = chips.scenes_covering(db, detection)
    before, after = chips.pick_before_after(scenes, detection)
    shown = [s for s in (before, after) if s is not None]
    if not shown:
        raise ReviewError(f"no stored scene covers detection {detection_id}; run or upload a tile of it first")
    pictures = chips.render_pair(shown, geometry)
    side = max(max(p.image.size) for p in pictures)
    labels = (["Before", "After"] if len(pictures) == 2 else ["After"])
    photo = _field_photo(db, detection_id, side)
    if photo is not None:                  # the first field photo, beside the chips
        pictures.append(photo)
        labels.append("Field photo")
    verdict = standing(history(db, detection_id), lambda v: v["verdict"])
    verdict_text = "not yet reviewed"
    if verdict:
        verdict_text = VERDICTS[verdict["verdict"]]
        if verdict["reason"]:
            verdict_text += f" ({REASONS[verdict['reason']]})"
        verdict_text += f" by {verdict['reviewer']}, {verdict['created_at'][:10]}"
    font = ImageFont.load_default()
    lines = [
        f"Detection #{detection_id} at {detection['lat']:.5f}, {detection['lon']:.5f}"
        f" ({detection['source']})",
        f"Period {detection['period_start'] or '?'} to {detection['period_end'] or '?'}; model "
        f"{detection['model_id'] or 'unknown'}; score "
        + ("n/a" if detection["score"] is None else f"{detection['score']:.3f}")
        + ("" if detection["area_ha"] is None else f"; {detection['area_ha']:,.2f} ha"),
        f"Verdict: {verdict_text}",
    ] + [f"{label}: {p.caption}" for label, p in zip(labels, pictures)]
    pad, line_height = 12, 16
    width = pad + len(pictures) * (side + pad)
    height = pad + side + pad + line_height * (len(lines) + 1) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (label, picture) in enumerate(zip(labels, pictures)):
        x = pad + index * (side + pad)
        canvas.paste(picture.image, (x, pad))
        draw.text((x + 6, pad + 6), label, fill="white", font=font, stroke_width=2, stroke_fill="black")
    y = pad + side + pad
    for line in lines:
        draw.text((pad, y), line, fill="black", font=font)
        y += line_height
    draw.text((pad, y), "Footprint outlined in yellow. Imagery: Copernicus Sentinel-2 where stated.",
              fill="#555555", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
