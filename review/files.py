"""Files written whole or not at all.

Every writer of the product (uploads, the chip cache, candidates, exports, fetched tiles,
backups, keys, photos, trained models) writes a temporary file in the destination's own
folder, flushes it to disk, and only then renames it over the destination: a crash, a full
disk or a failed step leaves the old file (or none), never half of one. Temporary names
are unique (process, random part), so two writers of the same file never clash; the last
rename wins whole.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temporary_path(path: Path) -> Path:
    """A unique temporary name beside `path` that keeps its suffix (GDAL and NumPy choose
    the format by it): `.NAME.PID-RANDOM.part.SUFFIX`."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part{path.suffix}")


def fsync_file(path: Path) -> None:
    """Flush a written file's content to disk (what a rename needs to be durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # The rename itself reaches the disk with the folder's entry; not every system allows it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(temporary: Path, path: Path) -> Path:
    """Flush `temporary` and rename it over `path`; returns `path`."""
    fsync_file(temporary)
    os.replace(temporary, path)
    _fsync_folder(Path(path).parent)
    return Path(path)


@contextmanager
def replacing(path: Path, make_folder: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; when the block succeeds it replaces `path`, when it
    fails the temporary file is removed and `path` is untouched."""
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        yield temporary
        commit(temporary, path)
    except OSError as exc:
        _name_the_target(exc, temporary, path)
        raise
    finally:
        temporary.unlink(missing_ok=True)


def _name_the_target(exc: OSError, temporary: Path, path: Path) -> None:
    # An error about the hidden temporary file is told about the file the user named.
    if exc.filename == str(temporary):
        exc.filename = str(path)


def write_bytes(path: Path, data: bytes, make_folder: bool = True) -> Path:
    """Write `data` to `path` whole or not at all."""
    with replacing(path, make_folder=make_folder) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str, make_folder: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` whole or not at all."""
    return write_bytes(path, text.encode("utf-8"), make_folder=make_folder)


def write_once(path: Path, data: bytes, mode: int | None = None) -> bool:
    """Create `path` with `data` (and permission bits `mode`) unless it exists; of two
    writers racing, the first wins whole and the other's data is dropped. True when this
    call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        # Created with its mode: a key is never readable by others, not even for a moment.
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)          # fails if the name exists: no overwrite
        except FileExistsError:
            return False
        except OSError:
            # A filesystem without hard links (FAT, some network shares): a rename, only
            # when the name is still free; the race this leaves is as narrow as it gets.
            if path.exists():
                return False
            os.replace(temporary, path)
        _fsync_folder(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


class Staged:
    """Several files that take their names together, after a step that must succeed first
    (e.g. the database write of a run): `stage` writes each beside its target, `commit`
    renames them all; leaving the `staged()` block without committing removes them."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def stage(self, path: Path, data: bytes | str) -> Path:
        path = Path(path)
        temporary = temporary_path(path)
        self._pending.append((temporary, path))
        try:
            temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as exc:
            _name_the_target(exc, temporary, path)
            raise
        return temporary

    def commit(self) -> None:
        for temporary, path in self._pending:
            commit(temporary, path)
        self._pending = []

    def discard(self) -> None:
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending = []


@contextmanager
def staged() -> Iterator[Staged]:
    files = Staged()
    try:
        yield files
    finally:
        files.discard()
