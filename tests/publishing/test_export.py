import io
import json

import numpy as np
import pytest
import shapely
from PIL import Image

from review.cli import main
from review.detection.imagery import open_tile
from review.detection.importers import import_file
from review.detection.runs import scene_record
from review.errors import ReviewError
from review.judging import verdicts
from review.judging.queue import Filters
from review.publishing.export import (evidence_png, export, export_bytes, training_samples,
                                      training_samples_bytes)
from review.store import add_scene

from tests.conftest import FIXTURES, needs_fixtures

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"


def _site(i):
    box = shapely.box(-60 + i, -5, -60 + i + 0.01, -4.99)
    if i == 0:       # a multipolygon
        return box.union(shapely.box(-60 + 0.02, -5, -60 + 0.03, -4.99))
    return shapely.Polygon(list(box.exterior.coords)[::-1])     # clockwise, as some files are


def _reviewed(db, tmp_path):
    features = [{"type": "Feature", "properties": {"pred": 0.5 + 0.1 * i, "name": f"site {i}"},
                 "geometry": json.loads(shapely.to_geojson(_site(i)))} for i in range(4)]
    path = tmp_path / "partner_48px_v3.2_2023-01-01_2023-12-31.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    import_file(db, path, source="partner")
    imagery = dict(before=verdicts.Imagery("S2 L1C", "2022-01-01", "2022-12-31"),
                   after=verdicts.Imagery("Esri Wayback", "2024-02-01", "2024-02-01"))
    verdicts.record(db, 1, "ana", "verified", note="pits & <tailings>", **imagery)
    verdicts.record(db, 2, "ben", "false_positive", reason="riverbank", **imagery)
    verdicts.record(db, 3, "ana", "verified", **imagery)
    verdicts.undo(db, 3, "ana")
    verdicts.record(db, 4, "ana", "verified", **imagery)
    return path


def _check_rfc7946(collection):
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    for feature in collection["features"]:
        assert feature["type"] == "Feature" and isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                    else geometry["coordinates"])
        assert geometry["type"] in ("Polygon", "MultiPolygon")
        for rings in polygons:
            for index, ring in enumerate(rings):
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(len(p) == 2 and -180 <= p[0] <= 180 and -90 <= p[1] <= 90 for p in ring)
                ccw = shapely.LinearRing(ring).is_ccw
                assert ccw if index == 0 else not ccw        # right-hand rule


def test_verified_geojson_is_rfc7946_with_history_and_imagery(db, tmp_path):
    _reviewed(db, tmp_path)
    out = tmp_path / "verified.geojson"
    assert export(db, out, Filters(status="verified")) == 2
    collection = json.loads(out.read_text())
    _check_rfc7946(collection)
    by_id = {f["properties"]["id"]: f["properties"] for f in collection["features"]}
    assert set(by_id) == {1, 4}                      # 3 was undone, 2 is a false positive
    first = by_id[1]
    assert (first["source"], first["model"], first["status"]) == ("partner", "48px_v3.2", "verified")
    assert first["score"] == 0.5 and first["period_start"] == "2023-01-01"
    assert first["area_source"] == "footprint" and first["area_ha"] > 0
    (verdict,) = first["verdicts"]
    assert verdict["reviewer"] == "ana" and verdict["note"] == "pits & <tailings>"
    assert verdict["before"] == {"source": "S2 L1C", "start": "2022-01-01", "end": "2022-12-31"}
    assert verdict["after"]["source"] == "Esri Wayback" and verdict["time"]
    assert first["original_properties"] == {"pred": 0.5, "name": "site 0"}


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv"])
def test_exporting_then_importing_adds_nothing(db, tmp_path, suffix):
    _reviewed(db, tmp_path)
    out = tmp_path / f"all{suffix}"
    assert export(db, out, Filters(status=None)) == 4
    report = import_file(db, out)
    assert report.features == 4 and report.added == 0
    assert db["detections"].count == 4


def test_export_filters_and_bad_format(db, tmp_path):
    _reviewed(db, tmp_path)
    assert export(db, tmp_path / "fp.geojson", Filters(status="false_positive")) == 1
    assert export(db, tmp_path / "none.geojson", Filters(status="verified", sources=["other"])) == 0
    area = shapely.box(-58.5, -6, -55, -4)                # detections 2 and 3 (lon -58, -57)
    assert export(db, tmp_path / "area.geojson", Filters(status=None, area=area)) == 2
    with pytest.raises(ReviewError, match=r"export as .geojson, .gpkg, .csv, .kml or .kmz"):
        export(db, tmp_path / "x.shp", Filters())


def test_export_cli(db, tmp_path, capsys):
    _reviewed(db, tmp_path)
    db_path = db.conn.execute("pragma database_list").fetchone()[2]
    out = tmp_path / "cli.geojson"
    assert main(["export", str(out), "--db", db_path]) == 0
    assert "2 detections written" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["features"]) == 2
    assert main(["export", str(tmp_path / "x.txt"), "--db", db_path]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_training_samples_in_earthrise_schema(db, tmp_path):
    _reviewed(db, tmp_path)
    out = tmp_path / "samples.geojson"
    assert training_samples(db, out) == 3
    features = json.loads(out.read_text())["features"]
    labels = {f["properties"]["detection_id"]: f["properties"]["label"] for f in features}
    assert labels == {1: 1, 2: 0, 4: 1}
    props = features[0]["properties"]
    assert set(props) >= {"label", "start_date", "end_date", "source_file", "split"}
    assert props["split"] in ("train", "val", "test") and features[0]["geometry"]["type"] == "Point"
    assert training_samples(db, out) == 3
    assert [f["properties"]["split"] for f in json.loads(out.read_text())["features"]] == \
        [f["properties"]["split"] for f in features]            # deterministic splits


@needs_fixtures
def test_evidence_png_from_real_before_and_after_imagery(db, tmp_path):
    for name in ("mining_1003_t0.tif", "mining_1003_t1.tif"):
        add_scene(db, scene_record(open_tile(PAIRS / name)))
    lon, lat = -56.24891683310264, -6.771199333563193
    site = shapely.box(lon - 0.0008, lat - 0.0008, lon + 0.0008, lat + 0.0008)
    path = tmp_path / "site_2021-01-01_2021-12-31.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": 0.93}, "geometry": json.loads(shapely.to_geojson(site))}]}))
    import_file(db, path)
    verdicts.record(db, 1, "ana", "verified")
    png = evidence_png(db, 1)
    image = Image.open(io.BytesIO(png))
    assert image.width > 2 * 320 and image.height > 320
    pixels = np.asarray(image.convert("RGB"))
    left, right = pixels[12:332, 12:332], pixels[12:332, 344:664]
    assert left.std() > 10 and right.std() > 10                     # real pictures
    assert not np.array_equal(left, right)                          # before differs from after
    assert (pixels == [255, 214, 0]).all(axis=-1).sum() > 100        # footprint outline drawn
    out = tmp_path / "evidence.png"
    assert main(["evidence", "1", str(out), "--db", db.conn.execute("pragma database_list").fetchone()[2]]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evidence_without_imagery_is_a_clear_error(db, tmp_path):
    _reviewed(db, tmp_path)
    with pytest.raises(ReviewError, match="no stored scene covers detection 1"):
        evidence_png(db, 1)


@pytest.mark.parametrize("name", ["detections.geojson", "detections.gpkg", "detections.csv"])
def test_export_bytes_are_the_file_export_writes(db, tmp_path, name):
    _reviewed(db, tmp_path)
    content, written = export_bytes(db, name, Filters(status="verified"))
    assert written == 2
    again = tmp_path / "again" / name
    again.parent.mkdir()
    again.write_bytes(content)
    report = import_file(db, again)                          # a complete file of that format
    assert report.features == 2 and report.added == 0
    with pytest.raises(ReviewError, match="export as"):
        export_bytes(db, "detections.shp", Filters())


def test_training_samples_bytes(db, tmp_path):
    _reviewed(db, tmp_path)
    content, written = training_samples_bytes(db, Filters(status=None))
    labels = {f["properties"]["detection_id"]: f["properties"]["label"]
              for f in json.loads(content)["features"]}
    assert written == 3 and labels == {1: 1, 2: 0, 4: 1}
