"""The review-imagery wing's commands: scenes and prepare-imagery."""
import json

from review.cli import main

from tests.conftest import TINY_BANDS, mine_tile


def test_scenes_are_added_listed_and_removed(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    tile = mine_tile(tmp_path / "tile.tif")
    assert main(["scenes", "add", "--db", db]) == 2
    assert capsys.readouterr().err == "error: scenes add needs the GeoTIFF to add\n"
    assert main(["scenes", "add", str(tile), "--period", "2024-01-01/2024-12-31", "--format", "json",
                 "--db", db]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["period_start"], row["period_end"], row["bands"]) == ("2024-01-01", "2024-12-31",
                                                                      ",".join(TINY_BANDS))
    assert main(["scenes", "list", "--db", db]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[0] == str(row["id"]) and line.endswith(str(tile.resolve()))
    assert main(["scenes", "remove", "first", "--db", db]) == 2
    assert capsys.readouterr().err == "error: scenes remove needs the id of a scene (see scenes list)\n"
    assert main(["scenes", "remove", str(row["id"]), "--db", db]) == 0
    assert capsys.readouterr().out == f"scene {row['id']} (tile.tif) removed; its file is kept\n"


def test_preparing_imagery_for_an_empty_queue_says_so(tmp_path, capsys):
    assert main(["prepare-imagery", "--db", str(tmp_path / "r.db"), "--quiet"]) == 0
    assert capsys.readouterr().out == ("0 detections: 0 prepared, 0 already in the cache, 0 without "
                                       "imagery (noted with the reason; tried again on a later run)\n")
