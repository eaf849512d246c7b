import json

import pandas as pd
import pytest
import shapely
import shapely.affinity

from review.analysis.trends import (area_of_interest, has_quarters, labelled_frame,
                                    precision_by_period, read_regions, set_hidden, source_table,
                                    totals_by_period, trend_inputs, trend_table)
from review.cli import main
from review.detection.importers import import_file
from review.errors import ReviewError
from review.judging import verdicts
from review.statistics import wilson_interval

from tests.conftest import (FIXTURES, WEBSITE_LAYER_HA, add_detections, import_squares,
                            needs_fixtures)


@needs_fixtures
def test_yearly_website_layers_give_the_published_area_totals(db, capsys):
    for year in WEBSITE_LAYER_HA:
        import_file(db, FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson")
    table = trend_table(db)
    assert dict(zip(table["period"], table["area_ha_all"].round(1))) == {str(y): a for y, a in WEBSITE_LAYER_HA.items()}
    assert table["area_ha_cumulative"].iloc[-1] == pytest.approx(sum(WEBSITE_LAYER_HA.values()), abs=0.5)
    assert (table["area_ha_from_footprint"] == 0).all()
    db_path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["trends", "--db", db_path]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header = lines[0].split(",")
    assert header[:8] == ["period", "detections", "verified", "false_positive", "unsure",
                          "pending", "area_ha_all", "area_ha_verified"]
    totals = {int(l.split(",")[0]): float(l.split(",")[6]) for l in lines[1:]}
    assert totals == pytest.approx(WEBSITE_LAYER_HA, abs=0.05)


def test_statuses_precision_quarters_and_regions(db, tmp_path):
    import_squares(db, tmp_path)
    verdicts.record(db, 1, "ana", "verified")
    verdicts.record(db, 2, "ana", "verified")
    verdicts.record(db, 3, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 4, "ana", "unsure")
    (row,) = trend_table(db, by="quarter").to_dict("records")
    assert row["period"] == "2023Q3"
    assert (row["verified"], row["false_positive"], row["unsure"], row["pending"]) == (2, 1, 1, 2)
    assert row["precision"] == pytest.approx(2 / 3)
    assert (row["precision_low"], row["precision_high"]) == pytest.approx(wilson_interval(2, 3))
    assert row["area_ha_verified"] == pytest.approx(row["area_ha_all"] / 3, rel=0.01)
    by_field = trend_table(db, region_field="country")
    assert dict(zip(by_field["region"], by_field["detections"])) == {"BR": 4, "PE": 2}
    boundary = tmp_path / "regions.geojson"
    boundary.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "west"},
         "geometry": json.loads(shapely.to_geojson(shapely.box(-61, -6, -57.5, -4)))}]}))
    by_region = trend_table(db, regions=read_regions(boundary))
    assert dict(zip(by_region["region"], by_region["detections"])) == {"west": 3, "outside": 3}


def test_regions_must_be_polygons(tmp_path):
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}))
    with pytest.raises(ReviewError, match="regions must be polygons"):
        read_regions(points)


def test_the_area_of_interest_is_the_union_of_a_boundary_files_polygons(tmp_path):
    boundary = tmp_path / "aoi.geojson"
    boxes = [shapely.box(-61, -6, -59, -4), shapely.box(-60, -5, -58, -3), shapely.box(10, 10, 11, 11)]
    boundary.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"part {i}"},
         "geometry": json.loads(shapely.to_geojson(box))} for i, box in enumerate(boxes)]}))
    area = area_of_interest(boundary)
    assert area.equals(shapely.union_all(boxes))
    assert area.area == pytest.approx(4 + 4 - 1 + 1)            # the overlap counted once
    assert area.bounds == (-61.0, -6.0, 11.0, 11.0)


def test_empty_database_gives_an_empty_table(db, capsys):
    assert trend_table(db).empty
    db_path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["trends", "--db", db_path, "--format", "json"]) == 0
    assert capsys.readouterr().out == ""


def test_totals_by_period_sum_regions_and_recompute_precision(db, tmp_path):
    import_squares(db, tmp_path)
    for detection in (1, 2, 5):
        verdicts.record(db, detection, "ana", "verified")
    verdicts.record(db, 3, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 6, "ana", "false_positive", reason="cloud")
    by_field = trend_table(db, region_field="country")                 # BR: 1-4, PE: 5-6
    assert len(by_field) == 2
    (total,) = totals_by_period(by_field).to_dict("records")
    (plain,) = trend_table(db).to_dict("records")
    assert total["period"] == "2023" and total["detections"] == 6
    assert (total["verified"], total["false_positive"]) == (3, 2)
    assert total["precision"] == pytest.approx(3 / 5)                  # not the sum of 2/3 and 1/2
    assert (total["precision_low"], total["precision_high"]) == pytest.approx(wilson_interval(3, 5))
    for column in ("area_ha_all", "area_ha_verified", "area_ha_cumulative", "precision"):
        assert total[column] == pytest.approx(plain[column])
    assert total["area_ha_verified_cumulative"] == pytest.approx(plain["area_ha_verified"])


def test_precision_by_period_lists_reviewed_periods_with_error_bars(db, tmp_path):
    assert precision_by_period(totals_by_period(trend_table(db))).empty
    import_squares(db, tmp_path)
    quarters = totals_by_period(trend_table(db, by="quarter"))
    assert precision_by_period(quarters).empty                        # nothing reviewed yet
    verdicts.record(db, 1, "ana", "verified")
    verdicts.record(db, 2, "ana", "unsure")
    (row,) = precision_by_period(totals_by_period(trend_table(db))).to_dict("records")
    low, high = wilson_interval(1, 1)
    assert (row["period"], row["verified"], row["false_positive"], row["precision"]) == ("2023", 1, 0, 1.0)
    assert (row["below"], row["above"]) == pytest.approx((1.0 - low, high - 1.0))


def test_cumulative_areas_run_over_periods(db):
    for year in (2021, 2022):
        features = [{"type": "Feature", "properties": {"pred": 0.9, "Mined area (ha)": 10.0 * (year - 2020),
                                                       "year": year * 100,
                                                       "country": "BR" if year == 2021 else "PE"},
                     "geometry": json.loads(shapely.to_geojson(shapely.box(-60 + year - 2021, -5, -59.99 + year - 2021, -4.99)))}]
        path = db.conn.execute("pragma database_list").fetchone()[2].replace("review.db", f"y{year}.geojson")
        with open(path, "w") as out:
            json.dump({"type": "FeatureCollection", "features": features}, out)
        import_file(db, path)
    verdicts.record(db, 1, "ana", "verified")
    for table in (trend_table(db), trend_table(db, region_field="country")):
        totals = totals_by_period(table)     # by country: each region has one period only
        assert totals["period"].tolist() == ["2021", "2022"]
        assert totals["area_ha_cumulative"].tolist() == pytest.approx([10.0, 30.0])
        assert totals["area_ha_verified_cumulative"].tolist() == pytest.approx([10.0, 10.0])


# ------------------------------------------------------------- ground counted once

EARTHRISE = FIXTURES / "detections" / "earthrise"
WEBSITE_2023 = EARTHRISE / "mining_202300_simplified.geojson"
DIFF_2023 = EARTHRISE / "amazon_basin_48px_v3.2-3.7ensemble_dissolved-0.6_2023diff.geojson"
RAW_2023 = EARTHRISE / "amazon_1_48px_v3.7_0.50_2023-01-01_2023-12-31.geojson"


def _area_2023(db, capsys) -> float:
    """2023's area_ha_all as `python -m review trends --by year` prints it."""
    db_path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["trends", "--by", "year", "--db", db_path]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header = lines[0].split(",")
    (row,) = [dict(zip(header, l.split(","))) for l in lines[1:] if l.startswith("2023,")]
    return float(row["area_ha_all"])


@needs_fixtures
def test_the_same_sites_from_two_sources_are_counted_once(db, capsys):
    # The website layer and the 2023 diff file give the same 5,573 sites, 25,806.4 ha each.
    import_file(db, WEBSITE_2023)
    import_file(db, DIFF_2023)
    assert round(_area_2023(db, capsys), 1) == 25806.4
    (row,) = trend_table(db).to_dict("records")
    assert row["area_ha_listed"] == pytest.approx(51612.8, abs=0.1)   # what a plain sum gives
    per_source = source_table(db)
    assert sorted(per_source["area_ha"].round(1)) == [25806.4, 25806.4]
    assert set(per_source["basis"]) == {"mined-area attribute"}


@needs_fixtures
def test_overlapping_patches_of_a_raw_file_count_their_union(db, capsys):
    import_file(db, RAW_2023)
    assert _area_2023(db, capsys) == pytest.approx(33607.7, rel=0.005)
    (row,) = trend_table(db).to_dict("records")
    assert row["area_ha_listed"] == pytest.approx(48902.4, abs=0.1)
    assert row["area_ha_from_footprint"] == pytest.approx(row["area_ha_all"])


@needs_fixtures
def test_a_website_layer_and_a_raw_file_together_count_shared_ground_once(db, capsys):
    import_file(db, WEBSITE_2023)
    import_file(db, RAW_2023)
    total = _area_2023(db, capsys)
    assert 33607.7 < total < 59414.1
    (row,) = trend_table(db).to_dict("records")
    # The website layer's own attribute first; the raw file adds only ground outside it.
    assert row["area_ha_from_attribute"] == pytest.approx(25806.4, abs=0.05)
    assert 0 < row["area_ha_from_footprint"] < 33607.7
    series = dict(zip(source_table(db)["source"], source_table(db)["area_ha"]))
    assert series[WEBSITE_2023.stem] == pytest.approx(25806.4, abs=0.05)
    assert series[RAW_2023.stem] == pytest.approx(33607.7, rel=0.005)


def test_both_tables_from_one_read_equal_each_read_on_its_own(db):
    # The Trends page reads the detections once for both tables (labelled_frame).
    import_file(db, WEBSITE_2023)
    import_file(db, RAW_2023)
    verdicts.record(db, 3, "ana", "verified")
    frame = labelled_frame(db)
    pd.testing.assert_frame_equal(trend_table(db, frame=frame), trend_table(db))
    pd.testing.assert_frame_equal(source_table(db, frame=frame), source_table(db))


def test_overlapping_footprints_count_once_and_verified_ground_comes_first(db, tmp_path):
    # Two 1 km squares overlapping by half, one verified: 1.5 km² in all, the shared half
    # counted as verified.
    square = shapely.box(-60.0, -5.0, -59.99, -4.99)
    shifted = shapely.affinity.translate(square, xoff=0.005)
    path = tmp_path / "two.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"date": "2023-05-01"}, "geometry": json.loads(shapely.to_geojson(g))}
        for g in (square, shifted)]}))
    import_file(db, path)
    verdicts.record(db, 2, "ana", "verified")
    (row,) = trend_table(db).to_dict("records")
    one = row["area_ha_listed"] / 2
    assert row["area_ha_all"] == pytest.approx(1.5 * one, rel=0.01)
    assert row["area_ha_verified"] == pytest.approx(one, rel=0.01)
    assert row["area_ha_pending"] == pytest.approx(0.5 * one, rel=0.01)


def test_quarterly_periods_give_quarters_where_the_year_view_gives_years(db, tmp_path):
    # A website-style layer with `year` as YYYYQQ: 202501 and 202503 are quarters of 2025.
    features = [{"type": "Feature", "properties": {"year": year, "Mined area (ha)": area},
                 "geometry": json.loads(shapely.to_geojson(shapely.box(-60 + n, -5, -59.99 + n, -4.99)))}
                for n, (year, area) in enumerate([(202501, 2.0), (202501, 3.0), (202503, 4.0), (202400, 7.0)])]
    path = tmp_path / "quarterly.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    import_file(db, path)
    by_quarter = trend_table(db, by="quarter")
    assert dict(zip(by_quarter["period"], by_quarter["area_ha_all"])) == {
        "2024": 7.0, "2025Q1": 5.0, "2025Q3": 4.0}
    by_year = trend_table(db, by="year")
    assert dict(zip(by_year["period"], by_year["area_ha_all"])) == {"2024": 7.0, "2025": 9.0}
    assert has_quarters(db)


def test_yearly_periods_only_have_no_quarters(db, tmp_path):
    import_squares(db, tmp_path)
    db.execute("update detections set period_start = '2023-01-01', period_end = '2023-12-31'")
    assert not has_quarters(db)


def test_a_hidden_source_or_run_leaves_trends_and_comes_back(db, tmp_path):
    import_squares(db, tmp_path)
    add_detections(db, 2, source="run:tiny", period_start="2017-01-01", period_end="2017-12-31")
    assert list(trend_table(db)["period"]) == ["2017", "2023"]
    set_hidden(db, "source", "run:tiny", True, by="ana")
    assert list(trend_table(db)["period"]) == ["2023"]
    assert list(trend_table(db, include_hidden=True)["period"]) == ["2017", "2023"]
    inputs = trend_inputs(db)
    assert inputs.loc[inputs["key"] == "run:tiny", "hidden"].item()
    set_hidden(db, "source", "run:tiny", False)
    assert list(trend_table(db)["period"]) == ["2017", "2023"]
    with pytest.raises(ReviewError, match="only a source or a run"):
        set_hidden(db, "scene", "1", True)


def test_every_status_has_its_column_and_the_columns_add_up(db):
    """With second opinions on, a period's waiting and disputed detections are counted in
    their own columns (the columns add up to the detections); so are a site's."""
    from review.analysis import sites
    from review.judging import verdicts

    from tests.conftest import add_detections

    ids = add_detections(db, 10)                       # two per year, 2018 to 2022
    verdicts.set_second_opinion(db, "verified")
    verdicts.record(db, ids[0], "ana", "verified")                  # 2018: waits
    verdicts.record(db, ids[5], "ana", "verified")                  # 2018: disputed
    verdicts.record(db, ids[5], "bo", "false_positive", reason="cloud")
    table = trend_table(db).set_index("period")
    row = table.loc["2018"]
    assert (row["needs_second_opinion"], row["disputed"], row["pending"]) == (1, 1, 0)
    statuses = ["verified", "false_positive", "unsure", "pending", "needs_second_opinion", "disputed"]
    assert (table[statuses].sum(axis=1) == table["detections"]).all()
    sites.build(db)
    frame = sites.sites_frame(db)
    waiting = frame[frame["needs_second_opinion"] > 0]
    assert len(waiting) == 1 and waiting["status"].iloc[0] == "needs_second_opinion"
    assert (frame[statuses].sum(axis=1) == frame["detections"] - frame["periodless"]).all() or \
        (frame[statuses].sum(axis=1) == frame["detections"]).all()


@needs_fixtures
def test_detections_without_a_period_beside_dated_ones_are_left_out_not_a_crash(db, capsys):
    """The published 2023 positives carry no period; beside a dated website layer, Trends
    counts the layer's detections and leaves the undated ones out (it used to fail with
    "'float' object is not subscriptable")."""
    import_file(db, FIXTURES / "labels" / "earthrise_v3.3_2023_positives.geojson")
    import_file(db, FIXTURES / "detections" / "earthrise" / "mining_202300_simplified.geojson")
    dated = db.conn.execute("select count(*) from detections where period_start is not null").fetchone()[0]
    undated = db.conn.execute("select count(*) from detections where period_start is null").fetchone()[0]
    assert dated and undated
    table = trend_table(db)
    assert list(table["period"]) == ["2023"] and table["detections"].sum() == dated
    assert table["area_ha_all"].round(1).tolist() == [WEBSITE_LAYER_HA[2023]]
    assert source_table(db)["detections"].sum() == dated
    db_path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["trends", "--db", db_path]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1].startswith("2023,")
