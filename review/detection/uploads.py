"""Files people hand the dashboard: kept under the data folder by content, or held briefly.

A kept file is named by the sha256 of its bytes, so uploading the same tile or layer
twice stores it once, and a review weeks later can reopen it. It is written beside
its final name and moved into place, so a half-written file never sits where a
complete one is expected. Files only read once (boundaries, areas of interest) are
copied to a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import files, settings

DIGEST_CHARS = 16


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:DIGEST_CHARS]


def _plain_name(name: str) -> str:
    """The file name alone: whatever folders an upload claims to come from are dropped."""
    plain = Path(name.replace("\\", "/")).name
    return plain or "upload"


def _write_once(path: Path, content: bytes) -> Path:
    if not path.exists():
        files.write_bytes(path, content)
    return path


def save_scene(content: bytes, name: str) -> Path:
    """Keep an uploaded tile under data/scenes as <digest>_<name> (once per content)."""
    return _write_once(settings.data_dir() / "scenes" / f"{digest(content)}_{_plain_name(name)}",
                       content)


def known_names(kept: Path | None, name: str | None) -> dict[str, str]:
    """How to spell a kept upload in a message: its full path, then the file name it was
    kept under, each as the name it was uploaded with."""
    if kept is None or not name:
        return {}
    kept = Path(kept)
    return {str(kept): name, kept.name: name, kept.stem: Path(name).stem}


def save_import(content: bytes, name: str) -> Path:
    """Keep an uploaded detections layer under data/imports/<digest>/<name>: the file keeps
    its own name, which gives the default source name and can carry its period."""
    return _write_once(settings.data_dir() / "imports" / digest(content) / _plain_name(name), content)


def discard(db, path: Path) -> bool:
    """Delete a kept upload that was refused (nothing in the database refers to it): a tile
    no scene was registered from, a layer no import came from. True if it was deleted."""
    path = Path(path)
    root = settings.data_dir()
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False                       # only files this module kept
    names = [str(path), str(path.resolve())]
    if db.execute("select 1 from scenes where path in (?, ?)", names).fetchone() or \
            db.execute("select 1 from imports where path in (?, ?)", names).fetchone():
        return False
    path.unlink(missing_ok=True)
    if path.parent.parent == root / "imports":
        try:
            path.parent.rmdir()            # the digest folder, now empty
        except OSError:
            pass
    return True


@contextmanager
def temporary_copy(content: bytes, name: str) -> Iterator[Path]:
    """The bytes as a file of that name in a temporary folder, removed on leaving."""
    with tempfile.TemporaryDirectory(prefix="review-upload-") as folder:
        path = Path(folder) / _plain_name(name)
        path.write_bytes(content)
        yield path
