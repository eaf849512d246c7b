"""Verdicts: what a person decided about a detection, appended and never rewritten.

A detection's status is derived from its history: each verdict pushes a decision, each
undo takes back the latest decision not already taken back. Undo is itself a record.
Every verdict is committed at once, in its own transaction, with the imagery the
reviewer was shown and the model and threshold behind the detection.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from .errors import StoreError
from .store import now, transaction

VERDICTS = {"verified": "verified", "false_positive": "false positive", "unsure": "unsure"}
UNDO = "undo"
REASONS = {
    "riverbank": "riverbank or sandbar",
    "aquaculture": "aquaculture or fish pond",
    "landslide": "landslide or natural erosion",
    "industrial": "industrial or quarry",
    "agriculture": "agriculture or clearing",
    "cloud": "cloud or shadow",
    "settlement": "road or settlement",
    "other": "other",
}
STATUSES = ("pending", *VERDICTS)


@dataclass(frozen=True)
class Imagery:
    """One view a reviewer was shown: where it came from and the dates it covers."""

    source: str | None = None
    start: str | None = None
    end: str | None = None

    def label(self) -> str:
        dates = " to ".join(d for d in (self.start, self.end) if d) or "dates unknown"
        return f"{self.source or 'unknown source'}, {dates}"


def standing(history: list, verdict_of=lambda item: item):
    """The latest decision not taken back by an undo, or None."""
    stack = []
    for item in history:
        if verdict_of(item) == UNDO:
            if stack:
                stack.pop()
        else:
            stack.append(item)
    return stack[-1] if stack else None


def status_from_history(decisions: list[str]) -> str:
    return standing(decisions) or "pending"


def _check(verdict: str, reason: str | None, reviewer: str) -> None:
    if verdict not in VERDICTS:
        raise StoreError(f"unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    if verdict == "false_positive":
        if not reason:
            raise StoreError(f"a false positive needs a reason: one of {', '.join(REASONS)}")
        if reason not in REASONS:
            raise StoreError(f"unknown reason {reason!r}: use one of {', '.join(REASONS)}")
    elif reason:
        raise StoreError("a reason is given only with a false_positive verdict")
    if not reviewer or not reviewer.strip():
        raise StoreError("a verdict needs the reviewer's name")


def record(db: sqlite_utils.Database, detection_id: int, reviewer: str, verdict: str,
           reason: str | None = None, note: str | None = None,
           before: Imagery | None = None, after: Imagery | None = None) -> int:
    """Append a verdict and update the detection's status; returns the verdict id."""
    _check(verdict, reason, reviewer)
    return _append(db, detection_id, reviewer, verdict, reason, note, before, after)


def undo(db: sqlite_utils.Database, detection_id: int, reviewer: str) -> int:
    """Take back the latest decision on a detection, by appending an undo record."""
    if not reviewer or not reviewer.strip():
        raise StoreError("an undo needs the reviewer's name")
    return _append(db, detection_id, reviewer, UNDO, None, None, None, None)


def _append(db, detection_id, reviewer, verdict, reason, note, before, after) -> int:
    before, after = before or Imagery(), after or Imagery()
    with transaction(db):
        row = db.execute("select model_id, threshold from detections where id = ?",
                         [detection_id]).fetchone()
        if row is None:
            raise StoreError(f"no detection with id {detection_id}")
        verdict_id = db["verdicts"].insert({
            "detection_id": detection_id, "reviewer": reviewer, "verdict": verdict,
            "reason": reason, "note": note,
            "before_source": before.source, "before_start": before.start, "before_end": before.end,
            "after_source": after.source, "after_start": after.start, "after_end": after.end,
            "model_id": row[0], "threshold": row[1], "created_at": now()}).last_pk
        history = [r[0] for r in db.execute(
            "select verdict from verdicts where detection_id = ? order by id", [detection_id])]
        db.execute("update detections set status = ? where id = ?",
                   [status_from_history(history), detection_id])
        db.execute("delete from claims where detection_id = ?", [detection_id])
    return verdict_id


def history(db: sqlite_utils.Database, detection_id: int) -> list[dict]:
    return list(db["verdicts"].rows_where("detection_id = ?", [detection_id], order_by="id"))


def latest(db: sqlite_utils.Database) -> dict[int, tuple[str, str, str | None]]:
    """The last record (undo included) per reviewed detection: (reviewer, verdict, note)."""
    rows = db.execute(
        "select v.detection_id, v.reviewer, v.verdict, v.note from verdicts v join "
        "(select detection_id, max(id) as id from verdicts group by detection_id) m on v.id = m.id")
    return {row[0]: tuple(row[1:]) for row in rows}
