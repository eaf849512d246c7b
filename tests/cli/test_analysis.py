"""The analysis wing's commands: trends, sites and sample."""
import json

from review.cli import main
from review.store import connect

from tests.conftest import add_detections


def test_a_sample_is_drawn_or_estimated_and_asks_for_what_it_needs(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    add_detections(connect(db), 5)
    assert main(["sample", "--db", db]) == 2
    assert capsys.readouterr().err == "error: give --name and --size to draw a sample, or --estimate SAMPLE_ID\n"
    assert main(["sample", "--name", "check", "--size", "3", "--db", db]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert drawn["size"] == 3 and connect(db)["sample_members"].count == 3
    assert main(["sample", "--estimate", str(drawn["sample_id"]), "--db", db]) == 2
    assert capsys.readouterr().err == "error: the sample has no reviewed detections yet\n"


def test_trends_print_csv_or_json_lines_per_period(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    add_detections(connect(db), 5)
    assert main(["trends", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("period,detections,") and len(lines) == 1 + 5     # 2018 .. 2022
    assert main(["trends", "--format", "json", "--db", db]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["period"] for r in rows] == ["2018", "2019", "2020", "2021", "2022"]
    assert main(["trends", "--by-site", "--region-field", "country", "--db", db]) == 2
    assert "--by-site covers every site" in capsys.readouterr().err
