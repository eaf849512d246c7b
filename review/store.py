"""The review database: one SQLite file, through sqlite-utils.

WAL mode and a busy timeout let a detection run, the dashboard and several reviewers
share the file. The schema is versioned with PRAGMA user_version; each migration runs
once, in order, inside a transaction.
"""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import sqlite_utils

from . import files
from .errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _v1(db: sqlite_utils.Database) -> None:
    db["scenes"].create({
        "id": int, "path": str, "name": str, "sha256": str, "crs": str,
        "west": float, "south": float, "east": float, "north": float,
        "width": int, "height": int, "bands": str, "product": str,
        "period_start": str, "period_end": str, "added_at": str,
    }, pk="id", not_null={"path", "name"})
    db["runs"].create({
        "id": int, "scene_id": int, "model_id": str, "model_sha256": str,
        "t_raw": float, "t_main": float, "t_iso": float, "device": str,
        "patches": int, "candidates": int, "seconds": float, "started_at": str,
        "finished_at": str, "software": str, "notes": str,
    }, pk="id", foreign_keys=[("scene_id", "scenes", "id")])
    db["detections"].create({
        "id": int, "source": str, "external_id": str, "run_id": int, "scene_id": int,
        "geometry": str, "lon": float, "lat": float,
        "west": float, "south": float, "east": float, "north": float,
        "score": float, "area_ha": float, "area_source": str,
        "period_start": str, "period_end": str, "model_id": str, "threshold": float,
        "properties": str, "added_at": str,
    }, pk="id", not_null={"source", "geometry", "external_id"},
        foreign_keys=[("run_id", "runs", "id"), ("scene_id", "scenes", "id")])
    db["detections"].create_index(["source", "external_id"], unique=True)
    db["detections"].create_index(["score"])
    db["verdicts"].create({
        "id": int, "detection_id": int, "reviewer": str, "verdict": str, "reason": str,
        "note": str, "before_source": str, "before_start": str, "before_end": str,
        "after_source": str, "after_start": str, "after_end": str,
        "model_id": str, "threshold": float, "created_at": str,
    }, pk="id", not_null={"detection_id", "reviewer", "verdict", "created_at"},
        foreign_keys=[("detection_id", "detections", "id")])
    db["verdicts"].create_index(["detection_id"])


def _v2(db: sqlite_utils.Database) -> None:
    # Status is derived from the verdict history; it is cached here, rewritten in the
    # same transaction as every verdict, so the queue need not replay histories.
    db["detections"].add_column("status", str, not_null_default="pending")
    db["detections"].create_index(["status", "score"])
    db["detections"].create_index(["period_start"])
    # Who is looking at which detection right now; a lease, not a verdict.
    db["claims"].create({"detection_id": int, "reviewer": str, "claimed_at": float},
                        pk="detection_id")
    db["imports"].create({"id": int, "source": str, "path": str, "sha256": str,
                          "features": int, "added": int, "vintage": str, "imported_at": str},
                         pk="id")


def _v3(db: sqlite_utils.Database) -> None:
    # Random samples of a stratum, drawn once and kept, so precision and area estimates
    # can be computed from what people reviewed of them.
    db["samples"].create({"id": int, "name": str, "filters": str, "seed": int, "size": int,
                          "stratum_detections": int, "stratum_area_ha": float,
                          "created_at": str}, pk="id", not_null={"name"})
    db["sample_members"].create({"sample_id": int, "detection_id": int},
                                pk=("sample_id", "detection_id"),
                                foreign_keys=[("sample_id", "samples", "id"),
                                              ("detection_id", "detections", "id")])


def _v4(db: sqlite_utils.Database) -> None:
    # Region runs on a cluster: which tiles are done and every patch score, so a stopped
    # run resumes where it stopped and never stores a patch twice.
    db["region_runs"].create({"id": int, "key": str, "aoi": str, "period_start": str,
                              "period_end": str, "model_id": str, "model_sha256": str,
                              "tile_px": int, "tiles": int, "status": str, "run_id": int,
                              "started_at": str, "finished_at": str}, pk="id")
    db["region_runs"].create_index(["key"], unique=True)
    db["region_tiles"].create({"region_run_id": int, "tile": str, "status": str, "patches": int,
                               "device": str, "error": str, "finished_at": str},
                              pk=("region_run_id", "tile"))
    db["region_patches"].create({"region_run_id": int, "x": float, "y": float, "score": float,
                                 "tile": str}, pk=("region_run_id", "x", "y"))


def _v5(db: sqlite_utils.Database) -> None:
    # Neighbour look-ups on the Review page search a box around a detection's centre.
    db["detections"].create_index(["lon", "lat"])


def _v6(db: sqlite_utils.Database) -> None:
    # A tamper-evident verdict log: each row hashed with the previous row's hash (rows
    # already there are chained in id order), and triggers that refuse UPDATE and DELETE.
    # `via` says which way a verdict came in (dashboard, cli).
    from .verdict_log import GENESIS, row_hash

    for name in ("via", "prev_hash", "hash"):
        db["verdicts"].add_column(name, str)
    prev = GENESIS
    cursor = db.execute("select * from verdicts order by id")
    names = [d[0] for d in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        digest = row_hash(row, prev)
        db.execute("update verdicts set prev_hash = ?, hash = ? where id = ?", [prev, digest, row["id"]])
        prev = digest
    for action, advice in (("UPDATE", "changed; record a new verdict"),
                           ("DELETE", "deleted; record an undo")):
        db.execute(f"CREATE TRIGGER verdicts_append_only_{action.lower()} BEFORE {action} ON verdicts "
                   f"BEGIN SELECT RAISE(ABORT, 'verdicts are append-only: a verdict cannot be "
                   f"{advice}'); END")


def _v7(db: sqlite_utils.Database) -> None:
    # Accounts (none means the embedded single-user mode) and wrong-password counts.
    db["users"].create({"name": str, "role": str, "password_hash": str, "created_at": str,
                        "updated_at": str}, pk="name", not_null={"role", "password_hash"})
    db["sign_in_failures"].create({"name": str, "failures": int, "last_failure": float},
                                  pk="name")


def _v8(db: sqlite_utils.Database) -> None:
    # Sites through time (review/analysis/sites.py): detections grouped by place across periods.
    # Rebuilt whole by each build; ids stay stable and merges are kept in site_merges.
    db["site_builds"].create({"id": int, "built_at": str, "distance_m": float, "growth": float,
                              "by": str, "detections": int, "sites": int, "periodless": int,
                              "merged": int, "next_site_id": int, "seconds": float}, pk="id")
    db["sites"].create({"id": int, "lon": float, "lat": float, "west": float, "south": float,
                        "east": float, "north": float, "first_period": str, "last_period": str,
                        "periods_seen": int, "detections": int, "periodless": int,
                        "area_ha": float, "geometry": str, "build_id": int}, pk="id")
    db["site_members"].create({"detection_id": int, "site_id": int, "period": str},
                              pk="detection_id", foreign_keys=[("site_id", "sites", "id")])
    db["site_members"].create_index(["site_id", "period"])
    db["site_periods"].create({"site_id": int, "period": str, "area_ha": float,
                               "area_ha_cumulative": float, "state": str, "detections": int},
                              pk=("site_id", "period"), foreign_keys=[("site_id", "sites", "id")])
    db["site_periods"].create_index(["period", "state"])
    db["site_merges"].create({"id": int, "absorbed_id": int, "into_id": int, "merged_at": str,
                              "build_id": int}, pk="id")


def _v9(db: sqlite_utils.Database) -> None:
    # Field reports (text, reporter, date seen, position) and their photos, stored once by
    # sha256 with the GPS position and capture time read from each photo's EXIF. Written
    # with IF NOT EXISTS so it is harmless whichever position it runs at.
    db.execute("""CREATE TABLE IF NOT EXISTS field_reports (
        id INTEGER PRIMARY KEY, detection_id INTEGER REFERENCES detections(id),
        site_id INTEGER, lon REAL, lat REAL, position_from TEXT, distance_m REAL,
        text TEXT NOT NULL, reporter TEXT NOT NULL, seen TEXT, via TEXT, created_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX IF NOT EXISTS field_reports_detection ON field_reports(detection_id)")
    db.execute("CREATE INDEX IF NOT EXISTS field_reports_site ON field_reports(site_id)")
    db.execute("""CREATE TABLE IF NOT EXISTS photos (
        sha256 TEXT PRIMARY KEY, format TEXT NOT NULL, bytes INTEGER NOT NULL, width INTEGER,
        height INTEGER, taken_at TEXT, lon REAL, lat REAL, added_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE IF NOT EXISTS report_photos (
        report_id INTEGER NOT NULL REFERENCES field_reports(id),
        sha256 TEXT NOT NULL REFERENCES photos(sha256), position INTEGER NOT NULL,
        filename TEXT, PRIMARY KEY (report_id, sha256))""")


def _v10(db: sqlite_utils.Database) -> None:
    # Claims belong to a holder (a browser session or a CLI process), not to a name.
    db["claims"].add_column("holder", str)
    db.execute("update claims set holder = reviewer")
    db["claims"].create_index(["holder"])
    # Second opinions: an editor's final decision, and a verdict made on a detection that
    # someone else held ("review anyway").
    db["verdicts"].add_column("final", int)
    db["verdicts"].add_column("override", str)
    db["verdicts"].create_index(["reviewer"])
    db["project_settings"].create({"key": str, "value": str, "updated_at": str,
                                   "updated_by": str}, pk="key")


def _v11(db: sqlite_utils.Database) -> None:
    # Skips belong to a reviewer and expire (review.judging.queue.skip); kept across reloads.
    db.execute("CREATE TABLE IF NOT EXISTS skips (reviewer TEXT NOT NULL, detection_id INTEGER "
               "NOT NULL, skipped_at REAL NOT NULL, PRIMARY KEY (reviewer, detection_id))")


def _v12(db: sqlite_utils.Database) -> None:
    # Sources (imports) and detector runs left out of Trends, e.g. test runs. Written with
    # IF NOT EXISTS so it is harmless whichever position it runs at.
    db.execute("""CREATE TABLE IF NOT EXISTS trend_hidden (
        kind TEXT NOT NULL, key TEXT NOT NULL, hidden_at TEXT, hidden_by TEXT,
        PRIMARY KEY (kind, key))""")


def _v13(db: sqlite_utils.Database) -> None:
    # Scores of trained models (python -m review rescore), beside the source's own score,
    # which they never overwrite: one row per detection and model checkpoint. IF NOT
    # EXISTS so it is harmless whichever position it runs at.
    db.execute("""CREATE TABLE IF NOT EXISTS model_scores (
        detection_id INTEGER NOT NULL REFERENCES detections(id), model_sha256 TEXT NOT NULL,
        model_id TEXT NOT NULL, score REAL NOT NULL, threshold REAL, before_scene_id INTEGER,
        after_scene_id INTEGER, scored_at TEXT NOT NULL, PRIMARY KEY (detection_id, model_sha256))""")
    db.execute("CREATE INDEX IF NOT EXISTS model_scores_scored ON model_scores(scored_at)")


def _v14(db: sqlite_utils.Database) -> None:
    # Signed checkpoints of the verdict log (review.judging.transparency_log): the verdicts
    # already there are its first entries, in id order, so nothing else moves.
    db.execute("""CREATE TABLE IF NOT EXISTS log_checkpoints (
        id INTEGER PRIMARY KEY, origin TEXT NOT NULL, tree_size INTEGER NOT NULL,
        root_hash TEXT NOT NULL, note TEXT NOT NULL, verifier_key TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT)""")


def _v15(db: sqlite_utils.Database) -> None:
    # Sign-in sessions on the server (review.judging.users): a token names one, and signing
    # out ends it, so a copied cookie stops working everywhere.
    db.execute("""CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
        expires_at REAL NOT NULL, ended_at REAL)""")
    db.execute("CREATE INDEX IF NOT EXISTS sessions_name ON sessions(name)")


def _v16(db: sqlite_utils.Database) -> None:
    # Which database this is, so files kept beside it (prepared chips) are never taken for
    # another database's: detection ids start at 1 in every one.
    db.execute("CREATE TABLE IF NOT EXISTS identity (id TEXT NOT NULL, created_at TEXT NOT NULL)")
    if db.execute("select count(*) from identity").fetchone()[0] == 0:
        db.execute("insert into identity values (?, ?)", [uuid.uuid4().hex, now()])


def _v17(db: sqlite_utils.Database) -> None:
    # Area assessment (review.analysis.assessment): a design over a region, its strata and
    # the sample units drawn in them, in the order drawn. Units' labels are records of the
    # verdict log like verdicts (one chain, one Merkle tree), so the verdicts table is
    # rebuilt with `unit_id` and a detection_id that may be empty: a row is about exactly
    # one of the two. Every existing row is copied as it is (same ids, same hashes).
    db.execute("""CREATE TABLE IF NOT EXISTS assessments (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, region TEXT NOT NULL,
        period TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        sources TEXT, near_m REAL, seed INTEGER NOT NULL, sizing TEXT, utm_epsg INTEGER,
        created_at TEXT NOT NULL, created_by TEXT)""")
    db.execute("""CREATE TABLE IF NOT EXISTS assessment_strata (
        assessment_id INTEGER NOT NULL REFERENCES assessments(id), position INTEGER NOT NULL,
        name TEXT NOT NULL, area_ha REAL NOT NULL, n INTEGER NOT NULL, mapped INTEGER NOT NULL,
        detections INTEGER, geometry TEXT, PRIMARY KEY (assessment_id, name))""")
    db.execute("""CREATE TABLE IF NOT EXISTS assessment_units (
        id INTEGER PRIMARY KEY, assessment_id INTEGER NOT NULL REFERENCES assessments(id),
        stratum TEXT NOT NULL, position INTEGER NOT NULL, lon REAL NOT NULL, lat REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending')""")
    db.execute("CREATE INDEX IF NOT EXISTS assessment_units_order ON assessment_units"
               "(assessment_id, position, stratum)")
    db.execute("""CREATE TABLE IF NOT EXISTS unit_claims (
        unit_id INTEGER PRIMARY KEY, reviewer TEXT NOT NULL, holder TEXT NOT NULL,
        claimed_at REAL NOT NULL)""")
    columns = db.execute("PRAGMA table_info(verdicts)").fetchall()
    names = [c[1] for c in columns]
    if "unit_id" in names:
        return
    definitions = [f'"{name}" {kind}' + (" PRIMARY KEY" if pk else "")
                   + (" NOT NULL" if not_null and name != "detection_id" else "")
                   for _, name, kind, not_null, _, pk in columns]
    definitions += ['"unit_id" INTEGER REFERENCES assessment_units(id)',
                    "FOREIGN KEY (detection_id) REFERENCES detections(id)",
                    "CHECK ((detection_id IS NULL) != (unit_id IS NULL))"]
    db.execute(f"CREATE TABLE verdicts_v17 ({', '.join(definitions)})")
    listed = ", ".join(f'"{n}"' for n in names)
    db.execute(f"INSERT INTO verdicts_v17 ({listed}) SELECT {listed} FROM verdicts ORDER BY id")
    db.execute("DROP TABLE verdicts")          # its triggers and indexes go with it
    db.execute("ALTER TABLE verdicts_v17 RENAME TO verdicts")
    for index in ("detection_id", "reviewer", "unit_id"):
        db.execute(f"CREATE INDEX IF NOT EXISTS idx_verdicts_{index} ON verdicts({index})")
    for action, advice in (("UPDATE", "changed; record a new verdict"),
                           ("DELETE", "deleted; record an undo")):
        db.execute(f"CREATE TRIGGER verdicts_append_only_{action.lower()} BEFORE {action} ON verdicts "
                   f"BEGIN SELECT RAISE(ABORT, 'verdicts are append-only: a verdict cannot be "
                   f"{advice}'); END")


def _v18(db: sqlite_utils.Database) -> None:
    # A sample's members in the order drawn (an estimate rests on a prefix of that order),
    # kept as a number, not left to rowids that a VACUUM may renumber. Samples drawn before
    # were inserted in drawn order, so their rowid order is it.
    if "position" not in db["sample_members"].columns_dict:
        db["sample_members"].add_column("position", int)
    db.execute("update sample_members set position = (select count(*) from sample_members m "
               "where m.sample_id = sample_members.sample_id and m.rowid <= sample_members.rowid)")


def _v19(db: sqlite_utils.Database) -> None:
    # Context layers (review.analysis.context): polygons people add (territories, protected
    # areas, concessions), each feature with its field value, and which detections overlap
    # which value by how many hectares (EPSG:6933; features sharing a value count their
    # common ground once, so overlaps are kept per value, not per feature), computed for
    # detections up to `checked_through` and brought up to date for later ones when asked.
    db.execute("""CREATE TABLE IF NOT EXISTS context_layers (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, field TEXT, source_file TEXT,
        sha256 TEXT, source_crs TEXT, features INTEGER NOT NULL,
        checked_through INTEGER NOT NULL DEFAULT 0, added_at TEXT NOT NULL, added_by TEXT)""")
    db.execute("""CREATE TABLE IF NOT EXISTS context_features (
        id INTEGER PRIMARY KEY, layer_id INTEGER NOT NULL REFERENCES context_layers(id),
        value TEXT NOT NULL, geometry TEXT NOT NULL, west REAL, south REAL, east REAL, north REAL)""")
    db.execute("CREATE INDEX IF NOT EXISTS context_features_layer ON context_features(layer_id, value)")
    db.execute("""CREATE TABLE IF NOT EXISTS context_overlaps (
        layer_id INTEGER NOT NULL REFERENCES context_layers(id), value TEXT NOT NULL,
        detection_id INTEGER NOT NULL, overlap_ha REAL NOT NULL,
        PRIMARY KEY (layer_id, value, detection_id))""")
    db.execute("CREATE INDEX IF NOT EXISTS context_overlaps_detection ON context_overlaps(detection_id)")


def _v20(db: sqlite_utils.Database) -> None:
    # Spectral time series of a place (review.analysis.spectral_series): one row per
    # Sentinel-2 acquisition over a site's or a detection's footprint (`place`, e.g.
    # 'site:12'), with the medians of the footprint's and its ring's clear pixels; the
    # windows fetched whole (done = every item read: an interrupted fetch stores nothing
    # and resumes from what it staged on disk); and why an item gave nothing.
    # kind: 'acquisition' (one date) or 'composite' (a stored scene spanning a period, dated
    # at its middle); scene_cloud_cover: the catalogue's eo:cloud_cover, kept only to show
    # that it is not what decides (clear_share, from SCL over the footprint, is).
    db.execute("""CREATE TABLE IF NOT EXISTS series_observations (
        place TEXT NOT NULL, item_id TEXT NOT NULL, acquired TEXT NOT NULL, source TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'acquisition', scene_cloud_cover REAL,
        clear_share REAL, ring_clear_share REAL, ndvi REAL, bsi REAL, mndwi REAL,
        ring_ndvi REAL, ring_bsi REAL, ring_mndwi REAL, footprint_pixels INTEGER,
        ring_pixels INTEGER, fetched_at TEXT NOT NULL, PRIMARY KEY (place, item_id))""")
    db.execute("CREATE INDEX IF NOT EXISTS series_observations_acquired ON series_observations "
               "(place, acquired)")
    db.execute("""CREATE TABLE IF NOT EXISTS series_windows (
        place TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL, geometry TEXT NOT NULL,
        ring_inner_m REAL, ring_outer_m REAL, items INTEGER, done INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT, PRIMARY KEY (place, start, end))""")
    db.execute("""CREATE TABLE IF NOT EXISTS series_failures (
        place TEXT NOT NULL, item_id TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (place, item_id))""")


def _v21(db: sqlite_utils.Database) -> None:
    # The review queue's orders (review.judging.queue._ORDER_SQL, the same expressions, or
    # SQLite will not use them): the next detection is read from an index, not by sorting
    # every pending detection (3-4 s per page at a million, on every Review run).
    db.execute("CREATE INDEX IF NOT EXISTS queue_by_score ON detections"
               "(status, score is null, score desc, id)")
    db.execute("CREATE INDEX IF NOT EXISTS queue_by_threshold ON detections"
               "(status, score is null, abs(score - coalesce(threshold, 0.5)), id)")
    db.execute("CREATE INDEX IF NOT EXISTS queue_by_newest ON detections"
               "(status, period_start is null, period_start desc, score desc, id)")


_LATEST_UNCERTAINTY = ("(select abs(m.score - coalesce(m.threshold, 0.5)) from model_scores m "
                       "where m.detection_id = {id} order by m.scored_at desc limit 1)")


def _v22(db: sqlite_utils.Database) -> None:
    # The "uncertain" queue order: how close the latest rescore put each detection to its
    # model's threshold, kept on the detection by triggers (whoever writes model_scores), so
    # the order has an index like the others (a sort over a subquery per detection took
    # 6.4 s per page at a million).
    db.execute("ALTER TABLE detections ADD COLUMN model_uncertainty REAL")
    db.execute("UPDATE detections SET model_uncertainty = " + _LATEST_UNCERTAINTY.format(id="detections.id")
               + " WHERE id IN (SELECT detection_id FROM model_scores)")
    for event, row in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS model_scores_{event.lower()} AFTER {event} ON "
                   f"model_scores BEGIN UPDATE detections SET model_uncertainty = "
                   f"{_LATEST_UNCERTAINTY.format(id=row + '.detection_id')} "
                   f"WHERE id = {row}.detection_id; END")
    db.execute("CREATE INDEX IF NOT EXISTS queue_by_uncertainty ON detections"
               "(status, model_uncertainty is null, model_uncertainty, score is null, score desc, id)")


def _v23(db: sqlite_utils.Database) -> None:
    # Counts by source and status (Home) and the list of sources (every page's filters) read
    # from this index instead of scanning every detection: 1.6 s to 0.07 s at a million.
    db.execute("CREATE INDEX IF NOT EXISTS detections_source_status ON detections(source, status)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8,
                                                              _v9, _v10, _v11, _v12, _v13, _v14,
                                                              _v15, _v16, _v17, _v18, _v19, _v20,
                                                              _v21, _v22, _v23]


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction: BEGIN IMMEDIATE (take the write lock before reading, so what
    is read cannot change before it is written), COMMIT at the end, ROLLBACK on any error."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StoreError(f"the review database is busy ({exc}); try again") from exc
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the review database."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable review database ({exc})") from exc
    return db


def connect_if_exists(path: str | Path) -> sqlite_utils.Database | None:
    """An existing review database, opened (and refused if it is not one); for a path with
    no file yet, None once its folder is known to be writable, so a run can be refused
    before any work and the database made only when there is something to store."""
    path = Path(path)
    if path.exists():
        return connect(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot create a review database there ({folder} is not a "
                         "writable folder)")
    return None


def identity(db) -> str:
    """This database's own id, made when it was created (a backup keeps it: same detections)."""
    return db.execute("select id from identity limit 1").fetchone()[0]


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> None:
    while schema_version(db) < len(MIGRATIONS):
        with transaction(db):
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = schema_version(db)
            if version < len(MIGRATIONS):
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")


def _scene_id(db: sqlite_utils.Database, scene: dict) -> int:
    existing = list(db["scenes"].rows_where("path = ? and sha256 = ?",
                                            [scene["path"], scene["sha256"]], limit=1))
    if existing:
        found = existing[0]
        if not (found["period_start"] or found["period_end"]) and (scene.get("period_start")
                                                                    or scene.get("period_end")):
            # Registered earlier without dates (e.g. as an upload); a run that knows its
            # period dates the tile, so Review can tell before from after.
            db.execute("update scenes set period_start = ?, period_end = ? where id = ?",
                       [scene.get("period_start"), scene.get("period_end"), found["id"]])
        return found["id"]
    return db["scenes"].insert({**scene, "added_at": now()}).last_pk


def has_table(db, name: str) -> bool:
    """Whether the database has a table or view of this name (an sqlite_utils Database or a
    plain sqlite3 connection, as the read-only server uses)."""
    conn = getattr(db, "conn", db)
    return conn.execute("select 1 from sqlite_master where type in ('table', 'view') and name = ?",
                        [name]).fetchone() is not None


def box_overlap(west: float, south: float, east: float, north: float,
                alias: str = "") -> tuple[str, list[float]]:
    """SQL condition and parameters that keep rows whose stored bounding box (west, south,
    east, north columns) overlaps the given box: a cheap first cut before exact geometry."""
    p = f"{alias}." if alias else ""
    return (f"{p}east >= ? and {p}west <= ? and {p}north >= ? and {p}south <= ?",
            [west, east, south, north])


def table_counts(db: sqlite_utils.Database,
                 tables: tuple[str, ...] = ("scenes", "runs", "detections", "verdicts")) -> dict[str, int]:
    """How many rows each table holds, in the order asked."""
    return {table: db[table].count for table in tables}


def stored_scenes(db: sqlite_utils.Database) -> list[dict]:
    """Registered scenes whose files are still on this machine, newest first."""
    return [scene for scene in db["scenes"].rows_where(order_by="id desc")
            if Path(scene["path"]).is_file()]


def add_scene(db: sqlite_utils.Database, scene: dict) -> int:
    """Register a tile (once per path and content) so reviews can show it."""
    with transaction(db):
        scene_id = _scene_id(db, scene)
    return scene_id


def record_run(db: sqlite_utils.Database, scene: dict, run: dict,
               detections: Iterable[dict]) -> int:
    """Store a scene (once per path+sha256), a run and its candidates in one transaction."""
    with transaction(db):
        scene_id = _scene_id(db, scene)
        run_id = db["runs"].insert({**run, "scene_id": scene_id}).last_pk
        rows = [{**d, "run_id": run_id, "scene_id": scene_id, "added_at": now(),
                 "external_id": d.get("external_id") or f"run{run_id}-{n}",
                 "properties": json.dumps(d.get("properties") or {})}
                for n, d in enumerate(detections, start=1)]
        if rows:
            db["detections"].insert_all(rows)
    return run_id


def backup(db: sqlite_utils.Database, destination: str | Path) -> Path:
    """A consistent copy of the live database (SQLite's online backup API: reviewers may
    keep writing meanwhile). Written beside the destination first, then moved into place;
    restoring is copying the file back while nobody uses the database."""
    destination = Path(destination)
    if destination.resolve() == Path(db.execute("pragma database_list").fetchone()[2]).resolve():
        raise StoreError(f"{destination}: that is the live database; back it up to another file")
    try:
        with files.replacing(destination, make_folder=False) as partial:
            target = sqlite3.connect(partial)
            with target:
                db.conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")     # one self-contained file
            target.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{destination}: the backup failed ({exc}); nothing was written") from exc
    return destination
