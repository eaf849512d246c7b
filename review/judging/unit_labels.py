"""Labels of an area assessment's sample units: what a person saw at a point.

A label (mining, not_mining, or unsure: "can't tell") is a record of the verdict log like
a verdict: appended with the reviewer, the time and the imagery shown, hash-chained and a
leaf of the same Merkle tree, never rewritten; an undo appends too. A unit's status is
derived from its labels under the project's second-opinion mode, exactly as a detection's
is from its verdicts (mining plays verified, not_mining plays false positive).

The labelling queue hands units out in the design's order (the order drawn, interleaved
across strata) with short claims, so two reviewers never label the same unit at once.
Nothing here shows a unit's stratum or the map: the label must not know what the map said.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

from .. import verdict_log
from ..errors import ReviewError
from ..store import now, transaction
from . import project_settings
from .verdicts import UNDO, Imagery, decisions, point_status

LABELS = {"mining": "mining", "not_mining": "not mining", "unsure": "can't tell"}
SETTLED = tuple(LABELS)
CLAIM_SECONDS = 120


class LabelError(ReviewError):
    """A label that cannot be recorded as asked."""


def unit(db, unit_id: int, design_id: int | None = None) -> dict:
    row = db.execute("select u.id, u.assessment_id, a.name, u.lon, u.lat, u.status, a.period_start, "
                     "a.period_end from assessment_units u join assessments a on a.id = u.assessment_id "
                     "where u.id = ?", [unit_id]).fetchone()
    if row is None:
        raise LabelError(f"no assessment unit {unit_id}")
    found = dict(zip(("id", "assessment_id", "design", "lon", "lat", "status", "period_start",
                      "period_end"), row))
    if design_id is not None and found["assessment_id"] != design_id:
        raise LabelError(f"unit {unit_id} belongs to design {found['design']!r}, not this one")
    return found


def history(db, unit_id: int) -> list[dict]:
    return list(db["verdicts"].rows_where("unit_id = ?", [unit_id], order_by="id"))


def _check(label: str, reviewer: str) -> None:
    if label not in LABELS:
        raise LabelError(f"unknown label {label!r}: use mining, not_mining or unsure")
    if not reviewer or not reviewer.strip():
        raise LabelError("a label needs the reviewer's name")


def record(db, unit_id: int, reviewer: str, label: str, note: str | None = None,
           before: Imagery | None = None, after: Imagery | None = None, via: str = "dashboard",
           design_id: int | None = None, final: bool = False) -> int:
    """Append a label and update the unit's status; returns the record's id."""
    _check(label, reviewer)
    with transaction(db):
        unit(db, unit_id, design_id)
        record_id = _append(db, unit_id, reviewer, label, note, before, after, via, final)
    return record_id


def undo(db, unit_id: int, reviewer: str, via: str = "dashboard", own_only: bool = False) -> int:
    """Take back the latest label on a unit (appended as an undo record)."""
    if not reviewer or not reviewer.strip():
        raise LabelError("an undo needs the reviewer's name")
    with transaction(db):
        unit(db, unit_id)
        taken = decisions(history(db, unit_id), lambda r: r["verdict"])
        if not taken:
            raise LabelError(f"unit {unit_id} has no label to take back")
        if own_only and taken[-1]["reviewer"] != reviewer:
            raise LabelError(f"the latest label on unit {unit_id} is {taken[-1]['reviewer']}'s; "
                             "only they can take it back")
        return _append(db, unit_id, reviewer, UNDO, None, None, None, via, False)


def last_labelled(db, reviewer: str, design_id: int | None = None) -> int | None:
    """The unit of this reviewer's latest label that is still the latest record on it."""
    design = "and v.unit_id in (select id from assessment_units where assessment_id = ?)" \
        if design_id is not None else ""
    row = db.execute(
        "select v.unit_id from verdicts v where v.unit_id is not null and v.reviewer = ? and "
        "v.verdict != ? and v.id = (select max(id) from verdicts w where w.unit_id = v.unit_id) "
        f"{design} order by v.id desc limit 1",
        [reviewer, UNDO, *([design_id] if design_id is not None else [])]).fetchone()
    return None if row is None else row[0]


def _append(db, unit_id, reviewer, label, note, before, after, via, final) -> int:
    # Called inside the write transaction: the id and the chain's tail are ours.
    before, after = before or Imagery(), after or Imagery()
    last = db.execute("select max(id) from verdicts").fetchone()[0] or 0
    row = {"id": last + 1, "unit_id": unit_id, "detection_id": None, "reviewer": reviewer,
           "verdict": label, "reason": None, "note": note,
           "before_source": before.source, "before_start": before.start, "before_end": before.end,
           "after_source": after.source, "after_start": after.start, "after_end": after.end,
           "model_id": None, "threshold": None, "created_at": now(), "via": via,
           "final": 1 if final else None, "override": None}
    prev = verdict_log.last_hash(db)
    record_id = db["verdicts"].insert({**row, "prev_hash": prev,
                                       "hash": verdict_log.row_hash(row, prev)}).last_pk
    _update_status(db, unit_id, project_settings.get(db, "second_opinion"))
    db.execute("delete from unit_claims where unit_id = ?", [unit_id])
    return record_id


def _update_status(db, unit_id: int, mode: str) -> str:
    status = point_status(history(db, unit_id), mode)
    db.execute("update assessment_units set status = ? where id = ?", [status, unit_id])
    return status


# ------------------------------------------------------------------ labels made elsewhere

def read_label_file(path: Path, design_id: int, default_reviewer: str) -> list[dict]:
    """unit_id,label[,reviewer,note] rows, all checked before any is recorded."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: cannot read the labels ({exc.__class__.__name__})") from None
    if not rows:
        raise LabelError(f"{path}: no labels in the file")
    missing = {"unit_id", "label"} - set(rows[0])
    if missing:
        raise LabelError(f"{path}: the header needs unit_id and label (missing {', '.join(sorted(missing))})")
    checked = []
    for line, row in enumerate(rows, start=2):
        try:
            unit_id = int(str(row["unit_id"]).strip())
        except ValueError:
            raise LabelError(f"{path}, line {line}: unit_id {row['unit_id']!r} is not a number; "
                             "nothing was recorded") from None
        label = (row.get("label") or "").strip()
        reviewer = (row.get("reviewer") or "").strip() or default_reviewer
        try:
            _check(label, reviewer)
        except LabelError as exc:
            raise LabelError(f"{path}, line {line}: {exc}; nothing was recorded") from None
        checked.append({"line": line, "unit_id": unit_id, "label": label, "reviewer": reviewer,
                        "note": (row.get("note") or "").strip() or None})
    return checked


def record_many(db, design_id: int, rows: list[dict], via: str = "import") -> int:
    """Record checked label rows in one transaction: all of them, or none when any unit is
    not of this design."""
    with transaction(db):
        for row in rows:
            try:
                unit(db, row["unit_id"], design_id)
            except LabelError as exc:
                raise LabelError(f"line {row['line']}: {exc}; nothing was recorded") from None
            _append(db, row["unit_id"], row["reviewer"], row["label"], row["note"], None, None,
                    via, False)
    return len(rows)


# ------------------------------------------------------------------ the labelling queue

_ORDER = ("order by u.position, (select position from assessment_strata s where "
          "s.assessment_id = u.assessment_id and s.name = u.stratum), u.id")


def _waiting_sql() -> str:
    # Pending units, and units waiting for a second opinion that this reviewer has not labelled.
    return ("(u.status = 'pending' or (u.status = 'needs_second_opinion' and u.id not in "
            "(select unit_id from verdicts where unit_id is not null and reviewer = ?)))")


def remaining(db, design_id: int, reviewer: str) -> int:
    return db.execute(f"select count(*) from assessment_units u where u.assessment_id = ? and "
                      f"{_waiting_sql()}", [design_id, reviewer]).fetchone()[0]


def claim_next(db, design_id: int, reviewer: str, holder: str, skip: tuple[int, ...] = (),
               claim_seconds: float = CLAIM_SECONDS) -> dict | None:
    """Claim the first unit of the design's order that waits for this reviewer and that
    nobody else holds (this holder's previous claim is let go)."""
    moment = time.time()
    with transaction(db):
        db.execute("delete from unit_claims where holder = ? or claimed_at < ?",
                   [holder, moment - claim_seconds])
        skipped = f"and u.id not in ({', '.join('?' * len(skip))})" if skip else ""
        row = db.execute(
            f"select u.id from assessment_units u where u.assessment_id = ? and {_waiting_sql()} "
            f"and u.id not in (select unit_id from unit_claims) {skipped} {_ORDER} limit 1",
            [design_id, reviewer, *skip]).fetchone()
        if row is None:
            return None
        db.execute("insert into unit_claims (unit_id, reviewer, holder, claimed_at) values (?, ?, ?, ?)",
                   [row[0], reviewer, holder, moment])
    return unit(db, row[0])


def upcoming(db, design_id: int, reviewer: str, count: int, skip: tuple[int, ...] = ()) -> list[dict]:
    """The units this reviewer would be given next (no claims taken): for imagery ahead."""
    skipped = f"and u.id not in ({', '.join('?' * len(skip))})" if skip else ""
    rows = db.execute(
        f"select u.id from assessment_units u where u.assessment_id = ? and {_waiting_sql()} "
        f"and u.id not in (select unit_id from unit_claims) {skipped} {_ORDER} limit ?",
        [design_id, reviewer, *skip, count]).fetchall()
    return [unit(db, r[0]) for r in rows]


def renew(db, holder: str, unit_id: int) -> bool:
    with transaction(db):
        cursor = db.execute("update unit_claims set claimed_at = ? where unit_id = ? and holder = ?",
                            [time.time(), unit_id, holder])
    return cursor.rowcount == 1


def holder_of(db, unit_id: int, claim_seconds: float = CLAIM_SECONDS) -> dict | None:
    """Who has this point on screen now: {reviewer, holder, since}, or None."""
    row = db.execute("select reviewer, holder, claimed_at from unit_claims where unit_id = ? and "
                     "claimed_at >= ?", [unit_id, time.time() - claim_seconds]).fetchone()
    return None if row is None else {"reviewer": row[0], "holder": row[1], "since": row[2]}


def release(db, holder: str) -> None:
    with transaction(db):
        db.execute("delete from unit_claims where holder = ?", [holder])


def claim(db, unit_id: int, reviewer: str, holder: str) -> dict:
    """Take a specific unit again (brought back by undo)."""
    with transaction(db):
        db.execute("delete from unit_claims where holder = ? or unit_id = ?", [holder, unit_id])
        db.execute("insert into unit_claims (unit_id, reviewer, holder, claimed_at) values (?, ?, ?, ?)",
                   [unit_id, reviewer, holder, time.time()])
    return unit(db, unit_id)
