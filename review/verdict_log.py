"""The verdict log as evidence: every verdict row carries a hash over its content and the
previous row's hash, so a changed, removed or reordered row shows up when the chain is
checked. SQLite triggers (store migration 6) refuse UPDATE and DELETE on the table; the
chain catches what a hand edit of the file does around them.

The chain catches edits inside one copy of the file; what pins the log from outside is its
Merkle tree and signed checkpoints (review.judging.transparency_log), whose entries are
`entry(row)`: the canonical JSON of the same columns.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GENESIS = "0" * 64
# The columns a verdict's hash covers. Add new columns at the end; never remove one.
HASHED = ("id", "detection_id", "reviewer", "verdict", "reason", "note",
          "before_source", "before_start", "before_end", "after_source", "after_start",
          "after_end", "model_id", "threshold", "created_at", "via", "final", "override", "unit_id")


def canonical(row: dict) -> str:
    """The record as canonical JSON: every kept column that holds a value, keys sorted, no
    spaces, UTF-8 as is. Only the columns that hold a value, so a column added later (empty
    in older rows) leaves the older records' text, and every hash over it, unchanged."""
    return json.dumps({name: row[name] for name in HASHED if row.get(name) is not None},
                      ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def entry(row: dict) -> bytes:
    """The verdict's entry in the transparency log: the exact bytes its leaf hash covers."""
    return canonical(row).encode("utf-8")


def row_hash(row: dict, prev_hash: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(row)}".encode()).hexdigest()


def last_hash(db) -> str:
    row = db.execute("select hash from verdicts order by id desc limit 1").fetchone()
    return row[0] if row and row[0] else GENESIS


@dataclass
class LogCheck:
    verdicts: int
    last_hash: str
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None

    def summary(self) -> str:
        if self.ok:
            return f"verdict log intact: {self.verdicts:,} verdicts, last hash {self.last_hash}"
        return f"verdict {self.first_bad_id}: {self.problem}"


def verify(db) -> LogCheck:
    """Walk the chain in id order; the first row whose link or content does not match."""
    cursor = db.execute("select * from verdicts order by id")
    names = [d[0] for d in cursor.description]
    expected_prev, count = GENESIS, 0
    for values in cursor:
        row = dict(zip(names, values))
        count += 1
        if row["prev_hash"] != expected_prev:
            return LogCheck(count, expected_prev, row["id"],
                            "its link to the verdict before it does not match: a verdict before "
                            "it was removed, reordered or changed")
        if row_hash(row, row["prev_hash"]) != row["hash"]:
            return LogCheck(count, expected_prev, row["id"],
                            "its content does not match its hash: the row was changed after it "
                            "was written")
        expected_prev = row["hash"]
    return LogCheck(count, expected_prev)
