"""What the Map draws: a layer per status in drawing order, footprints for all detections up
to a limit (dots beyond it, the reviewed ones' footprints always), tooltips as text, deck.gl
JSON that parses, a view that fits, and the detection a click picked."""
import json

import shapely

from review.analysis.map_layers import (DRAW_ORDER, chosen_detection, deck_json, map_data,
                                        tooltip_text, view_state)
from review.judging import verdicts
from review.judging.queue import Filters

from tests.conftest import add_detections


def _judge(db, ids):
    verdicts.record(db, ids[0], "ana", "verified")
    verdicts.record(db, ids[1], "ana", "false_positive", reason="riverbank")


def test_layers_follow_the_drawing_order_and_count_every_detection(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    data = map_data(db)
    assert [layer.status for layer in data.layers] == [s for s in DRAW_ORDER
                                                       if s in ("pending", "false_positive", "verified")]
    assert data.counts() == {"pending": 4, "false_positive": 1, "verified": 1}
    assert data.detections == 6 and data.footprints == 6
    west, south, east, north = data.bounds
    assert (west, south) == (-57.0, -5.0) and abs(east - (-57.0 + 0.05 + 0.004)) < 1e-9 and north == -4.996
    pending = json.loads(data.layers[0].dots_json)
    assert sorted(row["i"] for row in pending) == sorted(ids[2:])
    assert all(len(row["c"]) == 2 and isinstance(row["t"], str) for row in pending)


def test_beyond_the_limit_pending_detections_are_dots_and_reviewed_ones_keep_footprints(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    data = map_data(db, footprint_limit=3)
    by_status = {layer.status: layer for layer in data.layers}
    assert by_status["pending"].footprints_json is None and by_status["pending"].footprints == 0
    assert by_status["verified"].footprints == 1 and by_status["false_positive"].footprints == 1
    (shape,) = json.loads(by_status["verified"].footprints_json)
    assert shape["i"] == ids[0]
    ring = shape["p"][0]
    assert shapely.Polygon(ring).equals_exact(shapely.box(-57.0, -5.0, -56.996, -4.996), 1e-5)


def test_filters_and_an_area_choose_what_is_drawn(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    assert map_data(db, Filters(status="verified")).counts() == {"verified": 1}
    area = shapely.box(-56.981, -5.01, -56.969, -4.99)             # meets detections 3 and 4 only
    assert map_data(db, Filters(status=None, area=area)).detections == 2
    assert map_data(db, Filters(status=None, area=shapely.box(0, 0, 1, 1))).layers == []


def test_the_deck_json_parses_puts_footprints_under_dots_and_fits_the_detections(db):
    add_detections(db, 3)
    deck = json.loads(deck_json(map_data(db), map_style="data:,"))
    kinds = [layer["@@type"] for layer in deck["layers"]]
    assert kinds == ["SolidPolygonLayer", "ScatterplotLayer"]
    view = deck["initialViewState"]
    assert -57.0 < view["longitude"] < -56.97 and -5.0 < view["latitude"] < -4.996
    assert 8 < view["zoom"] <= 17


def test_an_empty_map_opens_on_the_amazon():
    assert view_state(None) == {"longitude": -60.0, "latitude": -5.0, "zoom": 3}


def test_a_click_returns_the_detection_id_and_anything_else_returns_none():
    picked = {"selection": {"objects": {"status-verified": [{"i": 7, "t": "verified"}]}}}
    assert chosen_detection(picked) == 7
    assert chosen_detection({"selection": {"objects": {"basemap": [{"i": 7}]}}}) is None
    assert chosen_detection({"selection": {"objects": {"status-pending": [{"t": "no id"}]}}}) is None
    assert chosen_detection(None) is None


def test_map_tooltips_carry_what_reviewers_typed_as_text():
    text = tooltip_text("s<b>", "unsure", 0.5, "2023-01-01",
                        ("<img src=x onerror=alert(1)>", "unsure", "<script>x</script>"))
    # Shown by deck.gl as text (its tooltip's "text"), never parsed as HTML.
    assert text == "unsure · s<b> · score 0.50 · 2023 · last: unsure by <img src=x onerror=alert(1)> (<script>x</script>)"
