"""The one shape of progress report every long operation gives.

`progress(done, total, what)`: `done` units of `total` (None when the total is not known,
e.g. a download without a Content-Length), `what` naming the unit just finished ("" when
there is nothing to say). The CLI turns it into a tqdm bar, the dashboard into st.progress.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[int, "int | None", str], None]


def silent(done: int, total: int | None, what: str) -> None:
    """A progress callback that reports nothing."""


def fraction(done: int, total: int | None) -> float:
    """done/total clipped to [0, 1] (0 when the total is unknown)."""
    return min(max(done / total, 0.0), 1.0) if total else 0.0
