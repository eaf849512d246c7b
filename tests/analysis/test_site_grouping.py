"""The geometry of sites, on plain arrays: footprints within the distance are one site (also
across a UTM zone's edge), labels follow input order, and per period a site's area is its
footprints' union with its state following growth."""
import numpy as np
import pytest
import shapely

from review.analysis import site_grouping

from tests.analysis.conftest import HA, rect


def test_footprints_within_the_distance_are_one_component_numbered_in_input_order():
    geoms = np.array([rect(5_000, 0, 100), rect(0, 0, 100), rect(180, 0, 100), rect(5_150, 0, 100)])
    # 80 m between the second and third, 50 m between the first and fourth.
    assert site_grouping.components(geoms, 100.0).tolist() == [0, 1, 1, 0]
    assert site_grouping.components(geoms, 60.0).tolist() == [0, 1, 2, 0]
    assert site_grouping.components(geoms, 10_000.0).tolist() == [0, 0, 0, 0]
    assert site_grouping.components(np.array([], dtype=object), 100.0).tolist() == []


def test_footprints_on_either_side_of_a_utm_zone_edge_are_joined():
    # -54 degrees is the edge between zones 21 and 22; 0.0005 degrees is about 55 m here.
    west = shapely.box(-54.0015, -5.0, -54.0005, -4.999)
    east = shapely.box(-54.0, -5.0, -53.999, -4.999)
    assert site_grouping.components(np.array([west, east]), 100.0).tolist() == [0, 0]
    assert site_grouping.components(np.array([west, east]), 30.0).tolist() == [0, 1]


def test_per_period_rows_count_overlaps_once_and_follow_growth():
    geoms = np.array([rect(0, 0, 100), rect(0, 0, 200, 100), rect(0, 0, 200, 100), rect(100, 0, 100)])
    labels = np.zeros(4, int)
    periods = np.array(["2019", "2021", "2022", "2022"], dtype=object)
    equal_area = site_grouping.project(geoms, "EPSG:6933")
    rows = site_grouping.period_rows(labels, periods, ["2019", "2020", "2021", "2022"], equal_area, 0.10)
    assert [(r[1], r[4], r[5]) for r in rows] == [("2019", "new", 1), ("2020", "not_seen", 0),
                                                   ("2021", "expanding", 1), ("2022", "stable", 2)]
    assert [round(r[2] / HA, 3) for r in rows] == [1.0, 0.0, 2.0, 2.0]      # 2022: union, not sum
    assert [round(r[3] / HA, 3) for r in rows] == [1.0, 1.0, 2.0, 2.0]
    doubled_is_not_enough = site_grouping.period_rows(labels, periods, ["2019", "2020", "2021", "2022"],
                                                      equal_area, 1.5)
    assert doubled_is_not_enough[2][4] == "stable"
    assert site_grouping.period_rows(labels, periods, [], equal_area, 0.1) == []


def test_the_union_of_one_footprint_is_itself():
    one = rect(0, 0, 100)
    assert site_grouping.union_of(np.array([one])) is one
    both = site_grouping.union_of(np.array([rect(0, 0, 100), rect(50, 0, 100)]))
    assert both.area == pytest.approx(rect(0, 0, 150, 100).area, rel=1e-6)
