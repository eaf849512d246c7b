import sqlite3

import pytest
import sqlite_utils

from review import store, verdict_log
from review.errors import StoreError
from review.judging import verdicts
from review.store import MIGRATIONS, connect, schema_version, transaction


def test_an_old_database_is_migrated_without_losing_anything(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    MIGRATIONS[0](old)                                   # a database from the first release
    old.execute("PRAGMA user_version = 1")
    old["detections"].insert({"source": "s", "external_id": "a", "geometry": "{}", "score": 0.7})
    old["verdicts"].insert({"detection_id": 1, "reviewer": "early", "verdict": "unsure",
                            "created_at": "2024-01-01T00:00:00+00:00"})
    old.conn.commit()
    old.conn.close()
    db = connect(path)
    assert schema_version(db) == len(MIGRATIONS)
    (row,) = list(db["detections"].rows)
    assert row["external_id"] == "a" and row["score"] == 0.7 and row["status"] == "pending"
    verdicts.record(db, row["id"], "ana", "verified")
    assert db["detections"].get(row["id"])["status"] == "verified"
    assert connect(path)["verdicts"].count == 2          # connecting again changes nothing
    # The verdict from before the hash chain existed is chained in, and the log verifies.
    assert verdict_log.verify(db).ok and verdict_log.verify(db).verdicts == 2


def test_database_is_in_wal_mode_with_a_busy_timeout(tmp_path):
    db = connect(tmp_path / "r.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS


def test_a_transaction_commits_whole_or_not_at_all(db):
    with transaction(db):
        db["imports"].insert({"source": "a", "path": "a.geojson"})
    with pytest.raises(ZeroDivisionError):
        with transaction(db):
            db["imports"].insert({"source": "b", "path": "b.geojson"})
            1 / 0
    assert [r["source"] for r in db["imports"].rows] == ["a"]
    with transaction(db):          # the connection is usable again after a rollback
        db["imports"].insert({"source": "c", "path": "c.geojson"})
    assert db["imports"].count == 2


def test_a_writer_waits_for_another_and_a_locked_database_is_a_store_error(tmp_path):
    path = tmp_path / "r.db"
    first, second = connect(path), connect(path)
    with transaction(first):
        first["imports"].insert({"source": "a", "path": "a"})
        second.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(StoreError, match="busy"):
            with transaction(second):
                pass
    with transaction(second):                      # free again once the first committed
        second["imports"].insert({"source": "b", "path": "b"})
    assert first["imports"].count == 2


def test_table_counts(tmp_path):
    db = connect(tmp_path / "r.db")
    assert store.table_counts(db) == {"scenes": 0, "runs": 0, "detections": 0, "verdicts": 0}
    db["detections"].insert({"source": "s", "external_id": "a", "geometry": "{}"})
    verdicts.record(db, 1, "ana", "unsure")
    verdicts.undo(db, 1, "ana")
    assert store.table_counts(db) == {"scenes": 0, "runs": 0, "detections": 1, "verdicts": 2}
    assert list(store.table_counts(db, ("verdicts", "claims"))) == ["verdicts", "claims"]


def _scene(path, name):
    return {"path": str(path), "name": name, "sha256": name, "west": 0.0, "south": 0.0,
            "east": 1.0, "north": 1.0}


def test_stored_scenes_are_those_still_on_disk_newest_first(tmp_path):
    db = connect(tmp_path / "r.db")
    for name in ("old.tif", "gone.tif", "new.tif"):
        (tmp_path / name).write_bytes(b"tile")
        store.add_scene(db, _scene(tmp_path / name, name))
    (tmp_path / "gone.tif").unlink()
    assert [s["name"] for s in store.stored_scenes(db)] == ["new.tif", "old.tif"]


def test_has_table_answers_for_a_database_and_for_a_plain_read_only_connection(tmp_path):
    db = connect(tmp_path / "review.db")
    assert store.has_table(db, "detections") and not store.has_table(db, "nothing_here")
    plain = sqlite3.connect(f"file:{tmp_path / 'review.db'}?mode=ro", uri=True)
    assert store.has_table(plain, "verdicts") and not store.has_table(plain, "no such table")


def test_box_overlap_keeps_the_footprints_whose_box_meets_the_area(db):
    for name, (west, south, east, north) in {"inside": (1, 1, 2, 2), "straddling": (2.5, 2.5, 4, 4),
                                             "touching": (3, 0, 4, 1), "apart": (5, 5, 6, 6)}.items():
        db["detections"].insert({"source": "s", "external_id": name, "geometry": "{}", "score": 0.5,
                                 "west": west, "south": south, "east": east, "north": north})
    where, params = store.box_overlap(0, 0, 3, 3, alias="d")
    found = {r[0] for r in db.execute(f"select external_id from detections d where {where}", params)}
    assert found == {"inside", "straddling", "touching"}
