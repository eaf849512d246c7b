"""A site's onset (review.analysis.onset): the month it changed from vegetation to bare ground
or water. On a loopback STAC service serving real Sentinel-2 pixels in which a known patch
turns from forest to bare ground in a known month, it is that month (within one) whenever
clear observations bracket it, and "not enough clear observations" when clouds hide it; the
rule's other answers on series built by hand; `sites list` and Trends read it."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from review.analysis import onset, sites, spectral_series
from review.detection.fetch import Source
from review.store import now

from tests import stac_server
from tests.conftest import FIXTURES, needs_fixtures

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"


def months_apart(a: str, b: str) -> int:
    return abs((int(a[:4]) * 12 + int(a[5:7])) - (int(b[:4]) * 12 + int(b[5:7])))


@needs_fixtures
@pytest.mark.parametrize("scenario", ["bracketed", "cloud_in_bracket", "hidden"])
def test_the_onset_is_the_month_the_patch_turned_bare_or_not_enough_when_clouds_hide_it(
        db, tmp_path, cache, scenario):
    items, info = stac_server.scenario_scenes(scenario, PAIRS, tmp_path / "files")
    server = stac_server.StacServer(tmp_path / "files", items)
    try:
        site = stac_server.site_over_patch(db, info)
        spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url))
    finally:
        server.stop()
    found = onset.for_site(db, site)
    bare_from = info["bare_from"]
    if scenario == "hidden":
        assert found.status == "not_enough" and found.month is None
        assert (found.last_before, found.first_after) == ("2021-02-15", "2021-12-15")
        assert found.words == ("The footprint changed between 2021-02-15 and 2021-12-15, but clouds "
                               "hid the 303 days in between: not enough clear observations to name "
                               "the month.")
        return
    assert found.status == "found" and found.to == "bare ground"
    assert months_apart(found.month, bare_from) <= 1
    assert found.last_before < bare_from <= found.first_after       # the bracket holds the change
    assert found.words.startswith(f"Onset {found.month}: the footprint changed from vegetation")
    assert f"between {found.last_before} and {found.first_after}" in found.words


# ------------------------------------------------------------- the rule, on series by hand


def series(ndvi, ring=None, start="2020-01-15", step=30, mndwi=None, clear=None, kind=None):
    """Rows as spectral_series.stored gives them, one every `step` days."""
    day = dt.date.fromisoformat(start)
    rows = []
    for i, value in enumerate(ndvi):
        rows.append({"acquired": (day + dt.timedelta(days=step * i)).isoformat(),
                     "item_id": f"i{i}", "kind": (kind or {}).get(i, "acquisition"),
                     "clear_share": (clear or {}).get(i, 1.0), "ndvi": value,
                     "ring_ndvi": (ring or [0.85] * len(ndvi))[i], "mndwi": (mndwi or {}).get(i, -0.5)})
    return rows


def test_a_lasting_drop_below_the_ring_and_the_sites_past_is_the_onset():
    found = onset.find(series([0.85, 0.84, 0.86, 0.85, 0.2, 0.15, 0.18, 0.2]))
    assert (found.status, found.last_before, found.first_after) == ("found", "2020-04-14", "2020-05-14")
    assert found.month == "2020-04" and found.bracket == "2020-04-14/2020-05-14"
    assert found.short == "2020-04" and found.clear == 8


def test_a_pond_is_water():
    found = onset.find(series([0.85] * 4 + [-0.1] * 4, mndwi={4: 0.3, 5: 0.4, 6: 0.35, 7: 0.3}))
    assert found.status == "found" and found.to == "water" and "to water" in found.words


def test_one_low_value_is_not_an_onset_nor_a_drop_the_ring_shares():
    shadow = onset.find(series([0.85, 0.84, 0.86, 0.2, 0.85, 0.86, 0.84, 0.85]))
    assert shadow.status == "not_found" and shadow.words.startswith("Not found: in 8 clear observations")
    drought = onset.find(series([0.85] * 4 + [0.5] * 4, ring=[0.85] * 4 + [0.5] * 4))
    assert drought.status == "not_found"


def test_cloudy_and_composite_observations_do_not_count():
    rows = series([0.85, 0.84, 0.86, 0.85, 0.2, 0.15, 0.18, 0.2], clear={4: 0.3},
                  kind={5: "composite"})
    found = onset.find(rows)
    # Only 6 observations are clear acquisitions: the drop is seen from the 7th on.
    assert found.status == "not_enough" and found.clear == 6
    assert "only 2 clear observations from then on" in found.words


def test_a_site_bare_from_the_start_and_a_short_series_are_said_in_words():
    bare = onset.find(series([0.2] * 8))
    assert bare.status == "not_found" and "was not vegetated at its first clear observations" in bare.words
    short = onset.find(series([0.85, 0.8, 0.2]))
    assert short.status == "not_enough" and short.words == (
        "Only 3 observations of the footprint are clear: not enough clear observations to date "
        "a change (it takes at least 6).")
    assert onset.find([]).words.startswith("No observation of the footprint is clear")


# ------------------------------------------------------------- sites list and Trends


def _store(db, site_id, ndvi, start="2020-01-15"):
    rows = series(ndvi, start=start)
    db.conn.executemany(
        "insert into series_observations (place, item_id, acquired, source, kind, clear_share, "
        "ring_clear_share, ndvi, ring_ndvi, mndwi, fetched_at) values (?, ?, ?, 'test', ?, ?, 1, ?, ?, ?, ?)",
        [(spectral_series.site_place(site_id), r["item_id"], r["acquired"], r["kind"],
          r["clear_share"], r["ndvi"], r["ring_ndvi"], r["mndwi"], now()) for r in rows])


@pytest.fixture
def three_sites(db):
    from tests.conftest import add_detections

    ids = add_detections(db, 3)
    sites.build(db)
    db.execute("update detections set status = 'verified' where id = ?", [ids[0]])
    return [sites.site_of(db, i) for i in ids]


def test_sites_list_gains_the_onset_and_its_bracket(db, three_sites):
    first, second, third = three_sites
    _store(db, first, [0.85, 0.84, 0.86, 0.85, 0.2, 0.15, 0.18, 0.2])
    _store(db, second, [0.85, 0.84, 0.86, 0.84, 0.85, 0.86])
    table = sites.site_table(db).drop_duplicates("site_id").set_index("site_id")   # each period
    assert list(sites.site_table(db).columns[-2:]) == ["onset", "onset_bracket"]
    assert table.loc[first, "onset"] == "2020-04"
    assert table.loc[first, "onset_bracket"] == "2020-04-14/2020-05-14"
    assert table.loc[second, "onset"] == "not found" and pd.isna(table.loc[second, "onset_bracket"])
    assert pd.isna(table.loc[third, "onset"])         # no series stored: blank, not an answer
    assert onset.for_site(db, third).words.startswith("No time series of site")


def test_trends_count_new_sites_by_onset_month(db, three_sites):
    first, second, third = three_sites
    _store(db, first, [0.85, 0.84, 0.86, 0.85, 0.2, 0.15, 0.18, 0.2])             # 2020-04
    _store(db, second, [0.85, 0.84, 0.86, 0.85, 0.85, 0.86, 0.2, 0.15, 0.18, 0.2])  # 2020-06
    _store(db, third, [0.85, 0.8])                                                 # too short
    table = onset.new_sites_by_month(db)
    assert table.to_dict("records") == [
        {"month": "2020-04", "sites": 1, "verified_sites": 1},
        {"month": "2020-05", "sites": 0, "verified_sites": 0},
        {"month": "2020-06", "sites": 1, "verified_sites": 0}]
    assert onset.counts(db) == {"found": 2, "not_found": 0, "not_enough": 1, "no_series": 0}


def test_an_unknown_site_is_an_error_not_an_answer(db, three_sites):
    with pytest.raises(spectral_series.SeriesError, match="there is no site 99"):
        onset.for_site(db, 99)
