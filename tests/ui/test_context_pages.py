"""The context-layer filter on Review, Map, Trends and Export, driven through AppTest."""
import json

import pytest
import shapely
from streamlit.testing.v1 import AppTest

from review.analysis import context
from review.detection.importers import import_file
from review.store import connect

from tests.conftest import REPO

TIMEOUT = 120
REVIEW, MAP, TRENDS, EXPORT = (str(REPO / "app_pages" / p) for p in (
    "2_Review.py", "3_Map.py", "4_Trends.py", "5_Export.py"))
VALUE_BOX = "f_context_value_Territories"


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    """Three 2023 detections in a row (ids 1-3 from west to east); territory A covers the
    first two, territory B part of the second; the third lies outside both."""
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    monkeypatch.setenv("REVIEW_BASEMAP_URL", "http://127.0.0.1:9/{z}/{x}/{y}.png")
    features = [{"type": "Feature", "properties": {"pred": 0.6 + 0.1 * i},
                 "geometry": json.loads(shapely.to_geojson(
                     shapely.box(-57.0 + i * 0.01, -5.0, -56.996 + i * 0.01, -4.996)))}
                for i in range(3)]
    detections = tmp_path / "detections_2023-01-01_2023-12-31.geojson"
    detections.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    layer = tmp_path / "territories.geojson"
    layer.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name},
         "geometry": json.loads(shapely.to_geojson(shapely.box(*bounds)))}
        for name, bounds in (("A", (-57.001, -5.001, -56.985, -4.995)),
                             ("B", (-56.988, -5.001, -56.9805, -4.995)))]}))
    db = connect(path)
    import_file(db, detections)
    context.add(db, layer, "Territories")
    return path


def test_without_layers_no_context_filter_is_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "empty.db"))
    at = AppTest.from_file(EXPORT, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "f_context" not in [box.key for box in at.selectbox]


def test_map_shows_only_detections_inside_the_chosen_territory(db_path):
    at = AppTest.from_file(MAP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert sorted(at.dataframe[0].value["id"]) == [1, 2, 3]
    assert at.selectbox(key="f_context").value is None            # anywhere, to begin with
    at.selectbox(key="f_context").select("Territories").run()
    assert "2 detections match" in at.caption[0].value
    assert sorted(at.dataframe[0].value["id"]) == [1, 2]
    assert at.selectbox(key=VALUE_BOX).options == ["(any)", "A (2 detections)", "B (1 detection)"]
    at.selectbox(key=VALUE_BOX).select("B").run()
    assert at.dataframe[0].value["id"].tolist() == [2]


def test_review_serves_only_detections_inside_the_chosen_territory(db_path):
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.session_state["reviewer"] = "Ana"
    at.run()
    assert at.subheader[0].value.startswith("Detection #3")       # highest score first
    at.selectbox(key="f_context").select("Territories").run()
    at.selectbox(key=VALUE_BOX).select("B").run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Detection #2")


def test_export_and_trends_count_only_verified_detections_inside_the_territory(db_path):
    from review.judging import verdicts

    db = connect(db_path)
    for detection in (1, 3):
        verdicts.record(db, detection, "ana", "verified")
    at = AppTest.from_file(EXPORT, default_timeout=TIMEOUT).run()
    assert "2 detections match" in at.markdown[0].value             # verified, anywhere
    at.selectbox(key="f_context").select("Territories").run()
    assert "1 detection matches" in at.markdown[0].value
    assert any("Only detections overlapping Territories" in c.value for c in at.caption)
    at.button(key="x_prepare").click().run()
    assert not at.exception
    assert "(1 detections)" in at.get("download_button")[0].proto.label

    trends = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    assert trends.dataframe[0].value["detections"].tolist() == [3]
    trends.selectbox(key="t_context").select("Territories").run()
    assert not trends.exception and not trends.error
    table = trends.dataframe[0].value
    assert table["detections"].tolist() == [2] and table["verified"].tolist() == [1]
    assert "Only detections overlapping Territories" in trends.caption[0].value
