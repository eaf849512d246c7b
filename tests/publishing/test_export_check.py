"""A published export checks on its own, without the database: by `verify-export`, and by
code written from RFC 9162 and C2SP alone; any edit a sceptic might suspect fails it."""
import base64
import hashlib
import json
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from review.cli import main
from review.judging import verdicts
from review.judging.queue import Filters
from review.judging.verdicts import Imagery
from review.publishing.export import export

from tests.conftest import add_detections
from tests.judging.test_merkle_and_notes import rfc_verify


@pytest.fixture
def published(db, tmp_path, capsys):
    """Five detections reviewed (a verdict, a second look, an undo, imagery, a note with an
    accent), exported as GeoJSON, and the verifier key as `log key` prints it."""
    ids = add_detections(db, 5)
    seen = Imagery("sentinel-2-l2a", "2023-06-01", "2023-08-31")
    for i in ids:
        verdicts.record(db, i, "ana", "verified", note=f"pit {i}, água turva", after=seen)
    verdicts.record(db, ids[1], "bo", "false_positive", reason="riverbank", note="a sandbar")
    verdicts.undo(db, ids[1], "bo")
    verdicts.record(db, ids[2], "cy", "verified", final=True)
    out = tmp_path / "published.geojson"
    assert main(["export", str(out), "--status", "all", "--db", str(tmp_path / "review.db")]) == 0
    assert main(["log", "key", "--db", str(tmp_path / "review.db")]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    return out, key


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_export_carries_checkpoint_key_and_a_proof_per_verdict(published):
    out, key = published
    data = json.loads(out.read_text())
    assert data["verdict_log"]["key"] == key
    assert data["verdict_log"]["checkpoint"].split("\n")[1] == "8"
    verdict = next(f for f in data["features"] if f["id"] == 3)["properties"]["verdicts"][-1]
    assert verdict["final"] is True and verdict["override"] is None
    entry = json.loads(verdict["log_entry"])
    assert entry["final"] == 1 and entry["reviewer"] == "cy" and verdict["log_index"] == 7
    assert len(verdict["inclusion_proof"]) == 3


def test_verify_export_accepts_the_file_as_published(published, capsys):
    out, key = published
    assert main(["verify-export", str(out), "--key", key]) == 0
    assert capsys.readouterr().out.startswith("export verified: 8 verdicts on 5 detections")


def test_the_signature_and_every_proof_verify_with_code_from_rfc_9162_and_c2sp_alone(published):
    out, key = published
    data = json.loads(out.read_text())
    # C2SP signed-note: the key NAME+HEX8+BASE64(0x01 || key); key id = SHA-256(NAME \n 0x01 key)[:4].
    name, key_id, encoded = key.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 1 and hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
    note = data["verdict_log"]["checkpoint"]
    text, signature_lines = note.split("\n\n")
    text += "\n"
    signature = next(line for line in signature_lines.splitlines()
                     if line.startswith(f"\u2014 {name} "))
    blob = base64.b64decode(signature.split(" ")[2])
    assert blob[:4].hex() == key_id
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], text.encode())   # raises if bad
    # C2SP tlog-checkpoint: origin, size, base64 root.
    origin, size, root = text.splitlines()
    assert origin == name
    checked = 0
    for feature in data["features"]:
        for verdict in feature["properties"]["verdicts"]:
            path = [base64.b64decode(h) for h in verdict["inclusion_proof"]]
            assert rfc_verify(verdict["log_index"], int(size), verdict["log_entry"].encode(), path,
                              base64.b64decode(root))
            checked += 1
    assert checked == 8


@pytest.mark.parametrize("case, message", [
    ("note", "detection 1, verdict 1: note says 'pit 1, água muito turva', its log entry 'pit 1, água turva'"),
    ("entry", "detection 1, verdict 1: its log entry is not entry 0 of the signed tree"),
    ("status", "detection 2: status 'false_positive' does not follow from its verdicts"),
    ("dropped verdict proof", "detection 3, verdict 1: carries no log entry"),
    ("imagery", "detection 1, verdict 1: after imagery start says"),
    ("checkpoint of another size", "does not verify: the note was changed after it was signed"),
    ("re-signed", "the export names key"),
    ("moved verdict", "detection 4, verdict 1: its log entry is about detection 3"),
])
def test_any_edit_fails_with_one_line_naming_the_detection(published, capsys, case, message):
    out, key = published

    def change(data):
        by_id = {f["properties"]["id"]: f["properties"] for f in data["features"]}
        first = by_id[1]["verdicts"][0]
        if case == "note":
            first["note"] = "pit 1, água muito turva"
        elif case == "entry":
            first["log_entry"] = first["log_entry"].replace("turva", "muito turva")
            first["note"] = "pit 1, água muito turva"
        elif case == "status":
            by_id[2]["status"] = "false_positive"
        elif case == "dropped verdict proof":
            del by_id[3]["verdicts"][0]["log_entry"]
        elif case == "imagery":
            first["after"]["start"] = "2024-06-01"
        elif case == "checkpoint of another size":
            note = data["verdict_log"]["checkpoint"]
            data["verdict_log"]["checkpoint"] = note.replace("\n8\n", "\n9\n", 1)
        elif case == "re-signed":
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            from review.judging import signed_note
            name = key.split("+")[0]
            forger = Ed25519PrivateKey.generate()
            text = data["verdict_log"]["checkpoint"].split("\n\n")[0] + "\n"
            data["verdict_log"] = {"checkpoint": signed_note.sign(text, forger, name),
                                   "key": signed_note.verifier_of(forger, name).text()}
        else:
            by_id[4]["verdicts"][0] = by_id[3]["verdicts"][0]

    _edit(out, change)
    capsys.readouterr()
    assert main(["verify-export", str(out), "--key", key]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def test_a_truncated_or_foreign_file_is_one_line(published, tmp_path, capsys):
    out, key = published
    out.write_bytes(out.read_bytes()[:-500])
    assert main(["verify-export", str(out), "--key", key]) == 2
    assert "not a complete GeoJSON file" in capsys.readouterr().err
    plain = tmp_path / "plain.geojson"
    plain.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    assert main(["verify-export", str(plain)]) == 2
    assert "no signed verdict_log checkpoint" in capsys.readouterr().err
    assert main(["verify-export", str(tmp_path / "missing.geojson")]) == 2


def test_a_verdict_after_the_checkpoint_waits_for_the_next_export(db, tmp_path):
    ids = add_detections(db, 2)
    verdicts.record(db, ids[0], "ana", "verified")
    out = tmp_path / "a.geojson"
    export(db, out, Filters(status=None))
    verdicts.record(db, ids[1], "ana", "verified")
    assert main(["verify-export", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [len(f["properties"]["verdicts"]) for f in data["features"]] == [1, 0] or \
        sorted(len(f["properties"]["verdicts"]) for f in data["features"]) == [0, 1]


def test_geopackage_keeps_the_checkpoint_and_csv_rows_keep_each_proof(db, tmp_path):
    ids = add_detections(db, 2)
    verdicts.record(db, ids[0], "ana", "verified", note="pit")
    export(db, tmp_path / "a.gpkg", Filters(status=None))
    export(db, tmp_path / "a.csv", Filters(status=None))
    conn = sqlite3.connect(tmp_path / "a.gpkg")
    checkpoint, key = conn.execute("select checkpoint, key from verdict_log").fetchone()
    assert checkpoint.split("\n")[1] == "1" and key.count("+") >= 2
    import pandas as pd

    history = json.loads(pd.read_csv(tmp_path / "a.csv").sort_values("id")["verdicts"].iloc[0])
    assert history[0]["log_index"] == 0 and json.loads(history[0]["log_entry"])["note"] == "pit"


def test_export_warns_about_and_can_leave_out_verified_detections_nobody_saw(db, tmp_path, capsys):
    from review.judging.verdicts import NO_IMAGERY

    ids = add_detections(db, 3)
    seen = Imagery("sentinel-2", "2023-06-01", "2023-08-31")
    verdicts.record(db, ids[0], "ana", "verified", before=NO_IMAGERY, after=NO_IMAGERY)
    verdicts.record(db, ids[1], "ana", "verified", before=seen, after=seen)
    path = str(tmp_path / "review.db")
    assert main(["export", str(tmp_path / "all.geojson"), "--db", path]) == 0
    out = capsys.readouterr()
    assert "2 detections written" in out.out
    assert f"1 verified detection rests on verdicts given with no imagery on screen (#{ids[0]})" in out.err
    assert main(["export", str(tmp_path / "seen.geojson"), "--leave-out-unseen", "--db", path]) == 0
    assert "1 detections written" in capsys.readouterr().out
    data = json.loads((tmp_path / "seen.geojson").read_text())
    assert [f["id"] for f in data["features"]] == [ids[1]]
    assert main(["verify-export", str(tmp_path / "seen.geojson")]) == 0
