"""Prepared before/after chips on disk, so the Review page shows imagery without waiting.

One folder per detection; in it one folder per prepared set, named by the source and a
key of the detection's footprint, the source and the dates of both views. A set is
written in a temporary folder and renamed into place, so the cache never holds a
half-written set, and two preparers (the dashboard's look-ahead and a `prepare-imagery`
run) can race without harm. A source that failed leaves a small JSON note with its
reason; it is tried again after RETRY_SECONDS, and never blocks the page meanwhile.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .. import files, settings
from ..judging.verdicts import Imagery
from .chips import VIEWS, Chip, dehaze, haze

SOURCES = ("scenes", "sentinel-2", "wayback")      # best first
SOURCE_NAMES = {"scenes": "stored scenes", "sentinel-2": "Sentinel-2 composites",
                "wayback": "Esri World Imagery Wayback"}
RETRY_SECONDS = 3600
HAZY = 0.25              # a chip whose dark channel averages above this is offered dehazed
JPEG_QUALITY = 90


_thread = threading.local()


def root() -> Path:
    """The cache folder (REVIEW_CHIP_CACHE, else chips/ in the data folder); a background
    worker uses the folder of the session that asked it (see `using`)."""
    override = getattr(_thread, "root", None)
    if override is not None:
        return override
    return Path(os.environ.get("REVIEW_CHIP_CACHE") or settings.data_dir() / "chips")


@contextmanager
def using(folder: Path):
    """Within this block, on this thread, the cache is `folder`."""
    previous = getattr(_thread, "root", None)
    _thread.root = Path(folder)
    try:
        yield
    finally:
        _thread.root = previous


def key(detection: dict, source: str, dates: tuple) -> str:
    text = json.dumps([detection["id"], detection["geometry"], source, list(dates)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Side:
    """One prepared view (before or after): its files per rendering, and what it shows."""

    imagery: Imagery
    files: dict[str, Path]          # "true", "false" (and "true_dehazed" ... once made)
    hazy: bool = False

    def path(self, view: str = "true", dehazed: bool = False) -> Path:
        """The file of a rendering; dehazed ones are made on first use (atomically)."""
        view = view if view in self.files else "true"
        if not dehazed:
            return self.files[view]
        target = self.files[view].with_name(f"{self.files[view].stem}_dehazed.jpg")
        if not target.exists():
            _save_jpeg(dehaze(Image.open(self.files[view]).convert("RGB")), target)
        return target

    def shown(self, view: str = "true", dehazed: bool = False) -> Imagery:
        """What a verdict records when this rendering was on screen."""
        view = view if view in self.files else "true"
        how = VIEWS[view] + (", haze removed" if dehazed else "")
        return Imagery(source=f"{self.imagery.source} ({how})", start=self.imagery.start,
                       end=self.imagery.end)


@dataclass
class Prepared:
    detection_id: int
    source: str
    before: Side | None
    after: Side
    note: str | None = None           # e.g. why there is no before view
    views: tuple[str, ...] = field(default=("true",))


def _folder(detection_id: int) -> Path:
    return root() / str(int(detection_id))


def _save_jpeg(image: Image.Image, path: Path) -> None:
    with files.replacing(path, make_folder=False) as partial:     # a set removed meanwhile stays removed
        image.save(partial, format="JPEG", quality=JPEG_QUALITY)


def store(detection: dict, source: str, before: Chip | None, after: Chip,
          note: str | None = None) -> Prepared:
    """Write a prepared set (after, and before when there is one) and return it."""
    dates = tuple((c.imagery.start, c.imagery.end) if c else None for c in (before, after))
    final = _folder(detection["id"]) / f"{source}-{key(detection, source, dates)}"
    if not final.exists():
        temporary = final.parent / f".tmp-{uuid.uuid4().hex}"
        temporary.mkdir(parents=True)
        meta = {"detection_id": detection["id"], "source": source, "note": note,
                "prepared_at": time.time()}
        for side, chip in (("before", before), ("after", after)):
            if chip is None:
                continue
            views = chip.views or {"true": chip.image}
            for view, image in views.items():
                # the folder's rename below publishes the set whole
                image.save(temporary / f"{side}_{view}.jpg", format="JPEG", quality=JPEG_QUALITY)
            meta[side] = {"source": chip.imagery.source, "start": chip.imagery.start,
                          "end": chip.imagery.end, "views": list(views),
                          "hazy": haze(views["true"]) > HAZY}
        (temporary / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(temporary, final)
        except OSError:                 # someone else prepared the same set meanwhile
            shutil.rmtree(temporary, ignore_errors=True)
    failure = _folder(detection["id"]) / f"failed-{source}.json"
    failure.unlink(missing_ok=True)
    return _read(final)


def _read(folder: Path) -> Prepared | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None

    def side(name: str) -> Side | None:
        if name not in meta:
            return None
        m = meta[name]
        return Side(Imagery(m["source"], m["start"], m["end"]),
                    {v: folder / f"{name}_{v}.jpg" for v in m["views"]}, bool(m.get("hazy")))

    after = side("after")
    if after is None:
        return None
    return Prepared(meta["detection_id"], meta["source"], side("before"), after, meta.get("note"),
                    tuple(after.files))


def lookup(detection_id: int, sources: tuple[str, ...] = SOURCES) -> Prepared | None:
    """The best prepared set of a detection (by source rank), or None."""
    folder = _folder(detection_id)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for source in sources:
        for name in sorted(names):
            if name.startswith(source + "-") and len(name) == len(source) + 17:
                prepared = _read(folder / name)
                if prepared is not None:
                    return prepared
    return None


def record_failure(detection_id: int, source: str, reason: str) -> None:
    """Remember why a source gave nothing for this detection (tried again later)."""
    path = _folder(detection_id) / f"failed-{source}.json"
    attempts = failure(detection_id, source) or {}
    files.write_text(path, json.dumps({"reason": reason, "at": time.time(),
                                       "attempts": int(attempts.get("attempts", 0)) + 1}))


def failure(detection_id: int, source: str) -> dict | None:
    """{reason, at, attempts} of the last failure of a source, or None."""
    try:
        return json.loads((_folder(detection_id) / f"failed-{source}.json").read_text())
    except (OSError, ValueError):
        return None


def failures(detection_id: int) -> dict[str, dict]:
    found = {}
    for source in SOURCES:
        note = failure(detection_id, source)
        if note:
            found[source] = note
    return found


def due(detection_id: int, source: str, retry_seconds: float = RETRY_SECONDS) -> bool:
    """Whether a source is worth trying now: it failed never, or long enough ago."""
    note = failure(detection_id, source)
    return note is None or time.time() - note["at"] >= retry_seconds
