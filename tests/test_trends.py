import json
import math

import pytest
import shapely

from review import verdicts
from review.cli import main
from review.errors import ReviewError
from review.importers import import_file
from review.trends import (period_label, precision_by_period, read_regions, totals_by_period,
                           trend_table, wilson_interval)

from .conftest import FIXTURES, WEBSITE_LAYER_HA, import_squares, needs_fixtures


def test_wilson_interval_matches_hand_computation():
    # 8 of 10: centre (0.8 + z²/20) / (1 + z²/10), half z·sqrt(0.016 + z²/400) / (1 + z²/10)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(0.4345, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


@pytest.mark.parametrize("start, end, by, label", [
    ("2024-01-01", "2024-12-31", "year", "2024"), ("2025-07-01", "2025-09-30", "quarter", "2025Q3"),
    ("2024-01-01", "2024-12-31", "quarter", "2024"), ("2013-03-27", "2013-03-27", "quarter", "2013Q1"),
    (None, None, "year", None),
])
def test_period_labels(start, end, by, label):
    assert period_label(start, end, by) == label


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
