"""Google Earth export (.kml, .kmz) of exported detections (simplekml).

One placemark per detection: its footprint polygon, a style per status (colour), and a
balloon with status, score, period, area, the last verdict and the field reports. In a
KMZ the balloon also shows the detection's before/after chips, rendered from stored
imagery that covers it, and field photos, all as PNGs inside the archive. Every text
that came from a person (notes, names, report texts) is HTML-escaped in the balloon.
"""
from __future__ import annotations

import html
import io
import zipfile
from pathlib import Path

import shapely

from ..errors import ImageryError
from ..judging.verdicts import REASONS, VERDICTS, standing

STATUS_COLOURS = {             # (r, g, b)
    "verified": (220, 30, 30),
    "false_positive": (140, 140, 140),
    "unsure": (255, 140, 0),
    "pending": (255, 214, 0),
}
STATUS_LABELS = {"pending": "pending review", **VERDICTS}
PHOTOS_PER_DETECTION = 3


def _kml_colour(rgb: tuple[int, int, int], alpha: int) -> str:
    r, g, b = rgb
    return f"{alpha:02x}{b:02x}{g:02x}{r:02x}"      # KML is aabbggrr


def _styles(kml) -> dict:
    import simplekml

    styles = {}
    for status, rgb in STATUS_COLOURS.items():
        style = simplekml.Style()
        style.linestyle.color = _kml_colour(rgb, 0xFF)
        style.linestyle.width = 2
        style.polystyle.color = _kml_colour(rgb, 0x55)
        styles[status] = style
    return styles


def _rings(polygon: shapely.Polygon) -> tuple[list, list]:
    return (list(polygon.exterior.coords),
            [list(ring.coords) for ring in polygon.interiors])


def _chips(db, detection_id: int) -> list[tuple[str, str, bytes]]:
    """(label, caption, PNG) for the before and after chips, when stored imagery covers it."""
    from ..judging.queue import get
    from ..review_imagery import chips

    detection = get(db, detection_id)
    before, after = chips.pick_before_after(chips.scenes_covering(db, detection), detection)
    shown = [s for s in (before, after) if s is not None]
    if not shown:
        return []
    try:
        pictures = chips.render_pair(shown, shapely.from_geojson(detection["geometry"]))
    except ImageryError:
        return []
    labels = ["Before", "After"] if len(pictures) == 2 else ["After"]
    out = []
    for label, picture in zip(labels, pictures):
        buffer = io.BytesIO()
        picture.image.save(buffer, format="PNG")
        out.append((label, picture.caption, buffer.getvalue()))
    return out


def _photo_pngs(reports: list[dict]) -> list[tuple[str, bytes]]:
    from .reports import ReportError, thumbnail_png

    out = []
    for report in reports:
        for photo in report["photos"]:
            if len(out) >= PHOTOS_PER_DETECTION:
                return out
            try:
                out.append((photo["sha256"], thumbnail_png(photo["sha256"], 240)))
            except (ReportError, OSError):
                continue
    return out


def _balloon(props: dict, images: list[tuple[str, str, str]]) -> str:
    e = html.escape
    status = props["status"]
    rows = [("Status", STATUS_LABELS.get(status, status)),
            ("Score", "n/a" if props["score"] is None else f"{props['score']:.3f}"),
            ("Period", f"{props['period_start'] or '?'} to {props['period_end'] or '?'}"),
            ("Area", "n/a" if props["area_ha"] is None else f"{props['area_ha']:,.2f} ha"),
            ("Source", props["source"]), ("Model", props["model"] or "unknown")]
    last = standing(props["verdicts"], lambda v: v["verdict"])
    if last:
        text = VERDICTS.get(last["verdict"], last["verdict"])
        if last["reason"]:
            text += f" ({REASONS.get(last['reason'], last['reason'])})"
        text += f" by {last['reviewer']}, {(last['time'] or '')[:10]}"
        if last["note"]:
            text += f": {last['note']}"
        rows.append(("Verdict", text))
    parts = [f"<h3>Detection #{props['id']}</h3><table>"]
    parts += [f"<tr><th align='left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table>")
    for label, caption, href in images:
        parts.append(f"<p><b>{e(label)}</b> {e(caption)}<br><img src='{e(href)}' width='240'></p>")
    for report in props.get("field_reports", []):
        parts.append(f"<p><b>Field report</b> by {e(report['reporter'])}"
                     f"{', seen ' + e(report['seen']) if report['seen'] else ''}: {e(report['text'])}</p>")
    return "".join(parts)


def write_kml(db, features: list[dict], path: str | Path, with_chips: bool = True) -> int:
    """Write exported features (export.features) as KML, or as KMZ with chips and photos."""
    import simplekml

    path = Path(path)
    kmz = path.suffix.lower() == ".kmz"
    kml = simplekml.Kml(name="Mining review detections")
    styles = _styles(kml)
    files: dict[str, bytes] = {}
    for feature in features:
        props = feature["properties"]
        images = []
        if kmz and with_chips:
            for label, caption, png in _chips(db, props["id"]):
                name = f"files/{props['id']}_{label.lower()}.png"
                files[name] = png
                images.append((label, caption, name))
            for sha, png in _photo_pngs(props.get("field_reports", [])):
                name = f"files/photo_{sha}.png"
                files[name] = png
                images.append(("Field photo", sha[:12], name))
        geometry = shapely.geometry.shape(feature["geometry"])
        polygons = list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]
        name = f"#{props['id']} {STATUS_LABELS.get(props['status'], props['status'])}"
        if len(polygons) == 1:
            outer, inner = _rings(polygons[0])
            placemark = kml.newpolygon(name=name, outerboundaryis=outer, innerboundaryis=inner)
        else:
            placemark = kml.newmultigeometry(name=name)
            for polygon in polygons:
                outer, inner = _rings(polygon)
                placemark.newpolygon(outerboundaryis=outer, innerboundaryis=inner)
        placemark.style = styles.get(props["status"], styles["pending"])
        placemark.description = _balloon(props, images)
        placemark.extendeddata.newdata("id", str(props["id"]))
        placemark.extendeddata.newdata("status", props["status"])
        placemark.extendeddata.newdata("score", "" if props["score"] is None else str(props["score"]))
    document = kml.kml()
    if kmz:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("doc.kml", document)        # the first entry: what readers open
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        path.write_text(document, encoding="utf-8")
    return len(features)
