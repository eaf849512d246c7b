"""Checking a published GeoJSON export on its own, without the review database.

What a sceptical reader runs (`python -m review verify-export FILE --key KEY`): the
checkpoint's signature by the published key; for every verdict of every detection, that its
log entry is in the signed tree (its RFC 9162 inclusion proof leads to the checkpoint's root)
and that every field the export shows says what the entry says. The first thing that does
not hold is named in one line.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReviewError
from ..judging import merkle, signed_note
from ..judging.signed_note import NoteError
from ..judging.verdicts import SECOND_OPINION_VERDICTS, status_from_history

# Exported verdict field -> the log entry's field.
FIELDS = {"id": "id", "reviewer": "reviewer", "verdict": "verdict", "reason": "reason",
          "note": "note", "time": "created_at", "model": "model_id", "threshold": "threshold",
          "via": "via", "override": "override"}
IMAGERY = {"before": ("before_source", "before_start", "before_end"),
           "after": ("after_source", "after_start", "after_end")}


class ExportCheckError(ReviewError):
    """The export does not hold: unreadable, unsigned, or a verdict that does not match."""


@dataclass
class ExportCheck:
    detections: int
    verdicts: int
    tree_size: int
    origin: str
    key: str

    def summary(self) -> str:
        return (f"export verified: {self.verdicts:,} verdicts on {self.detections:,} detections "
                f"are entries of log {self.origin} as its checkpoint of {self.tree_size:,} "
                f"verdicts signed by {self.key}")


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportCheckError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportCheckError(f"{path}: not a complete GeoJSON file ({exc.__class__.__name__}: "
                               f"{exc}); was it truncated?") from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        raise ExportCheckError(f"{path}: not a GeoJSON FeatureCollection")
    return data


def check_export(path: str | Path, key: str | None = None) -> ExportCheck:
    """Check an export; ExportCheckError names the first thing that does not hold."""
    data = _read(Path(path))
    header = data.get("verdict_log")
    if not isinstance(header, dict) or not isinstance(header.get("checkpoint"), str):
        raise ExportCheckError(f"{path}: no signed verdict_log checkpoint at top level: not an "
                               "export this tool can check (made before version 0.9?)")
    try:
        embedded = signed_note.parse_verifier(str(header.get("key", "")))
        given = signed_note.parse_verifier(key) if key else embedded
        if given != embedded:
            raise NoteError(f"the export names key {embedded.text()}, not the published {given.text()}")
        point = signed_note.parse_checkpoint(signed_note.open_note(header["checkpoint"], given))
    except NoteError as exc:
        raise ExportCheckError(f"{path}: {exc}") from None
    if point.origin != given.name:
        raise ExportCheckError(f"{path}: the checkpoint is of log {point.origin}, the key of {given.name}")
    verdicts = 0
    for number, feature in enumerate(data["features"], start=1):
        properties = (feature or {}).get("properties") or {}
        detection = properties.get("id", feature.get("id"))
        label = f"detection {detection}" if detection is not None else f"feature {number}"
        for position, verdict in enumerate(properties.get("verdicts") or [], start=1):
            problem = _verdict_problem(verdict, detection, point)
            if problem:
                raise ExportCheckError(f"{label}, verdict {position}: {problem}")
            verdicts += 1
        problem = _status_problem(properties)
        if problem:
            raise ExportCheckError(f"{label}: {problem}")
    return ExportCheck(len(data["features"]), verdicts, point.size, point.origin, given.text())


def _status_problem(properties: dict) -> str | None:
    """The status must follow from the verdicts shown, under one of the second-opinion modes."""
    history = [{"verdict": v.get("verdict"), "reviewer": v.get("reviewer"), "final": v.get("final"),
                "before_source": (v.get("before") or {}).get("source"),
                "after_source": (v.get("after") or {}).get("source")}
               for v in properties.get("verdicts") or []]
    possible = {status_from_history(history, mode) for mode in SECOND_OPINION_VERDICTS}
    status = properties.get("status")
    if status not in possible:
        return f"status {status!r} does not follow from its verdicts ({' or '.join(sorted(possible))})"
    return None


def _verdict_problem(verdict: dict, detection, point: signed_note.Checkpoint) -> str | None:
    if not isinstance(verdict, dict) or not isinstance(verdict.get("log_entry"), str):
        return "carries no log entry"
    try:
        entry = json.loads(verdict["log_entry"])
        proof = [base64.b64decode(h, validate=True) for h in verdict.get("inclusion_proof") or []]
        index = int(verdict["log_index"])
    except (json.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError):
        return "its log entry, index or proof is malformed"
    leaf = merkle.leaf_hash(verdict["log_entry"].encode("utf-8"))
    if not merkle.verify_inclusion(index, point.size, leaf, proof, point.root):
        return (f"its log entry is not entry {index} of the signed tree of {point.size:,} "
                "(the proof does not lead to the checkpoint's root)")
    if entry.get("detection_id") != detection:
        return f"its log entry is about detection {entry.get('detection_id')}"
    for exported, logged in FIELDS.items():
        if verdict.get(exported) != entry.get(logged):
            return f"{exported} says {verdict.get(exported)!r}, its log entry {entry.get(logged)!r}"
    if bool(verdict.get("final")) != bool(entry.get("final")):
        return f"final says {verdict.get('final')!r}, its log entry {entry.get('final')!r}"
    for side, names in IMAGERY.items():
        shown = verdict.get(side) or {}
        for part, logged in zip(("source", "start", "end"), names):
            if shown.get(part) != entry.get(logged):
                return (f"{side} imagery {part} says {shown.get(part)!r}, its log entry "
                        f"{entry.get(logged)!r}")
    return None
