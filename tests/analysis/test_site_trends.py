"""Sites through time, period by period: seen, new, expanding, not seen, and their area
counted once; also as `python -m review trends --by-site`."""
from review.analysis import sites
from review.analysis.site_trends import site_trend_table
from review.cli import main
from review.judging import verdicts

from tests.analysis.conftest import HA, db_path


def test_trends_by_site(history_db, capsys):
    sites.build(history_db)
    verdicts.record(history_db, 6, "ana", "verified")              # site 3, first seen 2022
    table = site_trend_table(history_db).set_index("period")
    assert table["sites_new"].tolist() == [1, 1, 0, 1]
    assert (table["area_ha_new"] / HA).round(3).tolist() == [1, 1, 0, 1]
    assert (table["area_ha_expanding"] / HA).round(3).tolist() == [0, 0, 1, 0]
    assert (table["area_ha_cumulative"] / HA).round(3).tolist() == [1, 2, 3, 4]
    assert table["sites_not_seen"].tolist() == [0, 1, 1, 1]
    assert (table["area_ha_cumulative_verified"] / HA).round(3).tolist() == [0, 0, 0, 1]
    assert table["sites_new_verified"].tolist() == [0, 0, 0, 1]
    assert main(["trends", "--by-site", "--db", db_path(history_db)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("period,sites_seen,sites_new") and len(lines) == 5
    assert main(["trends", "--by-site", "--source", "layers", "--db", db_path(history_db)]) == 2
    assert "cannot be split" in capsys.readouterr().err
