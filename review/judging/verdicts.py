"""Verdicts: what a person decided about a detection, appended and never rewritten.

A detection's status is derived from its history: each verdict pushes a decision, each
undo takes back the latest decision not already taken back. Undo is itself a record.
Every verdict is committed at once, in its own transaction, with the imagery the
reviewer was shown and the model and threshold behind the detection.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from .. import verdict_log
from ..errors import StoreError
from ..store import now, transaction
from . import project_settings

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
# Statuses a detection can have; the last two exist only with second opinions switched on.
STATUSES = ("pending", *VERDICTS, "needs_second_opinion", "disputed")
SECOND_OPINION_VERDICTS = {"off": (), "verified": ("verified",),
                           "all": ("verified", "false_positive")}


@dataclass(frozen=True)
class Imagery:
    """One view a reviewer was shown: where it came from and the dates it covers."""

    source: str | None = None
    start: str | None = None
    end: str | None = None

    def label(self) -> str:
        dates = " to ".join(d for d in (self.start, self.end) if d) or "dates unknown"
        return f"{self.source or 'unknown source'}, {dates}"


# What a verdict records when the reviewer had no imagery on screen (the Review page says so).
NO_IMAGERY = Imagery(source="no imagery was shown")


def unseen(row: dict) -> bool:
    """Whether a verdict was given with no imagery on screen (as recorded by the dashboard)."""
    return (row.get("before_source") == NO_IMAGERY.source
            and row.get("after_source") == NO_IMAGERY.source)


def standing(history: list, verdict_of=lambda item: item):
    """The latest decision not taken back by an undo, or None."""
    stack = decisions(history, verdict_of)
    return stack[-1] if stack else None


def decisions(history: list, verdict_of=lambda item: item) -> list:
    """The decisions still standing, in order: each undo takes back the latest one."""
    stack = []
    for item in history:
        if verdict_of(item) == UNDO:
            if stack:
                stack.pop()
        else:
            stack.append(item)
    return stack


def status_from_history(history: list, mode: str = "off") -> str:
    """A detection's status from its verdict history (verdict strings, or rows with
    verdict, reviewer and final) under a second-opinion mode.

    off: the latest standing decision. verified / all: a first 'verified' (with all, also a
    'false_positive') waits for a second opinion; a decision by a different reviewer then
    confirms it (same verdict) or disputes it; the same reviewer deciding again only
    replaces their own first look. A 'verified' given with no imagery on screen (`unseen`:
    rows with before_source and after_source) confirms nothing: the detection waits for
    someone who saw it. A dispute is settled only by a final decision (an editor's), which
    always stands.
    """
    rows = [{"verdict": h} if isinstance(h, str) else h for h in history]
    stack = decisions(rows, lambda r: r["verdict"])
    if mode == "off" or not stack:
        return stack[-1]["verdict"] if stack else "pending"
    needs_second = SECOND_OPINION_VERDICTS[mode]
    status, first = "pending", None
    for row in stack:
        verdict = row["verdict"]
        if row.get("final"):
            status, first = verdict, None
        elif status == "needs_second_opinion":
            if row.get("reviewer") == first.get("reviewer"):
                status, first = ("needs_second_opinion", row) if verdict in needs_second else (verdict, None)
            elif verdict == first["verdict"] == "verified" and unseen(row):
                continue            # no evidence seen: it cannot confirm
            else:
                status, first = (verdict if verdict == first["verdict"] else "disputed"), None
        elif status == "disputed":
            continue
        elif verdict in needs_second and status != verdict:
            status, first = "needs_second_opinion", row
        else:
            status = verdict
    return status


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
           before: Imagery | None = None, after: Imagery | None = None,
           via: str = "dashboard", final: bool = False, override: str | None = None) -> int:
    """Append a verdict and update the detection's status; returns the verdict id.

    `final` marks an editor's decision that settles a dispute (the caller checks the role);
    `override` records that the reviewer chose to review a detection someone else held."""
    _check(verdict, reason, reviewer)
    return _append(db, detection_id, reviewer, verdict, reason, note, before, after, via,
                   final, override)


def undo(db: sqlite_utils.Database, detection_id: int, reviewer: str, via: str = "dashboard",
         own_only: bool = False) -> int:
    """Take back the latest decision on a detection, by appending an undo record. With
    `own_only` (accounts), only when that decision is the reviewer's own."""
    if not reviewer or not reviewer.strip():
        raise StoreError("an undo needs the reviewer's name")
    return _append(db, detection_id, reviewer, UNDO, None, None, None, None, via, False, None,
                   own_only)


def undoable(db, detection_id: int) -> dict | None:
    """The decision an undo on this detection would take back (its row), or None."""
    return standing(history(db, detection_id), lambda v: v["verdict"])


def _append(db, detection_id, reviewer, verdict, reason, note, before, after, via, final,
            override, own_only: bool = False) -> int:
    before, after = before or Imagery(), after or Imagery()
    with transaction(db):
        row = db.execute("select model_id, threshold from detections where id = ?",
                         [detection_id]).fetchone()
        if row is None:
            raise StoreError(f"no detection with id {detection_id}")
        if verdict == UNDO and own_only:
            # Checked inside the write lock: nobody decides in between.
            taken = undoable(db, detection_id)
            if taken is None:
                raise StoreError(f"detection {detection_id} has no decision to take back")
            if taken["reviewer"] != reviewer:
                raise StoreError(f"the latest decision on detection {detection_id} is "
                                 f"{taken['reviewer']}'s; only they can take it back")
        # Inside the write lock nobody else appends, so the id and the chain's tail are ours.
        last = db.execute("select max(id) from verdicts").fetchone()[0] or 0
        verdict_row = {
            "id": last + 1, "detection_id": detection_id, "reviewer": reviewer,
            "verdict": verdict, "reason": reason, "note": note,
            "before_source": before.source, "before_start": before.start, "before_end": before.end,
            "after_source": after.source, "after_start": after.start, "after_end": after.end,
            "model_id": row[0], "threshold": row[1], "created_at": now(), "via": via,
            "final": 1 if final else None, "override": override}
        prev = verdict_log.last_hash(db)
        verdict_id = db["verdicts"].insert({**verdict_row, "prev_hash": prev,
                                            "hash": verdict_log.row_hash(verdict_row, prev)}).last_pk
        _update_status(db, detection_id, project_settings.get(db, "second_opinion"))
        db.execute("delete from claims where detection_id = ?", [detection_id])
    return verdict_id


def _update_status(db, detection_id: int, mode: str) -> str:
    rows = db.execute("select verdict, reviewer, final, before_source, after_source from verdicts "
                      "where detection_id = ? order by id", [detection_id]).fetchall()
    status = status_from_history([{"verdict": v, "reviewer": r, "final": f, "before_source": b,
                                   "after_source": a} for v, r, f, b, a in rows], mode)
    db.execute("update detections set status = ? where id = ?", [status, detection_id])
    return status


def set_second_opinion(db: sqlite_utils.Database, mode: str, by: str | None = None) -> dict:
    """Switch the second-opinion mode and re-derive every reviewed detection's status from
    its history under it; returns how many were waiting before and how many changed."""
    project_settings.check("second_opinion", mode)
    with transaction(db):
        waiting = db.execute("select count(*) from detections where status in "
                             "('needs_second_opinion', 'disputed')").fetchone()[0]
        project_settings.write(db, "second_opinion", mode, by)
        before = dict(db.execute("select id, status from detections where id in "
                                 "(select detection_id from verdicts)").fetchall())
        changed = sum(_update_status(db, i, mode) != status for i, status in before.items())
        _restatus_points(db, mode)
    return {"mode": mode, "waiting_before": waiting, "changed": changed}


# Labels of area-assessment points (review.judging.unit_labels) are read as verdicts, so the
# second-opinion rules are the very same: mining plays verified, not_mining false positive.
LABEL_AS_VERDICT = {"mining": "verified", "not_mining": "false_positive", "unsure": "unsure"}
VERDICT_AS_LABEL = {v: k for k, v in LABEL_AS_VERDICT.items()}


def point_status(rows: list[dict], mode: str) -> str:
    """A point's status from its label records, under a second-opinion mode."""
    status = status_from_history(
        [{**r, "verdict": LABEL_AS_VERDICT.get(r["verdict"], r["verdict"])} for r in rows], mode)
    return VERDICT_AS_LABEL.get(status, status)


def _restatus_points(db, mode: str) -> None:
    cursor = db.execute("select * from verdicts where unit_id is not null order by unit_id, id")
    names = [d[0] for d in cursor.description]
    by_point: dict[int, list[dict]] = {}
    for values in cursor:
        row = dict(zip(names, values))
        by_point.setdefault(row["unit_id"], []).append(row)
    for unit_id, rows in by_point.items():
        db.execute("update assessment_units set status = ? where id = ?", [point_status(rows, mode), unit_id])


def history(db: sqlite_utils.Database, detection_id: int) -> list[dict]:
    return list(db["verdicts"].rows_where("detection_id = ?", [detection_id], order_by="id"))


def last_decision(db: sqlite_utils.Database, reviewer: str) -> int | None:
    """The detection of this reviewer's latest decision that is still the latest record on
    it (nothing undone or added since): what 'undo last' takes back, after a reload too."""
    row = db.execute(
        "select v.detection_id from verdicts v where v.reviewer = ? and v.verdict != ? and "
        "v.id = (select max(id) from verdicts w where w.detection_id = v.detection_id) "
        "order by v.id desc limit 1", [reviewer, UNDO]).fetchone()
    return None if row is None else row[0]


def latest(db: sqlite_utils.Database) -> dict[int, tuple[str, str, str | None]]:
    """The last record (undo included) per reviewed detection: (reviewer, verdict, note)."""
    rows = db.execute(
        "select v.detection_id, v.reviewer, v.verdict, v.note from verdicts v join "
        "(select detection_id, max(id) as id from verdicts where detection_id is not null "
        "group by detection_id) m on v.id = m.id")
    return {row[0]: tuple(row[1:]) for row in rows}
