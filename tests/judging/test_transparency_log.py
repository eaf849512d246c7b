"""A signed checkpoint pins the verdict log from outside: what someone holding the file (and
even the signing key) can do to it is caught by `verify-log --checkpoint`."""
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from review import verdict_log
from review.cli import main
from review.judging import project_settings, signed_note, transparency_log, verdicts
from review.store import connect

from tests.conftest import REPO, add_detections


def _verdicts(db, n=8):
    ids = add_detections(db, 4)
    for i in range(n):
        verdicts.record(db, ids[i % 4], f"r{i % 3}", ("verified", "unsure")[i % 2], note=f"note {i}")
    return ids


def _publish(db_path, tmp_path, name="published.txt"):
    """What a journalist does: sign the log and put the checkpoint beside the story."""
    out = tmp_path / name
    assert main(["log", "checkpoint", "--db", str(db_path), "--out", str(out)]) == 0
    return out


def _rewrite(db_path, *statements):
    """Someone with the file and the sqlite3 shell: drop the guards, edit, and re-chain every
    row so the old hash chain checks again."""
    conn = sqlite3.connect(db_path)
    conn.execute("drop trigger if exists verdicts_append_only_update")
    conn.execute("drop trigger if exists verdicts_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    cursor = conn.execute("select * from verdicts order by id")
    names = [d[0] for d in cursor.description]
    prev = verdict_log.GENESIS
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        digest = verdict_log.row_hash(row, prev)
        conn.execute("update verdicts set prev_hash = ?, hash = ? where id = ?", [prev, digest, row["id"]])
        prev = digest
    conn.commit()
    conn.close()


def test_log_key_is_private_and_prints_the_verifier_key_last(db, tmp_path, capsys):
    path = tmp_path / "review.db"
    assert main(["log", "key", "--db", str(path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    key = signed_note.parse_verifier(printed)
    assert key.name == project_settings.get(connect(path), "log_origin")
    assert stat.S_IMODE(transparency_log.key_path().stat().st_mode) == 0o600
    assert main(["log", "key", "--db", str(path)]) == 0          # the same key the second time
    assert capsys.readouterr().out.strip().splitlines()[-1] == printed


def test_each_database_gets_its_own_log_name(tmp_path):
    first, second = connect(tmp_path / "a.db"), connect(tmp_path / "b.db")
    assert transparency_log.origin(first) != transparency_log.origin(second)
    assert transparency_log.origin(first) == transparency_log.origin(first)


def test_checkpoint_is_a_c2sp_signed_note_of_every_verdict(db, tmp_path):
    _verdicts(db)
    out = _publish(tmp_path / "review.db", tmp_path)
    text = out.read_text()
    body, signature = text.split("\n\n")
    origin, size, root = body.split("\n")
    assert origin == transparency_log.origin(db) and size == "8"
    assert signature.startswith(f"\u2014 {origin} ") and text.endswith("\n")
    # Entry i is verdict i in id order, as canonical JSON of its fields.
    rows = list(db["verdicts"].rows_where(order_by="id"))
    entries = transparency_log.entries(db)
    assert [json.loads(e)["id"] for e in entries] == [r["id"] for r in rows]
    assert json.loads(entries[2]) == {k: v for k, v in rows[2].items()
                                      if k in verdict_log.HASHED and v is not None}
    assert transparency_log.kept(db)[-1].note == text


def test_deleting_the_newest_verdicts_fails_the_published_checkpoint(db, tmp_path, capsys):
    path = tmp_path / "review.db"
    _verdicts(db)
    published = _publish(path, tmp_path)
    _rewrite(path, "delete from verdicts where id > 5", "delete from log_checkpoints")
    capsys.readouterr()
    assert main(["verify-log", "--db", str(path)]) == 0          # the chain alone is fooled
    assert main(["verify-log", "--db", str(path), "--checkpoint", str(published)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"error: the log has 5 verdicts; checkpoint {published} covers 8: verdicts "
                     "it covered were removed")


def test_a_log_rewritten_and_resigned_with_the_same_key_fails_the_published_checkpoint(db, tmp_path, capsys):
    path = tmp_path / "review.db"
    _verdicts(db)
    published = _publish(path, tmp_path)
    # One note changed, the chain recomputed, the kept checkpoints replaced by a fresh one
    # signed with the very same key: everything inside the file agrees again.
    _rewrite(path, "update verdicts set note = 'nothing to see' where id = 3",
             "delete from log_checkpoints")
    resigned = _publish(path, tmp_path, "resigned.txt")
    capsys.readouterr()
    assert main(["verify-log", "--db", str(path)]) == 0
    assert main(["verify-log", "--db", str(path), "--checkpoint", str(resigned)]) == 0
    assert main(["verify-log", "--db", str(path), "--checkpoint", str(published)]) == 2
    assert "do not have the root hash of checkpoint" in capsys.readouterr().err


def test_rerecording_the_log_through_the_product_fails_the_published_checkpoint(tmp_path, capsys):
    """Start over in a new database under the same log name and key, recording the same
    verdicts but one note: the published checkpoint does not hold for it."""
    original = connect(tmp_path / "a.db")
    _verdicts(original)
    published = _publish(tmp_path / "a.db", tmp_path)
    copy = connect(tmp_path / "b.db")
    transparency_log.set_origin(copy, transparency_log.origin(original))
    add_detections(copy, 4)
    for row in original["verdicts"].rows_where(order_by="id"):
        verdicts.record(copy, row["detection_id"], row["reviewer"], row["verdict"],
                        note="changed" if row["id"] == 4 else row["note"])
    capsys.readouterr()
    assert main(["verify-log", "--db", str(tmp_path / "b.db"), "--checkpoint", str(published)]) == 2
    assert "do not have the root hash" in capsys.readouterr().err


def test_a_checkpoint_keeps_holding_as_the_log_grows(db, tmp_path, capsys):
    path = tmp_path / "review.db"
    ids = _verdicts(db)
    published = _publish(path, tmp_path)
    verdicts.record(db, ids[0], "late", "false_positive", reason="riverbank")
    capsys.readouterr()
    assert main(["verify-log", "--db", str(path), "--checkpoint", str(published)]) == 0
    assert "first 8 of 9 verdicts match" in capsys.readouterr().out


def test_verify_log_without_a_file_checks_the_checkpoints_it_kept(db, tmp_path, capsys):
    path = tmp_path / "review.db"
    _verdicts(db)
    _publish(path, tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("drop trigger verdicts_append_only_delete")
    conn.execute("delete from verdicts where id = 8")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["verify-log", "--db", str(path)]) == 2
    assert "the log has 7 verdicts; checkpoint of " in capsys.readouterr().err


@pytest.mark.parametrize("case", ["bad signature", "another log", "wrong key form", "not a note",
                                  "another key"])
def test_bad_checkpoints_and_keys_are_one_line_and_change_nothing(db, tmp_path, capsys, case):
    path = tmp_path / "review.db"
    _verdicts(db)
    published = _publish(path, tmp_path)
    args = ["verify-log", "--db", str(path), "--checkpoint", str(published)]
    if case == "bad signature":
        published.write_text(published.read_text().replace("\n8\n", "\n7\n"))
    elif case == "another log":
        other = connect(tmp_path / "other.db")
        _verdicts(other)
        published = _publish(tmp_path / "other.db", tmp_path, "other.txt")
        args[-1] = str(published)
    elif case == "wrong key form":
        args += ["--key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"]
    elif case == "not a note":
        published.write_text("hello\n")
    else:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        args += ["--key", signed_note.verifier_of(Ed25519PrivateKey.generate(),
                                                  transparency_log.origin(db)).text()]
    before = (db["verdicts"].count, db["log_checkpoints"].count)
    capsys.readouterr()
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ")
    assert {"bad signature": "does not verify", "another log": "another log's",
            "wrong key form": "a verifier key reads", "not a note": "not a signed note",
            "another key": "not signed by key"}[case] in error
    assert (db["verdicts"].count, db["log_checkpoints"].count) == before


def test_kill_9_during_checkpoint_leaves_no_half_written_checkpoint(tmp_path):
    """Killed at any moment, `log checkpoint --out` leaves either nothing or a whole,
    valid checkpoint, in the file and in the database."""
    path, out = tmp_path / "review.db", tmp_path / "cp.txt"
    db = connect(path)
    ids = add_detections(db, 50)
    rows = [{"id": i + 1, "detection_id": ids[i % 50], "reviewer": "bulk", "verdict": "unsure",
             "created_at": "2026-01-01T00:00:00", "via": "cli"} for i in range(30000)]
    prev = verdict_log.GENESIS
    for row in rows:
        row["prev_hash"], row["hash"] = prev, verdict_log.row_hash(row, prev)
        prev = row["hash"]
    db["verdicts"].insert_all(rows, batch_size=5000)
    transparency_log.origin(db)
    transparency_log.private_key()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.3, 0.6, 0.9, 1.2, 1.6, 2.2):
        process = subprocess.Popen([sys.executable, "-m", "review", "log", "checkpoint", "--db",
                                    str(path), "--out", str(out)], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        notes = [("file", out.read_text())] if out.exists() else []
        notes += [(k.label(), k.note) for k in transparency_log.kept(connect(path))]
        assert len(transparency_log.check(connect(path), notes)) == len(notes)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
