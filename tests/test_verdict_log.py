"""The verdict log holds up as evidence: append-only, hash-chained, checkable, backed up live."""
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from review import verdict_log
from review.cli import main
from review.judging import verdicts
from review.judging.queue import Filters
from review.publishing.export import export
from review.store import backup, connect

from tests.conftest import REPO, add_detections


def _verdicts(db, n=6):
    ids = add_detections(db, 3)
    for i in range(n):
        verdicts.record(db, ids[i % 3], f"r{i}", ("verified", "unsure")[i % 2], note=f"note {i}")
    return ids


def _hand_edit(path, *statements):
    """What someone with the sqlite3 shell and the file could do: drop the guards, edit."""
    conn = sqlite3.connect(path)
    conn.execute("drop trigger verdicts_append_only_update")
    conn.execute("drop trigger verdicts_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_each_verdict_is_chained_to_the_one_before(db):
    _verdicts(db)
    rows = list(db["verdicts"].rows_where(order_by="id"))
    assert rows[0]["prev_hash"] == verdict_log.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:]))
    check = verdict_log.verify(db)
    assert check.ok and check.verdicts == 6 and check.last_hash == rows[-1]["hash"]


def test_sql_cannot_update_or_delete_a_verdict(db):
    _verdicts(db, 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update verdicts set verdict = 'false_positive' where id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("delete from verdicts where id = 2")
    assert [v["verdict"] for v in db["verdicts"].rows_where(order_by="id")] == ["verified", "unsure"]


def test_a_hand_edited_row_is_named(tmp_path, capsys):
    path = tmp_path / "review.db"
    _verdicts(connect(path))
    _hand_edit(path, "update verdicts set verdict = 'false_positive', reason = 'cloud' where id = 4")
    check = verdict_log.verify(connect(path))
    assert (check.ok, check.first_bad_id) == (False, 4) and "changed after it was written" in check.problem
    assert main(["verify-log", "--db", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: the verdict log does not verify: verdict 4: {check.problem}"]


def test_a_removed_row_is_found_at_the_next_one(tmp_path):
    path = tmp_path / "review.db"
    _verdicts(connect(path))
    _hand_edit(path, "delete from verdicts where id = 3")
    check = verdict_log.verify(connect(path))
    assert check.first_bad_id == 4 and "removed" in check.problem


def test_an_intact_log_verifies_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "review.db"
    _verdicts(connect(path))
    assert main(["verify-log", "--db", str(path)]) == 0
    assert capsys.readouterr().out.startswith("verdict log intact: 6 verdicts, last hash ")


def test_cli_verdicts_record_the_computer_user_and_the_way_in(tmp_path, capsys, monkeypatch):
    path = tmp_path / "review.db"
    (first, *_) = add_detections(connect(path), 2)
    monkeypatch.setenv("USER", "field-laptop")
    monkeypatch.setenv("LOGNAME", "field-laptop")
    assert main(["verdict", str(first), "verified", "--db", str(path)]) == 0
    assert main(["verdict", str(first), "undo", "--reviewer", "script", "--db", str(path)]) == 0
    rows = list(connect(path)["verdicts"].rows_where(order_by="id"))
    assert [(r["reviewer"], r["via"]) for r in rows] == [("field-laptop", "cli"), ("script", "cli")]


def test_exports_carry_each_verdicts_hash(db, tmp_path):
    (first, *_) = add_detections(db, 2)
    verdicts.record(db, first, "ana", "verified")
    out = tmp_path / "verified.geojson"
    export(db, out, Filters(status="verified"))
    (feature,) = json.loads(out.read_text())["features"]
    (verdict,) = feature["properties"]["verdicts"]
    assert verdict["hash"] == db["verdicts"].get(1)["hash"] == verdict_log.verify(db).last_hash
    assert verdict["via"] == "dashboard"


def _writer(path, name, count, started):
    db = connect(path)
    ids = [r[0] for r in db.execute("select id from detections")]
    started.set()
    for i in range(count):
        verdicts.record(db, ids[i % len(ids)], name, "verified", note=f"{name} {i}")


def test_a_backup_taken_while_four_reviewers_write_verifies_and_keeps_what_was_committed(tmp_path):
    path = tmp_path / "review.db"
    db = connect(path)
    add_detections(db, 20)
    context = multiprocessing.get_context("spawn")
    events = [context.Event() for _ in range(4)]
    writers = [context.Process(target=_writer, args=(path, f"r{n}", 300, events[n])) for n in range(4)]
    for writer in writers:
        writer.start()
    for event in events:
        assert event.wait(60)
    time.sleep(0.3)
    committed_before = {r[0]: r[1] for r in db.execute("select id, hash from verdicts")}
    copy = backup(db, tmp_path / "backup.db")
    for writer in writers:
        writer.join(timeout=240)
        assert writer.exitcode == 0
    restored = connect(copy)
    assert verdict_log.verify(restored).ok
    kept = {r[0]: r[1] for r in restored.execute("select id, hash from verdicts")}
    assert committed_before.items() <= kept.items()
    assert connect(path)["verdicts"].count == 1200 and verdict_log.verify(connect(path)).ok


def test_backup_refuses_to_overwrite_the_live_database(db, tmp_path):
    from review.errors import StoreError

    with pytest.raises(StoreError, match="live database"):
        backup(db, tmp_path / "review.db")


KILLED_WRITER = """
import sys
from review.judging import verdicts
from review.store import connect
db = connect(sys.argv[1])
for i in range(100000):
    verdict_id = verdicts.record(db, 1 + i % 5, "killed", "verified", note=str(i))
    print(verdict_id, flush=True)
"""


def test_kill_9_in_the_middle_of_verdicts_loses_nothing_committed(tmp_path):
    path = tmp_path / "review.db"
    add_detections(connect(path), 5)
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    reported = [int(process.stdout.readline()) for _ in range(200)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reported += [int(line) for line in process.stdout.read().split()]
    db = connect(path)
    stored = {r[0] for r in db.execute("select id from verdicts")}
    assert set(reported) <= stored
    assert verdict_log.verify(db).ok
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


KILLED_IMPORT = """
import sys
from review.detection.importers import import_file
from review.store import connect
db = connect(sys.argv[1])
print("ready", flush=True)
import_file(db, sys.argv[2], progress=lambda done, total, what: print(done, flush=True))
print("done", flush=True)
"""

KILLED_BACKUP = """
import sys
from review.store import backup, connect
db = connect(sys.argv[1])
print("ready", flush=True)
while True:
    backup(db, sys.argv[2])
"""


def _kill_when(process, wanted: str) -> None:
    for line in process.stdout:
        if line.strip() == wanted or (wanted == "progress" and line.strip().isdigit()):
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_9_in_the_middle_of_an_import_leaves_nothing_of_it(tmp_path):
    path = tmp_path / "review.db"
    db = connect(path)
    ids = add_detections(db, 3)
    verdicts.record(db, ids[0], "ana", "verified")
    layer = tmp_path / "big.geojson"
    layer.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": 0.7},
         "geometry": {"type": "Point", "coordinates": [-60 + (i % 300) * 0.01, -5 + (i // 300) * 0.01]}}
        for i in range(30_000)]}))
    process = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, str(path), str(layer)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    _kill_when(process, "progress")                       # some features already inserted
    db = connect(path)
    assert db["detections"].count == 3 and db["imports"].count == 0
    assert verdict_log.verify(db).ok and db["verdicts"].count == 1
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_kill_9_in_the_middle_of_a_backup_leaves_the_database_and_any_old_backup_whole(tmp_path):
    path, copy = tmp_path / "review.db", tmp_path / "backup.db"
    db = connect(path)
    _verdicts(db)
    backup(db, copy)
    process = subprocess.Popen([sys.executable, "-c", KILLED_BACKUP, str(path), str(copy)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.5)                                       # backups are running, one after another
    assert process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    for database in (connect(path), connect(copy)):
        assert database["verdicts"].count == 6 and verdict_log.verify(database).ok
