"""Prepared before/after chips on disk, so the Review page shows imagery without waiting.

One folder per review database, in it one per detection, in it one per prepared set,
named by the source and a key of the place (database, detection, footprint), the source
and the dates of both views; a set is read back only for the place it shows. A set is
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
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .. import files, settings
from ..store import identity
from ..judging.verdicts import Imagery
from .chips import VIEWS, Chip, dehaze, haze

SOURCES = ("scenes", "sentinel-2", "wayback")      # best first
SOURCE_NAMES = {"scenes": "stored scenes", "sentinel-2": "Sentinel-2 composites",
                "wayback": "Esri World Imagery Wayback"}
RETRY_SECONDS = 3600
HAZY = 0.25              # a chip whose dark channel averages above this is offered dehazed
JPEG_QUALITY = 90


def root() -> Path:
    """The cache folder of every database (REVIEW_CHIP_CACHE, else chips/ in the data folder)."""
    return Path(os.environ.get("REVIEW_CHIP_CACHE") or settings.data_dir() / "chips")


def key(place: str, source: str, dates: tuple) -> str:
    text = json.dumps([place, source, list(dates)])
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
    place: str | None = None          # the place (database, detection, footprint) it shows


def _save_jpeg(image: Image.Image, path: Path) -> None:
    with files.replacing(path, make_folder=False) as partial:     # a set removed meanwhile stays removed
        image.save(partial, format="JPEG", quality=JPEG_QUALITY)


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
                    tuple(after.files), meta.get("place"))


@dataclass(frozen=True)
class Cache:
    """The prepared chips of one review database: a folder of its own (detection ids start
    at 1 in every database), and every set and failure note stamped with the place it
    shows (the database, the detection's id and footprint). A set is returned only for the
    place it was made for: a restored backup whose detection #7 is another footprint, or
    another database's #7, never gets those chips."""

    folder: Path
    database: str

    def place(self, detection: dict) -> str:
        text = json.dumps([self.database, int(detection["id"]), detection["geometry"]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _folder(self, detection: dict) -> Path:
        return self.folder / str(int(detection["id"]))

    def store(self, detection: dict, source: str, before: Chip | None, after: Chip,
              note: str | None = None) -> Prepared:
        """Write a prepared set (after, and before when there is one) and return it."""
        place = self.place(detection)
        dates = tuple((c.imagery.start, c.imagery.end) if c else None for c in (before, after))
        final = self._folder(detection) / f"{source}-{key(place, source, dates)}"
        if not final.exists():
            temporary = final.parent / f".tmp-{uuid.uuid4().hex}"
            temporary.mkdir(parents=True)
            meta = {"detection_id": detection["id"], "place": place, "source": source,
                    "note": note, "prepared_at": time.time()}
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
        (self._folder(detection) / f"failed-{source}.json").unlink(missing_ok=True)
        return _read(final)

    def lookup(self, detection: dict, sources: tuple[str, ...] = SOURCES) -> Prepared | None:
        """The best prepared set of this detection at this place (by source rank), or None."""
        folder = self._folder(detection)
        try:
            names = os.listdir(folder)
        except OSError:
            return None
        place = self.place(detection)
        for source in sources:
            for name in sorted(names):
                if name.startswith(source + "-") and len(name) == len(source) + 17:
                    prepared = _read(folder / name)
                    if prepared is not None and prepared.place == place:
                        return prepared
        return None

    def record_failure(self, detection: dict, source: str, reason: str) -> None:
        """Remember why a source gave nothing for this detection (tried again later)."""
        attempts = self.failure(detection, source) or {}
        files.write_text(self._folder(detection) / f"failed-{source}.json",
                         json.dumps({"reason": reason, "at": time.time(), "place": self.place(detection),
                                     "attempts": int(attempts.get("attempts", 0)) + 1}))

    def failure(self, detection: dict, source: str) -> dict | None:
        """{reason, at, attempts} of the last failure of a source here, or None."""
        try:
            note = json.loads((self._folder(detection) / f"failed-{source}.json").read_text())
        except (OSError, ValueError):
            return None
        return note if note.get("place") == self.place(detection) else None

    def failures(self, detection: dict) -> dict[str, dict]:
        found = {}
        for source in SOURCES:
            note = self.failure(detection, source)
            if note:
                found[source] = note
        return found

    def due(self, detection: dict, source: str, retry_seconds: float = RETRY_SECONDS) -> bool:
        """Whether a source is worth trying now: it failed never, or long enough ago."""
        note = self.failure(detection, source)
        return note is None or time.time() - note["at"] >= retry_seconds


def cache_for(db) -> Cache:
    """The chip cache of this review database."""
    database = identity(db)
    return Cache(root() / database[:16], database)
