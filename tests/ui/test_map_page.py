"""What the Map page sends its browser, read from the element itself (AppTest): the columns
once, then only what changed, whoever recorded the verdict; the columns again when the
detections change or when the browser says it lost them; the blind rule on the way out."""
from streamlit.testing.v1 import AppTest

from review.analysis import map_payload
from review.judging import verdicts
from review.store import connect

from tests.conftest import REPO, add_detections

HOME = str(REPO / "app.py")


def _sent(at):
    (element,) = at.get("bidi_component")
    message = element.proto.bytes
    header, arrays = map_payload.unpack(message)
    return header, arrays, len(message)


def _legend(at):
    return next(h.proto.body for h in at.get("html") if "map-legend" in h.proto.body)


def test_the_columns_travel_once_then_only_what_another_reviewer_changed(db_path):
    db = connect(db_path)
    ids = add_detections(db, 40)
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.switch_page("app_pages/3_Map.py").run()
    assert not at.exception
    header, arrays, size = _sent(at)
    assert header["kind"] == "base" and header["n"] == 40 and sorted(arrays["ids"].tolist()) == ids
    assert header["deck_url"].endswith("/app/static/deck.gl-9.1.15/dist.min.js")
    token = header["token"]
    at.run()                                             # nothing changed: nothing but the token
    header, arrays, small = _sent(at)
    assert header == {**header, "kind": "update", "token": token, "changes": []} and arrays == {}
    assert small < 1000 < size
    verdicts.record(db, ids[5], "ben", "verified", note="fresh pit")    # another reviewer, elsewhere
    at.run()
    header, arrays, _ = _sent(at)
    assert header["kind"] == "update" and arrays == {}
    assert header["changes"] == [[ids[5], "verified", "last: verified by ben (fresh pit)"]]
    assert "verified (1)" in _legend(at) and "pending (39)" in _legend(at)
    # The browser reports it lost the columns (a new tab of the code): they come again.
    at.session_state["_map_columns_sent"] = None
    at.run()
    assert _sent(at)[0]["kind"] == "base"
    # New detections: new columns, with a new token.
    add_detections(db, 2, source="t")
    at.run()
    header, arrays, _ = _sent(at)
    assert header["kind"] == "base" and header["n"] == 42 and header["token"] != token


def test_what_reaches_the_browser_says_nothing_of_who_decided_a_blind_detection(db_path):
    db = connect(db_path)
    ids = add_detections(db, 3)
    verdicts.set_second_opinion(db, "all")
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.switch_page("app_pages/3_Map.py").run()
    verdicts.record(db, ids[0], "secret-ana", "verified", note="my reasons")
    at.run()
    header, _, _ = _sent(at)
    (element,) = at.get("bidi_component")
    assert header["changes"] == [[ids[0], "needs_second_opinion", None]]
    assert b"secret-ana" not in element.proto.bytes and b"my reasons" not in element.proto.bytes
    at.session_state["_map_columns_sent"] = None
    at.run()
    (element,) = at.get("bidi_component")
    assert b"secret-ana" not in element.proto.bytes and b"my reasons" not in element.proto.bytes
