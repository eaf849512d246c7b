"""Project settings kept in the review database, so every reviewer's process sees the same.

Environment settings (review/settings.py) say where files live on one machine; these say
how the team works, e.g. whether a verified detection needs a second reviewer.
"""
from __future__ import annotations

from ..errors import ReviewError
from ..store import now

SETTINGS = {
    # off: one verdict decides. verified: a 'verified' needs a second reviewer to agree.
    # all: a 'false_positive' needs the second look too.
    "second_opinion": ("off", "verified", "all"),
    # The verdict log's name in its signed checkpoints (review.judging.transparency_log): any
    # text without spaces or '+'; made unique to the database on first use.
    "log_origin": None,
}
DEFAULTS = {"second_opinion": "off", "log_origin": ""}


class SettingError(ReviewError):
    """An unknown setting or value."""


def check(key: str, value: str | None = None) -> None:
    if key not in SETTINGS:
        raise SettingError(f"unknown setting {key!r}: the settings are {', '.join(SETTINGS)}")
    allowed = SETTINGS[key]
    if value is None:
        return
    if allowed is None:
        if not value or any(c.isspace() or c == "+" for c in value):
            raise SettingError(f"{key} needs at least one character, no spaces and no '+'")
    elif value not in allowed:
        raise SettingError(f"{key} can be {', '.join(allowed)}, not {value!r}")


def get(db, key: str) -> str:
    check(key)
    row = db.execute("select value from project_settings where key = ?", [key]).fetchone()
    return row[0] if row else DEFAULTS[key]


def all_values(db) -> dict[str, str]:
    return {key: get(db, key) for key in SETTINGS}


def write(db, key: str, value: str, by: str | None = None) -> None:
    """Store a value; call inside the caller's transaction."""
    check(key, value)
    db.execute("insert into project_settings (key, value, updated_at, updated_by) values (?, ?, ?, ?) "
               "on conflict(key) do update set value = excluded.value, "
               "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
               [key, value, now(), by])
