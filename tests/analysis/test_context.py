"""Context layers: polygons in any CRS, the hectares each detection and site shares with
them (EPSG:6933), kept up to date, and the filters built on them."""
import io
import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from review.analysis import context, sites
from review.cli import main
from review.detection.importers import import_file
from review.judging.queue import Filters, count, listing
from review.store import connect

from tests.analysis.conftest import HA, UTM, load, rect
from tests.conftest import FIXTURES, needs_fixtures

RAISG = FIXTURES / "labels" / "raisg_mineria_ilegal_2022" / "MineriaIlegal_pt.shp"
WEBSITE_2023 = FIXTURES / "detections" / "earthrise" / "mining_202300_simplified.geojson"


def write_layer(path, items, crs="EPSG:4326", field="name"):
    """(value, lon/lat geometry) pairs as a vector file, reprojected to `crs`."""
    frame = gpd.GeoDataFrame({field: [v for v, _ in items]}, geometry=[g for _, g in items],
                             crs="EPSG:4326").to_crs(crs)
    frame.to_file(path, driver="GPKG" if path.suffix == ".gpkg" else "GeoJSON")
    return path


def cli(capsys, *args):
    """Run a command; (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def zones_around_raisg_points(path):
    """5 km zones around RAISG's illegal-mining points, buffered in each point's UTM zone and
    kept in the points' own CRS (SIRGAS 2000, EPSG:4674), one per point, with its country."""
    points = gpd.read_file(RAISG)
    assert points.crs.to_epsg() == 4674
    parts = []
    zone = ((points.geometry.x + 180) // 6 + 1).astype(int)
    for (number, south), group in points.groupby([zone, points.geometry.y < 0]):
        utm = f"EPSG:{(32700 if south else 32600) + number}"
        parts.append(gpd.GeoDataFrame({"país": group["país"]}, geometry=group.to_crs(utm).buffer(5000, 32),
                                      crs=utm).to_crs("EPSG:4674"))
    zones = gpd.GeoDataFrame(pd.concat(parts), crs="EPSG:4674")
    zones.to_file(path, driver="GPKG")
    return zones


# --------------------------------------------------------------------- done when


@needs_fixtures
def test_zones_in_sirgas_2000_give_the_overlaps_of_an_independent_geopandas_overlay(tmp_path, capsys):
    zones = zones_around_raisg_points(tmp_path / "zones.gpkg")
    assert gpd.read_file(tmp_path / "zones.gpkg").crs.to_epsg() == 4674       # kept as they were
    db_file = tmp_path / "r.db"
    db = connect(db_file)
    import_file(db, WEBSITE_2023)
    detections = gpd.read_file(WEBSITE_2023)
    stored = [r[0] for r in db.execute("select area_ha from detections order by id")]
    assert stored == pytest.approx(detections["Mined area (ha)"].tolist())     # ids in file order
    detections["detection_id"] = range(1, len(detections) + 1)
    sites.build(db)

    status, out, err = cli(capsys, "context", "add", tmp_path / "zones.gpkg", "--name", "RAISG zones",
                           "--field", "país", "--db", db_file)
    assert status == 0, err
    assert "814 polygons" in out and "EPSG:4674" in out and "5 distinct" in out

    # Independent: the file's own features, each country's zones dissolved, overlaid in EPSG:6933.
    countries = zones.dissolve("país").reset_index().to_crs("EPSG:6933")
    reference = gpd.overlay(detections[["detection_id", "geometry"]].to_crs("EPSG:6933"), countries,
                            how="intersection", keep_geom_type=True)
    reference["expected_ha"] = reference.area / 10_000
    reference = reference[reference["expected_ha"] > 1e-4].groupby(["detection_id", "país"],
                                                                   as_index=False)["expected_ha"].sum()
    status, out, _ = cli(capsys, "context", "overlaps", "RAISG zones", "--format", "csv", "--db", db_file)
    ours = pd.read_csv(io.StringIO(out))
    assert list(ours.columns) == ["detection_id", "site_id", "value", "overlap_ha"]
    both = reference.merge(ours, left_on=["detection_id", "país"], right_on=["detection_id", "value"],
                           how="outer", indicator=True)
    assert len(reference) > 200 and set(both["_merge"]) == {"both"}     # the same pairs, no more
    assert set(ours["value"]) >= {"Ecuador", "Perú", "Venezuela"}
    error = ((both["overlap_ha"] - both["expected_ha"]).abs() / both["expected_ha"])
    # Printed to 4 decimals: the largest error is that rounding, far inside 0.5%.
    assert error.max() < 0.005 and error.median() < 1e-5
    assert ours["site_id"].notna().all()

    # Each site: its footprints unioned, against the same dissolved countries.
    members = pd.DataFrame(db.execute("select detection_id, site_id from site_members").fetchall(),
                           columns=["detection_id", "site_id"])
    by_site = detections.merge(members, on="detection_id").dissolve("site_id").reset_index()
    touched = by_site[by_site["site_id"].isin(ours["site_id"])].to_crs("EPSG:6933")
    expected = gpd.overlay(touched[["site_id", "geometry"]], countries, how="intersection")
    for row in expected.itertuples():
        (found,) = [r for r in context.site_overlaps(db, int(row.site_id)) if r["value"] == row.país]
        assert found["overlap_ha"] == pytest.approx(row.geometry.area / 10_000, rel=1e-6)


@needs_fixtures
def test_a_point_layer_is_refused_in_one_line_and_nothing_is_stored(tmp_path, capsys):
    db_file = tmp_path / "r.db"
    status, out, err = cli(capsys, "context", "add", RAISG, "--name", "points", "--db", db_file)
    assert (status, out) == (2, "")
    assert err == "error: a context layer must be polygons; MineriaIlegal_pt.shp has Point\n"
    assert connect(db_file)["context_layers"].count == 0


# --------------------------------------------------------------------- measuring


def test_a_layer_in_a_projected_crs_is_measured_in_hectares_and_shared_ground_counts_once(db, tmp_path):
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023), (rect(1_000, 0, 100), 2023),
                             (rect(5_000, 0, 100), 2023)])
    # Territory A in two overlapping parts over detection 1's east half; territory B over
    # detection 2's south quarter; detection 3 outside everything.
    layer = write_layer(tmp_path / "territories.gpkg", [
        ("A", rect(50, -50, 100, 200)), ("A", rect(50, 0, 100, 300)),
        ("B", rect(900, -100, 300, 125))], crs=UTM, field="nombre")
    summary = context.add(db, layer, "Territories")
    assert summary["field"] == "nombre" and summary["source_crs"] == UTM
    assert (summary["features"], summary["values"], summary["detections_inside"]) == (3, 2, 2)
    rows = context.overlaps(db, "Territories")
    assert [(r["detection_id"], r["value"]) for r in rows] == [(1, "A"), (2, "B")]
    assert rows[0]["overlap_ha"] == pytest.approx(0.5 * HA, rel=1e-3)     # not 1 ha: A counted once
    assert rows[1]["overlap_ha"] == pytest.approx(0.25 * HA, rel=1e-3)
    assert rows[0]["site_id"] is None                                     # no sites built
    assert context.overlaps(db, detection_id=3) == []


def test_a_site_counts_ground_seen_in_several_periods_once(db, tmp_path):
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2022), (rect(0, 0, 200, 100), 2023)])
    sites.build(db)
    context.add(db, write_layer(tmp_path / "t.geojson", [("A", rect(-100, -100, 400, 400))]), "T")
    by_detection = context.overlaps(db, "T", site_id=1)
    assert [(r["detection_id"], r["site_id"]) for r in by_detection] == [(1, 1), (2, 1)]
    assert sum(r["overlap_ha"] for r in by_detection) == pytest.approx(3 * HA, rel=1e-3)
    (site,) = context.site_overlaps(db, 1)
    assert site == {"layer": "T", "value": "A", "overlap_ha": pytest.approx(2 * HA, rel=1e-3)}


def test_a_bow_tie_is_repaired_and_the_name_field_is_guessed(db, tmp_path):
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023)])
    west, south, east, north = rect(-100, -100, 300).bounds
    bow_tie = shapely.Polygon([(west, south), (east, north), (east, south), (west, north)])
    path = tmp_path / "t.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"NOME": "Terra A", "area": 3},
         "geometry": json.loads(shapely.to_geojson(bow_tie))}]}))
    summary = context.add(db, path, "T")
    assert summary["repaired"] == 1 and summary["field"] == "NOME"
    assert "1 invalid polygons repaired" in context.summary_line(summary)
    (row,) = context.overlaps(db, "T")
    # The repaired bow tie is two triangles meeting in the middle; the square's centre is
    # where they meet, so it shares half of the square.
    assert row["value"] == "Terra A" and row["overlap_ha"] == pytest.approx(0.5 * HA, rel=0.01)


def test_without_a_name_field_features_are_numbered(db, tmp_path):
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023)])
    path = write_layer(tmp_path / "t.geojson", [(7, rect(-10, -10, 50)), (8, rect(5_000, 0, 50))],
                       field="code")
    assert context.add(db, path, "T")["field"] is None
    assert [r["value"] for r in context.overlaps(db, "T")] == ["feature 1"]
    assert context.add(db, path, "T by code", field="code")["field"] == "code"
    assert [r["value"] for r in context.overlaps(db, "T by code")] == ["7"]


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize("case", ["line", "unrepairable", "field", "name taken", "not a vector file"])
def test_bad_layers_are_refused_in_one_line_and_nothing_is_stored(tmp_path, capsys, case):
    db_file = tmp_path / "r.db"
    db = connect(db_file)
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023)])
    good = write_layer(tmp_path / "good.geojson", [("A", rect(-10, -10, 50))])
    context.add(db, good, "taken")
    before = {t: db[t].count for t in ("context_layers", "context_features", "context_overlaps")}
    path = tmp_path / "bad.geojson"
    name, extra = "new", []
    if case == "line":
        write_layer(path, [("A", rect(0, 0, 10)), ("river", shapely.LineString([(-57, -5), (-56.9, -5)]))])
        expected = "error: a context layer must be polygons; bad.geojson has LineString\n"
    elif case == "unrepairable":
        flat = shapely.Polygon([(-57, -5), (-56.99, -5), (-56.98, -5), (-57, -5)])
        write_layer(path, [("A", rect(0, 0, 10)), ("Sliver", flat)])
        expected = "error: bad.geojson: feature 2 (Sliver) is an invalid polygon"
    elif case == "field":
        path, extra = good, ["--field", "nombre"]
        expected = "error: good.geojson has no field 'nombre'; its fields are name\n"
    elif case == "name taken":
        path, name = good, "taken"
        expected = "error: there is already a context layer 'taken'; remove it first"
    else:
        path.write_text("not json at all")
        expected = "error: bad.geojson is not a vector file this tool can read"
    status, out, err = cli(capsys, "context", "add", path, "--name", name, *extra, "--db", db_file)
    assert (status, out) == (2, "")
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert {t: db[t].count for t in before} == before


def test_unknown_ids_layers_and_output_folders_are_one_line_errors(tmp_path, capsys):
    db_file = tmp_path / "r.db"
    db = connect(db_file)
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023)])
    context.add(db, write_layer(tmp_path / "t.geojson", [("A", rect(-10, -10, 50))]), "T")
    sites.build(db)
    cases = {
        ("T", "--site", "9"): "error: there is no site 9\n",
        ("T", "--detection", "9"): "error: there is no detection 9\n",
        ("Parks",): "error: there is no context layer 'Parks'; the layers are: T\n",
        ("T", "--out", tmp_path / "missing" / "o.csv"):
            f"error: cannot write {tmp_path / 'missing' / 'o.csv'}: the folder {tmp_path / 'missing'} "
            "does not exist\n",
        ("T", "--union"): "error: --union goes with --site: the site's footprints unioned\n",
    }
    for args, expected in cases.items():
        assert cli(capsys, "context", "overlaps", *args, "--db", db_file) == (2, "", expected)
    assert not (tmp_path / "missing").exists()
    assert cli(capsys, "context", "remove", "Parks", "--db", db_file)[0] == 2


# --------------------------------------------------------------------- keeping up


def test_detections_imported_later_are_measured_when_next_read(db, tmp_path):
    load(db, tmp_path, "first", [(rect(0, 0, 100), 2023)])
    context.add(db, write_layer(tmp_path / "t.geojson", [("A", rect(-100, -100, 2_000, 400))]), "T")
    load(db, tmp_path, "later", [(rect(1_000, 0, 100), 2024), (rect(9_000, 0, 100), 2024)])
    assert db.execute("select checked_through from context_layers").fetchone()[0] == 1
    assert [r["detection_id"] for r in context.overlaps(db, "T")] == [1, 2]
    assert context.listing(db)[0]["checked_through"] == 3
    assert context.refresh(db) == 0                       # up to date: nothing measured again


def test_remove_takes_the_layer_its_polygons_and_its_overlaps(db, tmp_path):
    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023)])
    context.add(db, write_layer(tmp_path / "t.geojson", [("A", rect(-10, -10, 50))]), "T")
    assert context.remove(db, "T") == {"layer": "T", "features": 1}
    assert context.listing(db) == [] and context.overlaps(db) == []
    assert count(db, Filters(status=None, context="T")) == 0
    context.add(db, write_layer(tmp_path / "t.geojson", [("A", rect(-10, -10, 50))]), "T")  # name free again
    assert len(context.overlaps(db, "T")) == 1


# --------------------------------------------------------------------- filters


@pytest.fixture
def territories(db, tmp_path):
    """Detections 1-2 in territory A, 3 in B, 4 in none; 1 and 3 verified."""
    from review.judging import verdicts

    load(db, tmp_path, "d", [(rect(0, 0, 100), 2023), (rect(1_000, 0, 100), 2024),
                             (rect(3_000, 0, 100), 2024), (rect(9_000, 0, 100), 2024)])
    context.add(db, write_layer(tmp_path / "t.geojson", [
        ("A", rect(-100, -100, 1_300, 300)), ("B", rect(2_900, -100, 300))]), "Territories")
    for detection in (1, 3):
        verdicts.record(db, detection, "ana", "verified")
    return db


def test_the_queue_keeps_only_detections_inside_a_layer_or_one_value(territories):
    db = territories
    assert [r["id"] for r in listing(db, Filters(status=None, context="Territories"), "newest")] == [2, 3, 1]
    assert [r["id"] for r in listing(db, Filters(context="Territories", context_value="A"))] == [2]
    assert count(db, Filters(status="verified", context="Territories", context_value="B")) == 1
    assert context.detection_ids_in(db, "Territories") == {1, 2, 3}
    assert context.detection_ids_in(db, "Territories", "A") == {1, 2}
    with pytest.raises(context.ContextError, match="has the value 'C'; its values include A, B"):
        context.detection_ids_in(db, "Territories", "C")
    keys = {Filters(context="Territories").key(), Filters(context="Territories", context_value="A").key(),
            Filters().key(), Filters(context_value="A").key()}
    assert len(keys) == 3          # a value without a layer selects nothing more


def test_export_and_trends_keep_only_verified_detections_inside_a_territory(territories, tmp_path, capsys):
    from review.analysis.trends import trend_table

    db = territories
    db_file = db.conn.execute("pragma database_list").fetchone()[2]
    out = tmp_path / "inside.geojson"
    assert cli(capsys, "export", out, "--context", "Territories", "--db", db_file)[:2] == \
        (0, f"2 detections written to {out}\n")
    assert {f["id"] for f in json.loads(out.read_text())["features"]} == {1, 3}
    assert cli(capsys, "export", out, "--context", "Territories=B", "--period-from", "2024-01-01",
               "--db", db_file)[1] == f"1 detections written to {out}\n"
    status, _, err = cli(capsys, "export", out, "--context", "Parks", "--db", db_file)
    assert status == 2 and err.startswith("error: there is no context layer 'Parks'")
    table = trend_table(db, context=("Territories", "A"))
    assert dict(zip(table["period"], table["detections"])) == {"2023": 1, "2024": 1}
    assert trend_table(db, context="Territories")["verified"].sum() == 2


def test_the_overlaps_command_writes_csv_and_json(territories, tmp_path, capsys):
    db_file = territories.conn.execute("pragma database_list").fetchone()[2]
    sites.build(territories)
    status, out, _ = cli(capsys, "context", "overlaps", "Territories", "--db", db_file)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "detection_id,site_id,value,overlap_ha" and len(lines) == 4
    assert lines[1].startswith("1,1,A,1.00")
    target = tmp_path / "o.json"
    assert cli(capsys, "context", "overlaps", "Territories", "--detection", "3", "--format", "json",
               "--out", target, "--db", db_file)[:2] == (0, f"1 overlaps written to {target}\n")
    (record,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert record["detection_id"] == 3 and record["value"] == "B" and isinstance(record["site_id"], int)
    assert record["overlap_ha"] == pytest.approx(HA, rel=1e-3)
    status, out, _ = cli(capsys, "context", "list", "--format", "json", "--db", db_file)
    (layer,) = [json.loads(line) for line in out.splitlines()]
    assert (layer["name"], layer["features"], layer["values"], layer["detections_inside"]) == \
        ("Territories", 2, 2, 3)
