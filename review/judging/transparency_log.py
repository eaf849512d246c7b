"""The verdict log as a transparency log: a Merkle tree over every verdict (RFC 9162) and
signed checkpoints of it (C2SP), so a published checkpoint pins the log from outside.

Entry i is the i-th verdict in id order, as `verdict_log.entry` writes it; its leaf is
recomputed from the row's content every time, never read from a stored hash. The log's
Ed25519 key lives in data/log_key (REVIEW_LOG_KEY for another path), created 0600 on first
use; its name, the log's origin, is the project setting `log_origin`, unique to the database.
A checkpoint signs (origin, tree size, root); anyone holding the verifier key can check it,
and that the log's first N entries still have that root, which no rewrite of the file, even
one re-signed with the same key, can keep once the checkpoint is published.
"""
from __future__ import annotations

import base64
import functools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .. import files, settings, verdict_log
from ..errors import ReviewError
from ..store import has_table, now, transaction
from . import merkle, project_settings, signed_note
from .signed_note import Checkpoint, NoteError, Verifier


class LogError(ReviewError):
    """The verdict log does not match a checkpoint, or a checkpoint cannot be made or read."""


def key_path() -> Path:
    return Path(os.environ.get("REVIEW_LOG_KEY") or settings.data_dir() / "log_key")


def private_key(create: bool = True) -> Ed25519PrivateKey | None:
    """The log's signing key; made (0600, never readable by others) on first use."""
    path = key_path()
    if not path.exists():
        if not create:
            return None
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        files.write_once(path, base64.b64encode(seed) + b"\n", mode=0o600)
    try:
        seed = base64.b64decode(path.read_bytes().strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (OSError, ValueError) as exc:
        raise LogError(f"{path}: not a usable log key ({exc.__class__.__name__}); move it away "
                       "to make a new one, but checkpoints signed with it will then need the old "
                       "verifier key") from None


def origin(db) -> str:
    """The log's name; the first call stores one unique to this database."""
    name = project_settings.get(db, "log_origin")
    if name:
        return name
    with transaction(db):
        name = project_settings.get(db, "log_origin")
        if not name:
            name = f"mining-review.invalid/log/{uuid.uuid4().hex[:16]}"
            project_settings.write(db, "log_origin", name, "review")
    return name


def set_origin(db, name: str, by: str | None = None) -> None:
    """Rename the log; refused once a checkpoint carries the old name."""
    project_settings.check("log_origin", name)
    with transaction(db):
        if db.execute("select count(*) from log_checkpoints").fetchone()[0]:
            raise LogError("the log already has checkpoints under its name "
                           f"{project_settings.get(db, 'log_origin')}; it cannot be renamed")
        project_settings.write(db, "log_origin", name, by)


def verifier(db, create: bool = True) -> Verifier | None:
    """The log's verifier key; without `create`, None while it has no key or no name yet."""
    if not create and not project_settings.get(db, "log_origin"):
        return None
    key = private_key(create)
    return None if key is None else signed_note.verifier_of(key, origin(db))


def entries(db) -> list[bytes]:
    """Every verdict's entry, in id order: the log's leaves."""
    cursor = db.execute("select * from verdicts order by id")
    names = [d[0] for d in cursor.description]
    return [verdict_log.entry(dict(zip(names, values))) for values in cursor]


def tree(db) -> tuple[merkle.Tree, list[int]]:
    """The log's tree and the verdict id of each leaf."""
    ids = [row[0] for row in db.execute("select id from verdicts order by id")]
    return merkle.Tree.of_entries(entries(db)), ids


@dataclass(frozen=True)
class Kept:
    """A checkpoint the database keeps: when it was made, by whom, and its signed note."""

    id: int
    created_at: str
    created_by: str | None
    checkpoint: Checkpoint
    note: str
    key: str

    def label(self) -> str:
        return f"checkpoint of {self.created_at[:16].replace('T', ' ')}"


def checkpoint(db, by: str | None = None) -> Kept:
    """Sign the log as it stands and keep the checkpoint."""
    return snapshot(db, by).kept


@dataclass(frozen=True)
class Snapshot:
    """A checkpoint made now, with the tree it signs: what an export proves its verdicts by."""

    kept: Kept
    tree: merkle.Tree
    ids: list[int]
    entries: list[bytes]

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    def proof(self, verdict_id: int) -> dict:
        """A verdict's place in the log: index, exact entry text and RFC 9162 audit path."""
        index = self.index[verdict_id]
        return {"log_index": index, "log_entry": self.entries[index].decode("utf-8"),
                "inclusion_proof": [base64.b64encode(h).decode()
                                    for h in self.tree.inclusion_proof(index)]}

    @functools.cached_property
    def index(self) -> dict[int, int]:
        return {verdict_id: i for i, verdict_id in enumerate(self.ids)}


def snapshot(db, by: str | None = None) -> Snapshot:
    """Sign the log as it stands, keep the checkpoint, and return it with its tree. The
    tree is read inside the write lock, so no verdict lands between counting and signing."""
    key, name = private_key(), origin(db)
    with transaction(db):
        cursor = db.execute("select * from verdicts order by id")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values)) for values in cursor]
        leaves = [verdict_log.entry(row) for row in rows]
        log = merkle.Tree.of_entries(leaves)
        point = Checkpoint(name, log.size, log.root())
        note = signed_note.sign(point.text(), key, name)
        created = now()
        verifier_text = signed_note.verifier_of(key, name).text()
        row_id = db["log_checkpoints"].insert({
            "origin": name, "tree_size": point.size, "root_hash": base64.b64encode(point.root).decode(),
            "note": note, "verifier_key": verifier_text, "created_at": created,
            "created_by": by}).last_pk
    return Snapshot(Kept(row_id, created, by, point, note, verifier_text), log,
                    [row["id"] for row in rows], leaves)


def kept(db) -> list[Kept]:
    if not has_table(db, "log_checkpoints"):
        return []
    rows = db.execute("select id, created_at, created_by, origin, tree_size, root_hash, note, "
                      "verifier_key from log_checkpoints order by id").fetchall()
    return [Kept(r[0], r[1], r[2], Checkpoint(r[3], r[4], base64.b64decode(r[5])), r[6], r[7])
            for r in rows]


def latest(db) -> Kept | None:
    found = kept(db)
    return found[-1] if found else None


def read_checkpoint(note: str, key: Verifier) -> Checkpoint:
    """The checkpoint of a signed note, once its signature by `key` holds."""
    try:
        return signed_note.parse_checkpoint(signed_note.open_note(note, key))
    except NoteError as exc:
        raise LogError(f"the checkpoint's signature: {exc}") from None


def check(db, notes: list[tuple[str, str]], key: Verifier | None = None) -> list[str]:
    """Check each (label, signed note) against the log as its rows are now; returns one line
    per checkpoint that holds, raises LogError with one line for the first that does not.
    Without `key`, the log's own key (data/log_key) verifies."""
    key = key or verifier(db, create=False)
    if key is None:
        raise LogError(f"no log key at {key_path()} to check signatures with; give the "
                       "published one with --key")
    this_origin = project_settings.get(db, "log_origin") or "(none yet: it made no checkpoint)"
    log, _ = tree(db)
    held = []
    for label, note in notes:
        try:
            claimed = signed_note.parse_checkpoint(signed_note.split(note)[0])
        except NoteError as exc:
            raise LogError(f"{label}: {exc}") from None
        if claimed.origin != this_origin:
            raise LogError(f"{label} is another log's (origin {claimed.origin}); this log is {this_origin}")
        point = read_checkpoint(note, key)
        if point.size > log.size:
            raise LogError(f"the log has {log.size:,} verdicts; {label} covers {point.size:,}: "
                           "verdicts it covered were removed")
        if log.root(point.size) != point.root:
            raise LogError(f"the log's first {point.size:,} verdicts do not have the root hash of "
                           f"{label}: a verdict among them was changed, removed or reordered")
        held.append(f"{label}: the log's first {point.size:,} of {log.size:,} verdicts match")
    return held
