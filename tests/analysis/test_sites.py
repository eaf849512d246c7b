"""Sites through time: grouping, per-period states and areas, stable ids, CLI, export, trends."""
import json
import math
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from review.analysis import sites
from review.analysis.site_trends import site_trend_table
from review.cli import main
from review.detection.importers import import_file
from review.judging import verdicts
from review.judging.queue import Filters, listing
from review.publishing.export import export_sites

from tests.analysis.conftest import HA, UTM, db_path, load, rect
from tests.conftest import FIXTURES, needs_fixtures

LAYERS = FIXTURES / "detections" / "earthrise"
def groups(db):
    """Member detection ids of every site, by site id."""
    found = {}
    for site_id, detection_id in db.execute("select site_id, detection_id from site_members "
                                            "order by detection_id").fetchall():
        found.setdefault(site_id, []).append(detection_id)
    return found


def by_site_period(db):
    return {(r["site_id"], r["period"]): r for r in sites.site_table(db).to_dict("records")}


# ------------------------------------------------------------------------- grouping


def test_footprints_within_the_distance_are_one_site_across_periods(db, tmp_path):
    load(db, tmp_path, "row", [(rect(0, 0, 200), 2019),
                               (rect(280, 0, 200), 2020),      # 80 m east of the first
                               (rect(610, 0, 200), 2020)])     # 130 m east of the second
    report = sites.build(db)
    assert (report.sites, report.detections, report.periods) == (2, 3, ["2019", "2020"])
    assert groups(db) == {1: [1, 2], 2: [3]}
    assert sites.build(db, distance_m=150).sites == 1
    assert groups(db) == {1: [1, 2, 3]}


def test_per_period_areas_count_overlaps_once_and_states_follow_growth(history_db):
    report = sites.build(history_db)
    assert report.periods == ["2019", "2020", "2021", "2022"]
    rows = by_site_period(history_db)
    first = [(rows[1, p]["state"], round(rows[1, p]["area_ha"] / HA, 3), rows[1, p]["detections"])
             for p in report.periods]
    assert first == [("new", 1.0, 1), ("not_seen", 0.0, 0), ("expanding", 2.0, 1), ("stable", 2.0, 2)]
    assert [round(rows[1, p]["area_ha_cumulative"] / HA, 3) for p in report.periods] == [1, 1, 2, 2]
    assert [(p, rows[2, p]["state"]) for p in ("2020", "2021", "2022")] == [
        ("2020", "new"), ("2021", "not_seen"), ("2022", "not_seen")]
    assert (2, "2019") not in rows                      # nothing before a site's first period
    assert [k for k in rows if k[0] == 3] == [(3, "2022")] and rows[3, "2022"]["state"] == "new"
    # Doubling is not expanding when the stated growth is 150%.
    sites.build(history_db, growth=1.5)
    assert by_site_period(history_db)[1, "2021"]["state"] == "stable"


def test_quarters_are_periods_when_built_by_quarter(db, tmp_path):
    path = tmp_path / "q_2023-07-01_2023-09-30.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(rect(0, 0, 100)))}]}))
    import_file(db, path)
    assert sites.build(db, by="quarter").periods == ["2023Q3"]
    with pytest.raises(sites.SiteError, match="built by quarter"):
        site_trend_table(db, by="year")


def test_detections_without_a_period_are_grouped_and_counted(db, tmp_path, capsys):
    load(db, tmp_path, "mixed", [(rect(0, 0, 100), 2020), (rect(150, 0, 100), None),
                                 (rect(5_000, 0, 100), None)])
    assert main(["sites", "build", "--db", db_path(db)]) == 0
    out = capsys.readouterr().out
    assert "2 sites from 3 detections" in out and "2 detections without a period" in out
    frame = sites.sites_frame(db).set_index("id")
    assert frame.loc[1, "detections"] == 2 and frame.loc[1, "periodless"] == 1
    assert frame.loc[2, "periodless"] == 1 and frame.loc[2, "first_period"] is None
    assert frame.loc[2, "area_ha"] == pytest.approx(HA, rel=1e-3)
    table = sites.site_table(db)
    assert list(zip(table["site_id"], table["period"])) == [(1, "2020")]   # no state without a period
    assert table["detections"].tolist() == [1]
    undated = sites.features(db, site_ids=[2])[0]["properties"]
    assert (undated["first_period"], undated["history"], undated["detection_ids"]) == (None, [], [3])


# ------------------------------------------------------------------ stable ids, merges


def test_rebuild_keeps_ids_and_a_merge_keeps_the_oldest_id(db, tmp_path):
    load(db, tmp_path, "first", [(rect(0, 0, 100), 2019), (rect(1_000, 0, 100), 2019),
                                 (rect(5_000, 0, 100), 2019)])
    sites.build(db)
    assert groups(db) == {1: [1], 2: [2], 3: [3]}
    before = sites.site_table(db)
    sites.build(db)
    pd.testing.assert_frame_equal(sites.site_table(db), before)     # deterministic
    assert sites.merges(db) == []
    # 2020 adds a footprint bridging sites 1 and 2, and one far from everything.
    load(db, tmp_path, "second", [(rect(50, 0, 1_000), 2020), (rect(20_000, 0, 100), 2020)])
    report = sites.build(db)
    assert groups(db) == {1: [1, 2, 4], 3: [3], 4: [5]}              # 2 is never reused
    assert (report.merged, report.new_sites) == (1, 1)
    (merge,) = sites.merges(db)
    assert (merge["absorbed_id"], merge["into_id"], merge["build_id"]) == (2, 1, report.build_id)
    assert merge["merged_at"]
    states = by_site_period(db)
    assert (states[1, "2020"]["state"], states[3, "2020"]["state"], states[4, "2020"]["state"]) == (
        "expanding", "not_seen", "new")


def test_a_failed_rebuild_leaves_the_previous_sites(db, tmp_path, monkeypatch):
    load(db, tmp_path, "first", [(rect(0, 0, 100), 2019), (rect(1_000, 0, 100), 2019)])
    sites.build(db)
    load(db, tmp_path, "second", [(rect(50, 0, 1_000), 2020)])

    def broken(*args, **kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(sites.shapely, "to_geojson", broken)       # fails inside the transaction
    with pytest.raises(RuntimeError):
        sites.build(db)
    monkeypatch.undo()
    assert groups(db) == {1: [1], 2: [2]}
    assert db["site_builds"].count == 1 and sites.merges(db) == []


@pytest.mark.parametrize("distance", [-1, 0, 10_001, math.nan, "far"])
def test_bad_distances_are_refused_in_one_sentence(db, distance):
    with pytest.raises(sites.SiteError, match="must be") as caught:
        sites.build(db, distance_m=distance)
    assert "--" not in str(caught.value) and str(caught.value).count(". ") == 0


def test_cli_refuses_a_bad_distance_without_touching_the_database(tmp_path, capsys):
    target = tmp_path / "new.db"
    assert main(["sites", "build", "--distance", "20000", "--db", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the distance that joins footprints into one site must be") \
        and "10,000 m" in err
    assert not target.exists()


# ------------------------------------------------------------------------ status


def test_site_status_comes_from_verdicts_without_changing_detections(db, tmp_path):
    far = [rect(5_000 * k, 0, 100) for k in range(4)]
    near = [rect(5_000 * k + 150, 0, 100) for k in range(4)]
    load(db, tmp_path, "pairs", [(g, 2020) for pair in zip(far, near) for g in pair])
    sites.build(db)                             # sites 1..4, each detections (2k-1, 2k)
    verdicts.record(db, 1, "ana", "verified")
    verdicts.record(db, 2, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 3, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 4, "ana", "false_positive", reason="other")
    verdicts.record(db, 5, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 7, "ana", "false_positive", reason="riverbank")
    verdicts.record(db, 8, "ana", "unsure")
    status = dict(zip(sites.sites_frame(db)["id"], sites.sites_frame(db)["status"]))
    assert status == {1: "verified", 2: "false_positive", 3: "pending", 4: "unsure"}
    detections = dict(db.execute("select id, status from detections").fetchall())
    assert detections[2] == "false_positive" and detections[6] == "pending"
    assert sites.site_table(db, status="verified")["site_id"].tolist() == [1]
    assert set(sites.site_table(db, status="pending")["status"]) == {"pending"}


# -------------------------------------------------------------------------- CLI


def test_cli_list_has_the_stated_columns_and_filters(history_db, capsys):
    path = db_path(history_db)
    assert main(["sites", "list", "--db", path]) == 2
    assert "error: sites have not been built yet" in capsys.readouterr().err
    assert main(["sites", "build", "--db", path]) == 0
    capsys.readouterr()
    assert main(["sites", "list", "--db", path]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split(",")[:10] == ["site_id", "period", "area_ha", "state", "detections",
                                        "verified", "false_positive", "pending", "lon", "lat"]
    assert len(lines) == 1 + 4 + 3 + 1           # site 1 from 2019, site 2 from 2020, site 3 in 2022
    assert main(["sites", "list", "--state", "expanding", "--format", "json", "--db", path]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert list(record)[:10] == sites.LIST_COLUMNS
    assert (record["site_id"], record["period"], record["pending"]) == (1, "2021", 1)
    assert record["area_ha"] == pytest.approx(2 * HA, rel=1e-3)
    assert -57.01 < record["lon"] < -56.99 and -5.01 < record["lat"] < -4.99
    assert main(["sites", "list", "--period", "2022", "--db", path]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r.split(",")[3] for r in rows] == ["stable", "not_seen", "new"]


# ----------------------------------------------------------------------- export


def test_sites_export_layer_is_rfc7946_with_history(history_db, tmp_path, capsys):
    sites.build(history_db)
    out = tmp_path / "sites.geojson"
    assert main(["export", str(out), "--layer", "sites", "--status", "all",
                 "--db", db_path(history_db)]) == 0
    assert "3 sites written" in capsys.readouterr().out
    collection = json.loads(out.read_text())
    assert "crs" not in collection and len(collection["features"]) == 3
    first = collection["features"][0]
    geometry = shapely.geometry.shape(first["geometry"])
    assert geometry.geom_type == "Polygon" and geometry.exterior.is_ccw     # dissolved, right-hand rule
    west, south, east, north = geometry.bounds
    assert -57.01 < west < east < -56.99 and -5.01 < south < north < -4.99
    area = gpd.GeoSeries([geometry], crs="EPSG:4326").to_crs("EPSG:6933").area[0] / 10_000
    assert area == pytest.approx(2 * HA, rel=1e-3)
    props = first["properties"]
    assert (props["site_id"], props["status"], props["detection_ids"]) == (1, "pending", [1, 3, 4, 5])
    assert [(h["period"], h["state"]) for h in props["history"]] == [
        ("2019", "new"), ("2020", "not_seen"), ("2021", "expanding"), ("2022", "stable")]
    assert props["history"][2]["area_ha"] == pytest.approx(2 * HA, rel=1e-3)
    # The default status is verified, for sites as for detections; the detections layer stays.
    assert export_sites(history_db, tmp_path / "none.geojson", Filters(status="verified")) == 0
    verdicts.record(history_db, 6, "ana", "verified")
    assert export_sites(history_db, tmp_path / "v.geojson", Filters(status="verified")) == 1
    assert main(["export", str(tmp_path / "d.geojson"), "--status", "all", "--site", "1",
                 "--db", db_path(history_db)]) == 0
    exported = json.loads((tmp_path / "d.geojson").read_text())["features"]
    assert sorted(f["properties"]["id"] for f in exported) == [1, 3, 4, 5]
    assert "source" in exported[0]["properties"]
    assert [r["id"] for r in listing(history_db, Filters(site_id=2))] == [2]
    capsys.readouterr()
    assert main(["queue", "--site", "1", "--db", db_path(history_db)]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [1, 3, 4, 5]
    flat = tmp_path / "sites.gpkg"
    assert export_sites(history_db, flat, Filters(status=None, sources=["layers"])) == 3
    frame = gpd.read_file(flat)
    assert json.loads(frame.loc[0, "detection_ids"]) == [1, 3, 4, 5]


# ---------------------------------------------------------------- real website layers

BOX = (-57.5, -8.0, -54.5, -4.0)          # Tapajós, inside UTM zone 21


def _subset(tmp_path, year):
    frame = gpd.read_file(LAYERS / f"mining_{year}00_simplified.geojson")
    part = frame.cx[BOX[0]:BOX[2], BOX[1]:BOX[3]]
    path = tmp_path / f"mining_{year}00_tapajos.geojson"
    part.to_file(path, driver="GeoJSON")
    return path


def _independent_sites(db, distance=100.0):
    """Sites recomputed with geopandas: footprints buffered by half the distance in UTM 21S,
    dissolved, spatially joined back; areas by a dissolve per component and year in EPSG:6933."""
    rows = db.execute("select id, geometry, period_start from detections order by id").fetchall()
    frame = gpd.GeoDataFrame({"id": [r[0] for r in rows], "year": [r[2][:4] for r in rows]},
                             geometry=shapely.from_geojson([r[1] for r in rows]), crs="EPSG:4326")
    utm = frame.to_crs(UTM)
    blobs = gpd.GeoDataFrame(geometry=[utm.buffer(distance / 2, quad_segs=32).union_all()],
                             crs=UTM).explode(index_parts=False).reset_index(drop=True)
    joined = gpd.sjoin(utm, blobs, predicate="intersects")
    assert joined["id"].is_unique
    frame["component"] = frame["id"].map(dict(zip(joined["id"], joined["index_right"])))
    areas = frame.to_crs("EPSG:6933").dissolve(by=["component", "year"]).area / 10_000
    states = {}
    for component, part in areas.groupby(level=0):
        previous = None
        for (_, year), area in part.items():
            states[component, year] = ("new" if previous is None else
                                       "expanding" if area > previous * 1.1 else "stable")
            previous = area
    members = frame.groupby("component")["id"].apply(lambda s: frozenset(s))
    return members, areas, states


@needs_fixtures
def test_real_layers_match_an_independent_geopandas_computation(db, tmp_path):
    for year in (2022, 2023, 2024):
        import_file(db, _subset(tmp_path, year))
    report = sites.build(db)
    members, areas, states = _independent_sites(db)
    assert report.sites == len(members) > 500
    mine = {frozenset(ids) for ids in groups(db).values()}
    assert mine == set(members)
    site_of = {ids: site_id for site_id, ids in ((k, frozenset(v)) for k, v in groups(db).items())}
    table = by_site_period(db)
    seen = {k: r for k, r in table.items() if r["detections"]}
    assert len(seen) == len(areas)
    for (component, year), area in areas.items():
        row = seen[site_of[members[component]], year]
        assert row["area_ha"] == pytest.approx(area, rel=1e-6)
        assert row["state"] == states[component, year]
    expected = pd.Series(states).value_counts().to_dict()
    counted = pd.Series([r["state"] for r in seen.values()]).value_counts().to_dict()
    assert counted == expected and set(expected) == {"new", "expanding", "stable"}


@needs_fixtures
def test_real_layers_rebuild_keeps_ids_of_sites_that_did_not_merge(db, tmp_path):
    for year in (2022, 2023):
        import_file(db, _subset(tmp_path, year))
    sites.build(db)
    before = groups(db)
    import_file(db, _subset(tmp_path, 2024))
    report = sites.build(db)
    after = groups(db)
    absorbed = {m["absorbed_id"]: m["into_id"] for m in sites.merges(db)}
    assert report.merged == len(absorbed) > 0
    for site_id, ids in before.items():
        if site_id in absorbed:
            into = absorbed[site_id]
            assert into < site_id and set(ids) <= set(after[into])        # oldest id kept
        else:
            assert set(ids) <= set(after[site_id])
    assert max(after) == max(before) + report.new_sites


@needs_fixtures
def test_all_seven_website_layers_build_in_well_under_a_minute(db):
    counts = {}
    for year in range(2018, 2025):
        counts[str(year)] = import_file(db, LAYERS / f"mining_{year}00_simplified.geojson").added
    started = time.perf_counter()
    report = sites.build(db)
    assert time.perf_counter() - started < 60
    table = sites.site_table(db)
    assert table.groupby("period")["detections"].sum().to_dict() == counts
    assert report.detections == sum(counts.values()) and report.periodless == 0
    assert sorted(table["site_id"].unique()) == list(range(1, report.sites + 1))
    # Sites never share footprints, so their 2018 areas add up to the 2018 layer dissolved.
    rows = db.execute("select geometry from detections where period_start like '2018%'").fetchall()
    union = gpd.GeoSeries(shapely.from_geojson([r[0] for r in rows]), crs="EPSG:4326") \
        .to_crs("EPSG:6933").union_all()
    first = table[table["period"] == "2018"]
    assert first["area_ha"].sum() == pytest.approx(union.area / 10_000, rel=1e-6)
    assert (first["state"] == "new").all()
    cumulative = site_trend_table(db)["area_ha_cumulative"]
    assert cumulative.is_monotonic_increasing
