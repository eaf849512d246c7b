import json

import pytest
import shapely

from review.detection.importers import (FieldMap, ImportFailed, example_name, import_example,
                                        import_file, period_of)
from review.errors import ReviewError

from tests.conftest import FIXTURES, needs_fixtures

DETECTIONS = FIXTURES / "detections" / "earthrise"
LABELS = FIXTURES / "labels"
REAL_FILES = sorted(DETECTIONS.glob("*.geojson")) + sorted(LABELS.glob("*.geojson")) + [
    LABELS / "raisg_mineria_ilegal_2022" / "MineriaIlegal_pt.shp",
    LABELS / "texty_amber_coordinates.csv",
]


@pytest.mark.parametrize("value, period", [
    (202400, ("2024-01-01", "2024-12-31")), (202503, ("2025-07-01", "2025-09-30")),
    (201800.0, ("2018-01-01", "2018-12-31")), (2019, ("2019-01-01", "2019-12-31")),
    ("2013", ("2013-01-01", "2013-12-31")), ("2013-03-27T00:00:00", ("2013-03-27", "2013-03-27")),
    ("2020-01-01/2020-06-30", ("2020-01-01", "2020-06-30")), (None, (None, None)),
    (float("nan"), (None, None)), ("sin información", (None, None)),
])
def test_periods_are_read_from_every_convention(value, period):
    assert period_of(value) == period


@needs_fixtures
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_every_real_fixture_imports_and_a_second_import_adds_nothing(db, path):
    first = import_file(db, path)
    assert first.added == first.features > 0
    again = import_file(db, path)
    assert again.added == 0 and again.already_present == first.features
    assert db["detections"].count == first.features
    row = next(db["detections"].rows)
    geometry = shapely.from_geojson(row["geometry"])
    assert geometry.geom_type in ("Polygon", "MultiPolygon") and geometry.is_valid
    assert -180 <= row["lon"] <= 180 and -90 <= row["lat"] <= 90


@needs_fixtures
def test_website_layer_keeps_mined_area_and_reads_year_as_yyyyqq(db):
    import_file(db, DETECTIONS / "mining_202400_simplified.geojson")
    total, start, end, sources = db.execute(
        "select round(sum(area_ha), 1), min(period_start), max(period_end), "
        "group_concat(distinct area_source) from detections").fetchone()
    assert total == 78930.7                      # the published sum, listed in the fixtures README
    assert (start, end) == ("2024-01-01", "2024-12-31")
    assert sources == "Mined area (ha)"


@needs_fixtures
def test_raw_patches_keep_their_score_model_and_period(db):
    report = import_file(db, DETECTIONS / "amazon_1_48px_v3.7_0.50_2023-01-01_2023-12-31.geojson",
                         source="amazon 2023")
    assert "score in pred" in report.vintage
    row = db.execute("select min(score), model_id, threshold, period_start, period_end, "
                     "area_source from detections").fetchone()
    assert row[0] >= 0.5 and row[1:] == ("48px_v3.7", 0.5, "2023-01-01", "2023-12-31", "footprint")


@needs_fixtures
def test_diff_file_with_invalid_polygons_is_repaired(db):
    report = import_file(db, DETECTIONS / "amazon_basin_48px_v3.2-3.7ensemble_dissolved-0.6_2023diff.geojson")
    assert report.repaired == 80 and "diff file" in report.vintage
    assert db.execute("select round(sum(area_ha), 1) from detections").fetchone()[0] == 25806.4


@needs_fixtures
def test_raisg_points_are_reprojected_from_sirgas_and_get_square_footprints(db):
    import_file(db, LABELS / "raisg_mineria_ilegal_2022" / "MineriaIlegal_pt.shp", point_size_m=200)
    row = db.execute("select geometry, lon, lat, area_ha, period_start, properties from detections "
                     "where period_start is not null limit 1").fetchone()
    square = shapely.from_geojson(row[0])
    assert len(square.exterior.coords) == 5
    assert row[3] == pytest.approx(4.0, rel=0.02)           # 200 m x 200 m = 4 ha
    assert -82 < row[1] < -34 and -20 < row[2] < 13          # South America, in lon/lat
    props = json.loads(row[5])
    assert props["fecha_situ"][:4] == row[4][:4]
    assert "país" in props                                   # original field names kept verbatim


def test_geopackage_and_zipped_shapefile_import(db, tmp_path):
    import zipfile

    import geopandas as gpd

    frame = gpd.GeoDataFrame({"confidence": [0.8, 0.6], "site": ["a", "b"]},
                             geometry=[shapely.Point(-60.0, -3.0), shapely.box(-60.1, -3.1, -60.09, -3.09)],
                             crs="EPSG:4326").to_crs("EPSG:32720")          # stored in UTM
    frame.to_file(tmp_path / "sites.gpkg", driver="GPKG")
    report = import_file(db, tmp_path / "sites.gpkg")
    assert report.added == 2 and "score in confidence" in report.vintage
    assert sorted(round(r["lon"], 1) for r in db["detections"].rows) == [-60.1, -60.0]
    frame[frame.geom_type == "Polygon"].to_file(tmp_path / "sites.shp")   # one type per shapefile
    with zipfile.ZipFile(tmp_path / "sites.zip", "w") as archive:
        for part in tmp_path.glob("sites.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                archive.write(part, part.name)
    assert import_file(db, tmp_path / "sites.zip", source="zipped").added == 1


def test_csv_with_mapped_fields(db, tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("site,latitude,longitude,conf,seen\nA,-5.1,-57.5,0.9,2021\nB,-5.2,-57.6,0.4,202203\n")
    report = import_file(db, path, fields=FieldMap(score="conf", period="seen", id="site"))
    assert report.added == 2
    rows = {r["external_id"]: r for r in db["detections"].rows}
    assert rows["site:A"]["score"] == 0.9 and rows["site:A"]["period_end"] == "2021-12-31"
    assert rows["site:B"]["period_start"] == "2022-07-01"


@pytest.mark.parametrize("content, message", [
    ("", "not a file of detections this tool can read"),
    ("{\"type\": \"FeatureCollection\", \"features\": []}", "no features"),
    ("{\"type\": \"FeatureCollection\", \"features\": [{\"type\": \"Feature\", \"properties\": {}, "
     "\"geometry\": {\"type\": \"Point\", \"coordinates\": [200, 95]}}]}", "out of range"),
    ("{\"type\": \"FeatureCollection\", \"features\": [{\"type\": \"Feature\", \"properties\": {}, "
     "\"geometry\": {\"type\": \"LineString\", \"coordinates\": [[0, 0], [1, 1]]}}]}", "LineString"),
    ("{\"type\": \"FeatureCollection\", \"features\": [{\"type\": \"Feature\", \"properties\": {}, "
     "\"geometry\": null}]}", "no geometry"),
    ("not json at all {", "not a file of detections this tool can read"),
])
def test_bad_files_are_refused_and_change_nothing(db, tmp_path, content, message):
    good = tmp_path / "good.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": 0.7},
         "geometry": {"type": "Point", "coordinates": [-57.5, -5.1]}}]}))
    import_file(db, good)
    bad = tmp_path / "bad.geojson"
    bad.write_text(content)
    with pytest.raises(ImportFailed, match=message):
        import_file(db, bad)
    assert db["detections"].count == 1 and db["imports"].count == 1


def test_csv_without_coordinates_is_refused(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,value\na,1\n")
    with pytest.raises(ImportFailed, match="latitude and longitude"):
        import_file(db, path)


def test_unknown_mapped_field_is_named(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("lat,lon\n1,2\n")
    with pytest.raises(ImportFailed, match="no field 'conf' for the score"):
        import_file(db, path, fields=FieldMap(score="conf"))


@pytest.fixture
def served(tmp_path):
    """Files in tmp_path/www over HTTP on 127.0.0.1."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_example_is_downloaded_then_imported_once(db, tmp_path, served):
    folder, url = served
    name = "layer_2023-01-01_2023-12-31.geojson"
    features = [{"type": "Feature", "properties": {"pred": 0.7, "id": f"e{i}"},
                 "geometry": json.loads(shapely.to_geojson(shapely.box(-57 + i, -5, -56.99 + i, -4.99)))}
                for i in range(3)]
    (folder / name).write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert example_name(url + name) == name and example_name("https://h/data/b.geojson/") == "b.geojson"
    seen = []
    report = import_example(db, url + name, tmp_path / "examples",
                            download_progress=lambda done, total, what: seen.append(("download", what)),
                            import_progress=lambda done, total, what: seen.append(("import", done)))
    assert (report.source, report.added) == ("example: layer_2023-01-01_2023-12-31", 3)
    assert (tmp_path / "examples" / name).read_bytes() == (folder / name).read_bytes()
    assert seen[0] == ("download", name) and seen[-1] == ("import", 3)
    assert {r["period_start"] for r in db["detections"].rows} == {"2023-01-01"}
    assert import_example(db, url + name, tmp_path / "examples").added == 0


def test_a_failed_example_download_imports_nothing(db, tmp_path, served):
    _, url = served
    with pytest.raises(ReviewError, match="did not send missing.geojson"):
        import_example(db, url + "missing.geojson", tmp_path / "examples")
    assert db["detections"].count == 0 and not list((tmp_path / "examples").glob("*.geojson"))
