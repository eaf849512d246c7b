"""Imagery prepared in the background, ahead of the reviewer.

The Review page asks for the detection on screen and the next ones of that reviewer's
queue; one worker thread per process prepares them in that order (the one on screen
first), each with its own database connection, writing into the chip cache. Asking again
for a detection already waiting or being prepared changes nothing.
"""
from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from . import review_imagery, store
from .errors import ReviewError

_lock = threading.Condition()
_waiting: deque = deque()               # (db_path, detection dict)
_busy: set[int] = set()                 # ids waiting or being prepared
_worker: threading.Thread | None = None
_done_events: dict[int, threading.Event] = {}


def want(db_path: str | Path, detections: list[dict], first: bool = False) -> None:
    """Prepare these detections' imagery in the background (`first`: before anything
    else already waiting)."""
    global _worker
    with _lock:
        fresh = [d for d in detections if d["id"] not in _busy]
        for detection in (reversed(fresh) if first else fresh):
            _busy.add(detection["id"])
            _done_events.setdefault(detection["id"], threading.Event())
            item = (str(db_path), detection)
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
    connections: dict[str, object] = {}
    while True:
        with _lock:
            while not _waiting:
                _lock.wait()
            db_path, detection = _waiting.popleft()
        try:
            db = connections.get(db_path)
            if db is None:
                db = connections[db_path] = store.connect(db_path)
            review_imagery.prepare(db, detection)
        except (ReviewError, OSError):
            pass        # prepare notes a source's failure itself; the page says so
        finally:
            with _lock:
                _busy.discard(detection["id"])
                event = _done_events.pop(detection["id"], None)
            if event is not None:
                event.set()
