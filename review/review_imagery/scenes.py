"""Imagery people already have, registered as stored scenes.

A GeoTIFF (one's own composite, a partner's image) becomes a scene like the tiles the
product fetched or scored: Review shows it as before/after imagery, training cuts chips
from it, rescoring scores pending detections on it. A scene needs a period (from the
file's tags or given), so it can be placed before or after a detection.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ReviewError
from ..store import add_scene, transaction


class SceneError(ReviewError):
    """A scene cannot be added or removed."""


def add(db, path: str | Path, period: tuple[str | None, str | None] | None = None,
        bands: str | None = None) -> dict:
    """Register a GeoTIFF; returns its scenes row. Adding the same file again adds nothing."""
    from ..detection.imagery import open_tile
    from ..detection.runs import scene_record

    tile = open_tile(path, bands=bands, period=period)
    if not (tile.period_start and tile.period_end):
        raise SceneError(f"{Path(path).name}: its period is not known (the file has no period "
                         "tags); give the start and end dates of the imagery")
    if tile.period_start > tile.period_end:
        raise SceneError(f"{Path(path).name}: the period starts ({tile.period_start}) after it "
                         f"ends ({tile.period_end})")
    if all(name in (None, "-") for name in tile.band_names):
        raise SceneError(f"{Path(path).name}: its {len(tile.band_names)} bands have no names; "
                         "name them in file order, '-' for one to ignore")
    record = scene_record(tile)
    before = db["scenes"].count
    scene_id = add_scene(db, record)
    row = db["scenes"].get(scene_id)
    return {**row, "added": db["scenes"].count > before, "note": tile.rescaled_note}


def listing(db) -> list[dict]:
    """Every stored scene, oldest period first, with whether its file is still there."""
    rows = db.execute("select * from scenes order by coalesce(period_start, period_end), id")
    names = [d[0] for d in rows.description]
    return [{**dict(zip(names, r)), "present": Path(r[names.index("path")]).is_file()}
            for r in rows.fetchall()]


def remove(db, scene_id: int) -> dict:
    """Forget a scene (the file stays where it is). Scenes that runs were made on are kept:
    their detections refer to them."""
    with transaction(db):
        row = db.execute("select name from scenes where id = ?", [scene_id]).fetchone()
        if row is None:
            raise SceneError(f"there is no scene {scene_id}")
        runs = db.execute("select count(*) from runs where scene_id = ?", [scene_id]).fetchone()[0]
        found = db.execute("select count(*) from detections where scene_id = ?",
                           [scene_id]).fetchone()[0]
        if runs or found:
            raise SceneError(f"scene {scene_id} ({row[0]}) is the tile of {runs} detection runs "
                             f"and {found} detections; it is kept")
        db.execute("delete from scenes where id = ?", [scene_id])
    return {"id": scene_id, "name": row[0]}
