"""Imagery prepared in the background, ahead of the reviewer.

The Review page asks for the detection on screen and the next ones of that reviewer's
queue; one worker thread per process prepares them in that order (the one on screen
first) from the sources that fetch (Sentinel-2, Wayback), writing into the chip cache;
stored scenes are local and rendered by the page itself. The worker needs no database.
Asking again for a detection already waiting or being prepared changes nothing.
"""
from __future__ import annotations

import threading
from collections import deque

from .. import settings
from ..detection.fetch import Source
from ..errors import ReviewError
from . import chip_cache, preparation

_lock = threading.Condition()
_waiting: deque = deque()               # (settings of the asker, detection dict)
_busy: set[int] = set()                 # ids waiting or being prepared
_worker: threading.Thread | None = None
_done_events: dict[int, threading.Event] = {}


def want(detections: list[dict], cache: chip_cache.Cache, first: bool = False) -> None:
    """Prepare these detections' imagery into their database's chip cache in the
    background (`first`: before anything else already waiting)."""
    global _worker
    # The settings in force where the page runs (cache, catalogue, Wayback), so the worker
    # prepares what that page will look for.
    context = (cache, Source(timeout=preparation.TIMEOUT_S),
               settings.wayback_config_url(),
               tuple(s for s in preparation.chip_sources() if s != "scenes"))
    with _lock:
        fresh = [d for d in detections if d["id"] not in _busy]
        for detection in (reversed(fresh) if first else fresh):
            _busy.add(detection["id"])
            _done_events.setdefault(detection["id"], threading.Event())
            item = (context, detection)
            _waiting.appendleft(item) if first else _waiting.append(item)
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_run, name="imagery-lookahead", daemon=True)
            _worker.start()
        _lock.notify()


def pending(detection_id: int) -> bool:
    with _lock:
        return detection_id in _busy


def wait(detection_id: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a detection being prepared; True when done."""
    with _lock:
        event = _done_events.get(detection_id)
    return True if event is None else event.wait(timeout)


def _run() -> None:
    while True:
        with _lock:
            while not _waiting:
                _lock.wait()
            (cache, source, wayback_url, remote), detection = _waiting.popleft()
        try:
            if remote:
                preparation.prepare(None, detection, source=source, sources=remote,
                                    wayback_url=wayback_url, cache=cache)
        except (ReviewError, OSError):
            pass        # prepare notes a source's failure itself; the page says so
        finally:
            with _lock:
                _busy.discard(detection["id"])
                event = _done_events.pop(detection["id"], None)
            if event is not None:
                event.set()


def on_screen(db, detection: dict) -> tuple[chip_cache.Prepared | None, str | None]:
    """The prepared chips of the place on screen and, if stored imagery failed, why: stored
    scenes (local, quick) are rendered at once, anything fetched is asked of the worker."""
    cache = chip_cache.cache_for(db)
    prepared, error = cache.lookup(detection), None
    if prepared is None and "scenes" in preparation.chip_sources():
        try:
            prepared = preparation.prepare(db, detection, sources=("scenes",), cache=cache)
        except ReviewError as exc:
            error = f"Stored imagery could not be shown: {exc}"
    if prepared is None or prepared.source != "scenes":
        remote = tuple(s for s in preparation.chip_sources() if s != "scenes")
        if prepared is None and any(cache.due(detection, s) for s in remote):
            want([detection], cache, first=True)
    return prepared, error


def ahead(places: list[dict], cache: chip_cache.Cache) -> None:
    """Ask the worker for the places coming next that have no prepared chips yet and a
    source worth trying now (what the reviewer will see after the one on screen)."""
    wanted = [p for p in places if cache.lookup(p) is None
              and any(cache.due(p, s) for s in preparation.chip_sources())]
    if wanted:
        want(wanted, cache)
