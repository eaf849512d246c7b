"""The publishing wing's commands: export, training-samples, evidence, serve and report."""
import json

from review.cli import main
from review.judging import verdicts
from review.store import connect

from tests.conftest import add_detections


def test_exports_say_how_many_they_wrote(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    first, *_ = add_detections(connect(db), 3)
    verdicts.record(connect(db), first, "ana", "verified")
    out = tmp_path / "verified.geojson"
    assert main(["export", str(out), "--db", db]) == 0
    assert capsys.readouterr().out == f"1 detections written to {out}\n"
    assert len(json.loads(out.read_text())["features"]) == 1
    assert main(["export", str(tmp_path / "all.csv"), "--status", "all", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("3 detections written to ")
    assert main(["export", str(out), "--status", "done", "--db", db]) == 2
    assert capsys.readouterr().err.startswith("error: --status 'done': use one of ")
    points = tmp_path / "points.csv"
    assert main(["training-samples", str(points), "--db", db]) == 0
    assert capsys.readouterr().out == f"1 labelled points written to {points}\n"


def test_a_field_report_needs_its_text_and_a_whole_position(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    (detection,) = add_detections(connect(db), 1)
    assert main(["report", "add", "--db", db]) == 2
    assert capsys.readouterr().err == "error: report add needs --text\n"
    assert main(["report", "add", "--text", "pits", "--lon", "-57", "--db", db]) == 2
    assert capsys.readouterr().err == "error: give both --lon and --lat, or neither\n"
    assert main(["report", "add", "--text", "pits by the river", "--reporter", "ana",
                 "--detection", str(detection), "--db", db]) == 0
    added = json.loads(capsys.readouterr().out)
    assert main(["report", "list", "--db", db]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["id"] == added["id"] and listed["text"] == "pits by the river"
