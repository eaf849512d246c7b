"""Google Earth export: one placemark per detection, status styles, chips in the balloon."""
import io
import xml.etree.ElementTree as ET
import zipfile

import pytest
from PIL import Image

from review.cli import main
from review.judging import verdicts
from review.judging.queue import Filters
from review.publishing import reports
from review.publishing.export import export

from tests.conftest import add_detections, detections_with_imagery

KML = "{http://www.opengis.net/kml/2.2}"


def _db_path(db) -> str:
    return db.execute("pragma database_list").fetchone()[2]


def test_kmz_has_one_placemark_per_detection_with_status_styles_and_chips(db, tmp_path, capsys):
    pyogrio = pytest.importorskip("pyogrio")
    ids = detections_with_imagery(db, tmp_path)
    far = add_detections(db, 2, source="far")           # no imagery covers these
    verdicts.record(db, ids[0], "ana", "verified")
    verdicts.record(db, ids[1], "ben", "false_positive", reason="riverbank")
    out = tmp_path / "review.kmz"
    assert main(["export", str(out), "--status", "all", "--db", _db_path(db)]) == 0
    assert "5 detections written" in capsys.readouterr().out

    layers = pyogrio.list_layers(out)
    frames = [pyogrio.read_dataframe(out, layer=name) for name, _ in layers]
    assert sum(len(f) for f in frames) == 5                           # GDAL reads every placemark
    assert all(g.geom_type in ("Polygon", "MultiPolygon") for f in frames for g in f.geometry)

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        document = ET.fromstring(archive.read("doc.kml"))
        assert names[0] == "doc.kml"
        for i in ids:                                              # chips inside the archive
            for label in ("before", "after"):
                png = archive.read(f"files/{i}_{label}.png")
                assert min(Image.open(io.BytesIO(png)).size) > 100
        assert not any(n.startswith(f"files/{far[0]}_") for n in names)
    placemarks = {p.find(f"{KML}name").text: p for p in document.iter(f"{KML}Placemark")}
    assert len(placemarks) == 5
    styles = {s.get("id"): s.find(f"{KML}PolyStyle/{KML}color").text for s in document.iter(f"{KML}Style")}
    colour = {name: styles[p.find(f"{KML}styleUrl").text.lstrip("#")] for name, p in placemarks.items()}
    assert colour[f"#{ids[0]} verified"] != colour[f"#{ids[1]} false positive"] != colour[f"#{ids[2]} pending review"]
    balloon = placemarks[f"#{ids[0]} verified"].find(f"{KML}description").text
    assert f"<img src='files/{ids[0]}_before.png'" in balloon and "by ana" in balloon

    kml = tmp_path / "review.kml"                                  # plain KML: no pictures
    assert export(db, kml, Filters(status="verified")) == 1
    assert sum(len(pyogrio.read_dataframe(kml, layer=n)) for n, _ in pyogrio.list_layers(kml)) == 1


def test_html_in_text_and_names_is_stored_as_text_and_escaped_in_google_earth(db, tmp_path):
    ids = add_detections(db, 1)
    text, reporter = "<script>alert('x')</script> pits & ponds", "<b>Mallory</b>"
    reports.add(db, text, reporter, detection_id=ids[0])
    (stored,) = reports.listing(db)
    assert (stored["text"], stored["reporter"]) == (text, reporter)
    out = tmp_path / "all.kml"
    assert export(db, out, Filters(status=None)) == 1
    document = out.read_text()
    assert "<script>" not in document and "<b>Mallory" not in document
    description = ET.fromstring(document).find(f".//{KML}Placemark/{KML}description").text
    # the balloon is HTML: the report is in it as escaped text, never as markup
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; pits &amp; ponds" in description
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in description and "<script>" not in description


