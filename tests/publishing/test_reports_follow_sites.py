"""Field reports follow their site through merges: a site build that merges a site away
leaves its reports under the site it went into, through chains of merges too, and
`report list --site OLD` says where they went."""
import json

import pytest

from review.analysis import sites
from review.cli import main
from review.publishing import reports
from review.publishing.reports import ReportError

from tests.analysis.conftest import db_path, load, rect


def _ids(rows):
    return [row["id"] for row in rows]


def _day(db, absorbed_id):
    (merge,) = [m for m in sites.merges(db) if m["absorbed_id"] == absorbed_id]
    return merge["merged_at"][:10]


def test_a_report_on_a_site_merged_away_is_read_under_the_surviving_site(db, tmp_path):
    # Two 100 m squares 900 m apart, and one far away: three sites at 100 m.
    load(db, tmp_path, "row", [(rect(0, 0, 100), 2020), (rect(1_000, 0, 100), 2021),
                               (rect(20_000, 0, 100), 2021)])
    sites.build(db)
    on_one = reports.add(db, "pits by the road", "ana", site_id=1)
    on_two = reports.add(db, "two excavators", "ben", site_id=2)
    on_far = reports.add(db, "barge on the river", "ana", site_id=3)
    assert _ids(reports.for_site(db, 1)) == [on_one["id"]]

    assert sites.build(db, distance_m=950).merged == 1            # site 2 goes into site 1
    assert [(m["absorbed_id"], m["into_id"]) for m in sites.merges(db)] == [(2, 1)]
    # The Sites page (for_site) and the listing by site show both under site 1, not site 3's.
    assert _ids(reports.for_site(db, 1)) == [on_one["id"], on_two["id"]]
    assert _ids(reports.listing(db, site_id=1)) == [on_one["id"], on_two["id"]]
    assert _ids(reports.for_site(db, 3)) == [on_far["id"]]
    # Asked by its old id, the site reads as the one it went into.
    assert _ids(reports.for_site(db, 2)) == [on_one["id"], on_two["id"]]
    moved = {row["id"]: (row["site_id"], row["merged_into"]) for row in reports.listing(db)}
    assert moved == {on_one["id"]: (1, None), on_two["id"]: (2, 1), on_far["id"]: (3, None)}


def test_reports_follow_a_chain_of_two_merges(db, tmp_path, capsys):
    # 900 m between the first two squares, 200 m between the last two.
    load(db, tmp_path, "row", [(rect(0, 0, 100), 2020), (rect(1_000, 0, 100), 2021),
                               (rect(1_300, 0, 100), 2022)])
    sites.build(db)
    assert sorted(db.execute("select id from sites").fetchall()) == [(1,), (2,), (3,)]
    on_three = reports.add(db, "new clearing", "ana", site_id=3)
    sites.build(db, distance_m=250)                                # 3 into 2
    assert _ids(reports.for_site(db, 2)) == [on_three["id"]]
    sites.build(db, distance_m=950)                                # then 2 into 1
    assert [(m["absorbed_id"], m["into_id"]) for m in sites.merges(db)] == [(3, 2), (2, 1)]
    assert _ids(reports.for_site(db, 1)) == [on_three["id"]]
    (row,) = reports.listing(db, site_id=1)
    assert (row["site_id"], row["merged_into"]) == (3, 1)
    with pytest.raises(sites.SiteError, match="site 3 was merged into site 1$"):
        sites.summary(db, 3)

    assert main(["report", "list", "--site", "3", "--db", db_path(db)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["id"] for line in out.splitlines()] == [on_three["id"]]
    assert err == (f"site 3 was merged into site 2 on {_day(db, 3)}, then site 2 into site 1 "
                   f"on {_day(db, 2)}; its reports are listed under site 1\n")


def test_a_user_reports_on_a_site_rebuilds_wider_and_finds_the_report_on_the_merged_site(
        db, tmp_path, capsys):
    load(db, tmp_path, "row", [(rect(0, 0, 100), 2020), (rect(1_000, 0, 100), 2021),
                               (rect(20_000, 0, 100), 2021)])
    path = db_path(db)
    assert main(["sites", "build", "--db", path]) == 0
    capsys.readouterr()
    assert main(["report", "add", "--site", "2", "--text", "fresh tailings", "--reporter", "ana",
                 "--seen", "2024-05-31", "--db", path]) == 0
    assert main(["report", "add", "--site", "3", "--text", "far away", "--reporter", "ana",
                 "--db", path]) == 0
    added = json.loads(capsys.readouterr().out.splitlines()[0])
    assert main(["sites", "build", "--distance", "950", "--db", path]) == 0
    capsys.readouterr()

    assert main(["report", "list", "--site", "1", "--db", path]) == 0
    out, err = capsys.readouterr()
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert (listed["id"], listed["text"], listed["merged_into"]) == (added["id"], "fresh tailings", 1)
    assert err == ""

    assert main(["report", "list", "--site", "2", "--db", path]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["id"] for line in out.splitlines()] == [added["id"]]
    assert err == (f"site 2 was merged into site 1 on {_day(db, 2)}; its reports are listed "
                   "under site 1\n")

    assert main(["report", "list", "--site", "99", "--db", path]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: no site with id 99\n")
    with pytest.raises(ReportError, match="no site with id 99"):
        reports.site_listing(db, 99)
