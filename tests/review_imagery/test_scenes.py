"""Imagery people have, registered as stored scenes (python -m review scenes)."""
import json

from review.cli import main
from review.store import connect

from tests.conftest import SLOVENIA, needs_fixtures, random_reflectance, write_tile


def _tile(tmp_path, name="mine.tif", tags=None):
    return write_tile(tmp_path / name, random_reflectance(4, 40, 40), ["B2", "B3", "B4", "B8"],
                      tags=tags or {})


def test_add_list_remove(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    path = _tile(tmp_path)
    assert main(["scenes", "add", str(path), "--period", "2022-01-01/2022-12-31", "--db", db]) == 0
    assert "2022-01-01 to 2022-12-31, bands B2,B3,B4,B8" in capsys.readouterr().out
    assert main(["scenes", "add", str(path), "--period", "2022-01-01/2022-12-31", "--db", db]) == 0
    assert "already stored" in capsys.readouterr().out
    assert main(["scenes", "list", "--format", "json", "--db", db]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1 and rows[0]["present"] and rows[0]["name"] == "mine.tif"
    assert main(["scenes", "remove", str(rows[0]["id"]), "--db", db]) == 0
    assert "removed; its file is kept" in capsys.readouterr().out
    assert connect(db)["scenes"].count == 0 and path.exists()


def test_a_scene_needs_a_period(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    assert main(["scenes", "add", str(_tile(tmp_path)), "--db", db]) == 2
    error = capsys.readouterr().err
    assert "its period is not known" in error and connect(db)["scenes"].count == 0


def test_the_file_period_tags_are_used(tmp_path, capsys):
    path = _tile(tmp_path, tags={"PERIOD_START": "2020-01-01", "PERIOD_END": "2020-06-30"})
    assert main(["scenes", "add", str(path), "--db", str(tmp_path / "r.db")]) == 0
    assert "2020-01-01 to 2020-06-30" in capsys.readouterr().out


def test_bands_can_be_named(tmp_path, capsys):
    path = write_tile(tmp_path / "unnamed.tif", random_reflectance(4, 30, 30))
    assert main(["scenes", "add", str(path), "--period", "2021-01-01/2021-12-31",
                 "--bands", "B4,B3,B2,-", "--db", str(tmp_path / "r.db")]) == 0
    assert "bands B4,B3,B2,-" in capsys.readouterr().out


def test_removing_an_unknown_or_used_scene_is_refused(tmp_path, capsys):
    db_path = tmp_path / "r.db"
    assert main(["scenes", "remove", "7", "--db", str(db_path)]) == 2
    assert "there is no scene 7" in capsys.readouterr().err
    db = connect(db_path)
    scene = db["scenes"].insert({"path": "/x.tif", "name": "x.tif"}).last_pk
    db["runs"].insert({"scene_id": scene, "model_id": "m"})
    assert main(["scenes", "remove", str(scene), "--db", str(db_path)]) == 2
    assert "it is kept" in capsys.readouterr().err


@needs_fixtures
def test_a_real_scene(tmp_path, capsys):
    assert main(["scenes", "add", str(SLOVENIA[0]), "--period", "2017-01-01/2017-12-31",
                 "--db", str(tmp_path / "r.db")]) == 0
    assert "B1,B2,B3" in capsys.readouterr().out


def test_a_scene_of_reflectance_fractions_is_read_as_digital_numbers(tmp_path, capsys):
    path = write_tile(tmp_path / "gee_export.tif", random_reflectance(4, 40, 40) / 10000.0,
                      ["B2", "B3", "B4", "B8"], dtype="float32")
    assert main(["scenes", "add", str(path), "--period", "2022-01-01/2022-12-31",
                 "--db", str(tmp_path / "r.db")]) == 0
    assert "gee_export.tif holds reflectance as fractions (0-1), read as digital numbers" in \
        capsys.readouterr().out
