"""A site's dossier: one PDF a newsroom can attach and a court can read, and its JSON twin
holding the same facts (publishing.dossier_facts), so every claim can be checked.

Making one signs the verdict log as it stands (a kept checkpoint, as an export does) and
proves each verdict shown against it; adds the best before/after chips of each period and
the field photos, each named in the facts by the SHA-256 of the JPEG embedded; and writes
both files or neither. `check` verifies a dossier's JSON on its own, without the database:
the checkpoint's signature and every verdict's inclusion proof (and, where names are
shown, that each verdict says what its log entry says).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..analysis import sites
from ..errors import ReviewError
from ..judging import merkle, signed_note, transparency_log
from ..judging.queue import get
from ..judging.signed_note import NoteError
from ..review_imagery import chip_cache
from ..review_imagery.preparation import scene_views
from . import dossier_facts, reports
from .export_check import FIELDS, IMAGERY

CHIP_QUALITY = 90
PHOTO_SIDE_PX, PHOTO_QUALITY = 1000, 85
TRIES_PER_PERIOD = 3           # detections of a period tried for imagery before giving up
# The order in which a period's detection is picked to show its imagery.
STATUS_RANK = {"verified": 0, "disputed": 1, "needs_second_opinion": 2, "unsure": 3, "pending": 4,
               "false_positive": 5}


class DossierError(ReviewError):
    """A dossier cannot be made, written or checked as asked."""


@dataclass
class Dossier:
    facts: dict
    pdf: bytes
    json: bytes

    def summary(self, pdf_path: Path | None = None) -> str:
        site = self.facts["site"]
        verdicts = sum(len(d["verdicts"]) for d in self.facts["detections"])
        where = f" written to {pdf_path} and {pdf_path.with_suffix('.json')}" if pdf_path else ""
        return (f"dossier of site {site['id']}{where}: {len(self.facts['periods'])} periods, "
                f"{site['detections']} detections, {verdicts} verdicts proved against the log's "
                f"checkpoint of {self.facts['verdict_log']['tree_size']:,}, "
                f"{len(self.facts['field_reports'])} field reports; {len(self.pdf) / 1024:,.0f} KB PDF")


def outputs(path: str | Path) -> tuple[Path, Path]:
    """The PDF to write and its JSON twin beside it; refused unless the PDF's folder exists
    and can be written to (nothing is made before that is known)."""
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        raise DossierError(f"{path.name}: a dossier is written as a .pdf file (its JSON twin "
                           "goes beside it)")
    folder = path.parent
    if not folder.is_dir():
        raise DossierError(f"{path}: the folder {folder} does not exist; make it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DossierError(f"{path}: the folder {folder} cannot be written to")
    return path, path.with_suffix(".json")


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=CHIP_QUALITY)
    return buffer.getvalue()


def _side(imagery, data: bytes, images: dict[str, bytes]) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    images[digest] = data
    return {"source": imagery.source, "start": imagery.start, "end": imagery.end, "sha256": digest}


def _within(imagery, period: dict) -> bool:
    """Whether a view's dates meet the period's (undated views and periods pass)."""
    if not (imagery.start and period.get("start") and period.get("end")):
        return True
    return imagery.start[:10] <= period["end"] and (imagery.end or imagery.start)[:10] >= period["start"]


def _pairs(db, cache: chip_cache.Cache, detection_id: int):
    """Before/after views of one detection, best first, each (source, before, after, note)
    with (imagery, JPEG bytes) per view: the chips prepared for review, then chips
    rendered from the stored scenes."""
    detection = get(db, detection_id)
    prepared = cache.lookup(detection)
    if prepared is not None:
        before = prepared.before
        yield (chip_cache.SOURCE_NAMES.get(prepared.source, prepared.source),
               None if before is None else (before.imagery, before.path().read_bytes()),
               (prepared.after.imagery, prepared.after.path().read_bytes()), prepared.note)
    pictures = scene_views(db, detection)
    if pictures:
        before = (pictures[0].imagery, _jpeg(pictures[0].image)) if len(pictures) == 2 else None
        yield (chip_cache.SOURCE_NAMES["scenes"], before, (pictures[-1].imagery, _jpeg(pictures[-1].image)),
               None if before else "No earlier stored scene covers this detection.")


def imagery(db, facts: dict, images: dict[str, bytes]) -> list[dict]:
    """Per period, the before/after chips of its best detection (verified first, then the
    largest, then the highest score) that has imagery of that period, with sources and
    dates: the chips prepared for review when they show the period, else stored scenes."""
    cache = chip_cache.cache_for(db)
    found = []
    for period in facts["periods"]:
        members = sorted((d for d in facts["detections"] if d["period"] == period["period"]),
                         key=lambda d: (STATUS_RANK.get(d["status"], 9), -(d["area_ha"] or 0),
                                        -(d["score"] or 0), d["id"]))
        shown, problems = None, []
        for detection in members[:TRIES_PER_PERIOD]:
            try:
                for source, before, after, note in _pairs(db, cache, detection["id"]):
                    if not _within(after[0], period):
                        # e.g. the only stored scene is of a later year: not this period's picture
                        problems.append(f"detection {detection['id']}: {source} show "
                                        f"{after[0].start} to {after[0].end or '?'}")
                        continue
                    shown = {"period": period["period"], "detection_id": detection["id"],
                             "source": source, "before": before and _side(*before, images),
                             "after": _side(*after, images), "note": note}
                    break
            except (ReviewError, OSError) as exc:        # an unreadable scene or chip file
                problems.append(f"detection {detection['id']}: {exc}")
            if shown is not None:
                break
        if shown is None:
            note = f"No imagery of {period['period']} is prepared or stored for this site"
            shown = {"period": period["period"], "detection_id": None, "source": None, "before": None,
                     "after": None, "note": note + (f" ({'; '.join(problems)})" if problems else "") + "."}
        found.append(shown)
    return found


def photos(facts: dict, images: dict[str, bytes]) -> None:
    """Embed each field photo (upright, at most PHOTO_SIDE_PX on a side) and name it."""
    for report in facts["field_reports"]:
        for photo in report["photos"]:
            try:
                picture = reports.thumbnail(photo["sha256"], PHOTO_SIDE_PX)
            except (ReviewError, OSError) as exc:
                photo["embedded_sha256"], photo["missing"] = None, f"Not embedded: {exc}."
                continue
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=PHOTO_QUALITY)
            digest = hashlib.sha256(buffer.getvalue()).hexdigest()
            images[digest] = buffer.getvalue()
            photo["embedded_sha256"] = digest


def context_shapes(db, facts: dict) -> list[dict]:
    """The context polygons the site overlaps, near it, to draw on its map."""
    import shapely

    west, south, east, north = facts["site"]["place"]["bbox"]
    pad = 2 * max(east - west, north - south, 0.002)          # more than the map shows
    shapes = []
    for overlap in facts["context"]["site"]:
        for (text,) in db.execute(
                "select f.geometry from context_features f join context_layers l on l.id = f.layer_id "
                "where l.name = ? and f.value = ? and f.east >= ? and f.west <= ? and f.north >= ? "
                "and f.south <= ? order by f.id",
                [overlap["layer"], overlap["value"], west - pad, east + pad, south - pad, north + pad]):
            # Clipped here: a territory's full outline can hold 100,000 points.
            shapes.append({"layer": overlap["layer"], "value": overlap["value"],
                           "geometry": shapely.clip_by_rect(shapely.from_geojson(text), west - pad,
                                                            south - pad, east + pad, north + pad)})
    return shapes


def _finite(value):
    """JSON has no NaN or infinity: such a number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def build(db, site_id: int, with_names: bool = False, by: str | None = None) -> Dossier:
    """Make a site's dossier (PDF and JSON bytes); signs the verdict log first."""
    sites.summary(db, site_id)               # an unknown or merged-away site: refused before signing
    log = transparency_log.snapshot(db, by)
    facts = dossier_facts.facts(db, site_id, log, with_names)
    images: dict[str, bytes] = {}
    facts["imagery"] = imagery(db, facts, images)
    photos(facts, images)
    facts = _finite(facts)
    from . import dossier_pdf      # fpdf and its fonts: 0.3 s, paid only when a PDF is made

    pdf = dossier_pdf.render(facts, images, context_shapes(db, facts))
    text = json.dumps(facts, ensure_ascii=False, indent=1, allow_nan=False)
    return Dossier(facts, pdf, (text + "\n").encode("utf-8"))


def write(db, site_id: int, path: str | Path, with_names: bool = False,
          by: str | None = None) -> Dossier:
    """Write a site's dossier to PATH.pdf and its JSON twin PATH.json, both or neither."""
    pdf_path, json_path = outputs(path)
    dossier = build(db, site_id, with_names, by)
    with files.staged() as staged:
        staged.stage(pdf_path, dossier.pdf)
        staged.stage(json_path, dossier.json)
        staged.commit()
    return dossier


# ------------------------------------------------------------------------ checking


@dataclass
class DossierCheck:
    site_id: int
    verdicts: int
    entries: int
    tree_size: int
    key: str

    def summary(self) -> str:
        how = ("each verdict says what its log entry says" if self.entries == self.verdicts else
               f"names withheld: {self.verdicts - self.entries} verdicts proved by their leaf hash only")
        return (f"dossier of site {self.site_id} verified: {self.verdicts:,} verdicts are entries of the "
                f"log's checkpoint of {self.tree_size:,} verdicts signed by {self.key}; {how}")


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DossierError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DossierError(f"{path}: not a complete JSON file ({exc.__class__.__name__}); was it "
                           "truncated?") from None
    if not isinstance(data, dict) or (data.get("dossier") or {}).get("format") != dossier_facts.FORMAT:
        raise DossierError(f"{path}: not the JSON twin of a site dossier")
    return data


def _problem(verdict: dict, detection_id, point) -> str | None:
    try:
        proof = [base64.b64decode(h, validate=True) for h in verdict.get("inclusion_proof") or []]
        index = int(verdict["log_index"])
        entry_text = verdict.get("log_entry")
        leaf = base64.b64decode(verdict["log_leaf_hash"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "its log index, leaf hash or proof is missing or malformed"
    if isinstance(entry_text, str) and merkle.leaf_hash(entry_text.encode("utf-8")) != leaf:
        return "its leaf hash is not the hash of its log entry"
    if not merkle.verify_inclusion(index, point.size, leaf, proof, point.root):
        return (f"it is not entry {index} of the signed tree of {point.size:,} (the proof does not "
                "lead to the checkpoint's root)")
    if not isinstance(entry_text, str):
        return None
    entry = json.loads(entry_text)
    if entry.get("detection_id") != detection_id:
        return f"its log entry is about detection {entry.get('detection_id')}"
    for shown, logged in FIELDS.items():
        if verdict.get(shown) != entry.get(logged):
            return f"{shown} says {verdict.get(shown)!r}, its log entry {entry.get(logged)!r}"
    if bool(verdict.get("final")) != bool(entry.get("final")):
        return f"final says {verdict.get('final')!r}, its log entry {entry.get('final')!r}"
    for side, names in IMAGERY.items():
        for part, logged in zip(("source", "start", "end"), names):
            if (verdict.get(side) or {}).get(part) != entry.get(logged):
                return f"{side} imagery {part} does not say what its log entry says"
    return None


def check(path: str | Path, key: str | None = None) -> DossierCheck:
    """Check a dossier's JSON twin on its own; DossierError names the first thing that fails."""
    data = _read(Path(path))
    header = data.get("verdict_log") or {}
    try:
        embedded = signed_note.parse_verifier(str(header.get("key", "")))
        given = signed_note.parse_verifier(key) if key else embedded
        if given != embedded:
            raise NoteError(f"the dossier names key {embedded.text()}, not the published {given.text()}")
        point = signed_note.parse_checkpoint(signed_note.open_note(str(header.get("checkpoint", "")), given))
    except NoteError as exc:
        raise DossierError(f"{path}: {exc}") from None
    verdicts = entries = 0
    for detection in data.get("detections") or []:
        for verdict in detection.get("verdicts") or []:
            problem = _problem(verdict, detection.get("id"), point)
            if problem:
                raise DossierError(f"detection {detection.get('id')}, verdict {verdict.get('id')}: {problem}")
            verdicts += 1
            entries += isinstance(verdict.get("log_entry"), str)
    return DossierCheck(int(data["site"]["id"]), verdicts, entries, point.size, given.text())
