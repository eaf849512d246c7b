"""What the command modules share: argument types, the database, progress bars, tables."""
import argparse
import json

import pandas as pd
import pytest

from review.cli import common
from review.errors import ReviewError
from review.store import connect


def test_a_period_is_start_slash_end_either_may_be_left_out():
    assert common.period(None) is None and common.period("") is None
    assert common.period("2023-01-01/2023-12-31") == ("2023-01-01", "2023-12-31")
    assert common.period("/2023-12-31") == (None, "2023-12-31")
    assert common.period("2023-01-01/") == ("2023-01-01", None)
    with pytest.raises(ReviewError, match=r"--period must look like START/END.*\(got '2023'\)"):
        common.period("2023")


def test_a_fraction_is_a_number_from_0_to_1_and_argparse_names_it_as_before(capsys):
    assert common.fraction("0") == 0 and common.fraction("0.25") == 0.25 and common.fraction("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="1.5 is not between 0 and 1"):
        common.fraction("1.5")
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--t-main", type=common.fraction)
    with pytest.raises(SystemExit):
        parser.parse_args(["--t-main", "high"])
    assert "argument --t-main: invalid _fraction value: 'high'" in capsys.readouterr().err


def test_status_all_is_every_status_and_an_unknown_one_is_refused():
    assert common.status("all") is None and common.status("verified") == "verified"
    with pytest.raises(ReviewError, match=r"--status 'done': use one of pending, .* or all"):
        common.status("done")


def test_the_database_is_the_given_one_else_the_settings(tmp_path, monkeypatch):
    given = tmp_path / "given.db"
    common.open_db(argparse.Namespace(db=given)).close()
    assert given.exists()
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "default.db"))
    common.open_db(argparse.Namespace(db=None)).close()
    assert connect(tmp_path / "default.db")["detections"].count == 0


def test_a_table_prints_as_csv_or_json_lines_rounded(capsys):
    table = pd.DataFrame({"site": [1], "lon": [-57.123456789], "lat": [-5.1], "area_ha": [1.234567]})
    assert common.print_table(table, "csv") == 0
    assert capsys.readouterr().out == "site,lon,lat,area_ha\n1,-57.123457,-5.1,1.2346\n"
    common.print_table(table, "json")
    assert json.loads(capsys.readouterr().out) == {"site": 1, "lon": -57.123457, "lat": -5.1,
                                                   "area_ha": 1.2346}


def test_a_progress_bar_takes_the_steps_and_a_quiet_one_prints_nothing(capsys):
    with common.progress_bar("working", quiet=True, unit="tile") as progress:
        for done in range(1, 4):
            progress(done, 3, f"tile {done}")
    with common.progress_bar("later", quiet=True, lazy=True):
        pass                                                 # a lazy bar never started
    assert capsys.readouterr() == ("", "")


def test_no_region_file_is_no_area():
    assert common.region_area(None) is None


def test_fetching_needs_an_area_and_a_period():
    from review.detection.fetch import FetchError

    args = argparse.Namespace(bbox="1,2,3,4", start="2024-01-01", end=None, command="detect")
    with pytest.raises(FetchError, match="give a TILE, or --bbox W,S,E,N with --start and --end"):
        common.fetch_tile(args, ("B4",))
    args.end, args.stac_url, args.collection, args.cloud_limit = "2024-02-01", None, None, 40.0
    with pytest.raises(FetchError, match="^--bbox: "):
        common.fetch_tile(argparse.Namespace(**{**vars(args), "bbox": "1,2,3"}), ("B4",))


def test_the_stac_source_takes_the_area_options():
    args = argparse.Namespace(stac_url="http://127.0.0.1:9/stac", collection="my-l2a", cloud_limit=12.5)
    source = common.stac_source(args)
    assert (source.url, source.collection, source.cloud_limit) == ("http://127.0.0.1:9/stac", "my-l2a", 12.5)
    default = common.stac_source(argparse.Namespace(stac_url=None, collection=None, cloud_limit=40.0))
    assert default.url and default.collection and default.cloud_limit == 40.0
