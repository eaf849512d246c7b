"""What the Map draws: every matching detection as columns in drawing order, footprints as
the sizes allow (the reviewed ones' always), only the changes after a verdict, footprints
in view on request, tooltips that keep blind second opinions blind, and the binary message
that carries it all."""
import json

import numpy as np
import shapely

from review.analysis import map_payload
from review.analysis.map_layers import (changes_since, footprints_in_view, last_text,
                                        read_columns, view_state)
from review.judging import verdicts
from review.judging.queue import Filters

from tests.conftest import add_detections


def _judge(db, ids):
    verdicts.record(db, ids[0], "ana", "verified")
    verdicts.record(db, ids[1], "ana", "false_positive", reason="riverbank")


def _ring(footprints, part):
    return footprints.xy[footprints.starts[part]:footprints.starts[part + 1]]


def test_columns_hold_every_detection_pending_first_reviewed_on_top(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    columns = read_columns(db)
    assert columns.detections == 6 and columns.counts() == {"pending": 4, "false_positive": 1,
                                                            "verified": 1}
    drawn = [columns.statuses[code] for code in columns.status]
    assert drawn == ["pending"] * 4 + ["false_positive", "verified"]     # verified drawn last
    assert columns.ids.tolist() == ids[2:] + [ids[1], ids[0]]
    west, south, east, north = columns.bounds
    assert (west, south) == (-57.0, -5.0) and abs(east - (-57.0 + 0.05 + 0.004)) < 1e-9 and north == -4.996
    row = columns.rows_of([ids[3]])[0]
    assert np.allclose(columns.lonlat[row], (-56.968, -4.998), atol=1e-5)
    assert columns.sources[columns.source[row]] == "s" and columns.periods[columns.period[row]] == "2021"
    assert abs(columns.score[row] - 0.51) < 1e-6
    # Every footprint is there, as a closed outer ring of its own detection.
    assert columns.all_footprints and columns.footprints.parts == 6
    part = int(np.flatnonzero(columns.footprints.owner == columns.rows_of([ids[0]])[0])[0])
    ring = _ring(columns.footprints, part)
    assert shapely.Polygon(ring).equals_exact(shapely.box(-57.0, -5.0, -56.996, -4.996), 1e-5)


def test_beyond_the_limits_pending_detections_are_dots_and_reviewed_ones_keep_footprints(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    for limits in ({"footprint_limit": 3}, {"vertex_budget": 20}):
        columns = read_columns(db, **limits)
        assert not columns.all_footprints and columns.detections == 6
        assert sorted(columns.ids[columns.footprints.owner].tolist()) == sorted(ids[:2])


def test_filters_and_an_area_choose_what_is_drawn(db):
    ids = add_detections(db, 6)
    _judge(db, ids)
    assert read_columns(db, Filters(status="verified")).counts() == {"verified": 1}
    area = shapely.box(-56.981, -5.01, -56.969, -4.99)             # meets detections 3 and 4 only
    assert sorted(read_columns(db, Filters(status=None, area=area)).ids.tolist()) == ids[2:4]
    empty = read_columns(db, Filters(status=None, area=shapely.box(0, 0, 1, 1)))
    assert empty.detections == 0 and empty.bounds is None


def test_an_empty_or_unreadable_footprint_is_drawn_as_its_dot_and_counted(db):
    ids = add_detections(db, 4)
    db.execute("update detections set geometry = ? where id = ?",
               ['{"type": "Polygon", "coordinates": []}', ids[0]])
    db.execute("update detections set geometry = ? where id = ?", ["not json", ids[1]])
    db.conn.commit()
    columns = read_columns(db)
    assert columns.detections == 4 and columns.no_footprint == 2
    assert sorted(columns.ids[columns.footprints.owner].tolist()) == ids[2:]


def test_after_a_verdict_only_the_changed_detection_is_sent_with_its_new_status(db):
    ids = add_detections(db, 200)
    columns = read_columns(db)
    assert changes_since(db, columns) == []
    verdicts.record(db, ids[7], "ana", "verified", note="<b>pit</b>")
    changes = changes_since(db, columns)
    assert changes == [(ids[7], "verified", "last: verified by ana (<b>pit</b>)")]
    assert columns.counts(changes) == {"pending": 199, "verified": 1}
    token = "t1"
    base = map_payload.message(token, changes, columns)
    update = map_payload.message(token, changes)
    assert len(update) < 300 < 4000 < len(base)           # the columns are not sent again
    header, arrays = map_payload.unpack(update)
    assert header["kind"] == "update" and header["changes"] == [list(changes[0])] and arrays == {}


def test_the_tooltip_says_nothing_of_who_decided_while_a_second_look_is_pending(db):
    ids = add_detections(db, 3)
    verdicts.set_second_opinion(db, "all")
    verdicts.record(db, ids[0], "ana", "verified")
    verdicts.record(db, ids[1], "ana", "verified")
    verdicts.record(db, ids[1], "ben", "verified")
    columns = read_columns(db)
    status = dict(zip(columns.ids.tolist(), [columns.statuses[c] for c in columns.status]))
    assert status[ids[0]] == "needs_second_opinion" and ids[0] not in columns.last
    assert columns.last[ids[1]] == "last: verified by ben"
    header, _ = map_payload.unpack(map_payload.message("t", (), columns))
    assert "ana" not in str(header["last"].get(str(ids[0]), ""))
    later = read_columns(db)
    verdicts.record(db, ids[2], "cy", "verified")
    assert changes_since(db, later) == [(ids[2], "needs_second_opinion", None)]


def test_footprints_in_view_come_on_request_up_to_a_limit(db):
    ids = add_detections(db, 6)
    columns = read_columns(db, footprint_limit=0)
    assert columns.footprints.parts == 0
    view = (-56.985, -5.01, -56.955, -4.99)                        # detections 2, 3 and 4
    footprints, complete = footprints_in_view(db, columns, view)
    assert complete and sorted(columns.ids[footprints.owner].tolist()) == ids[2:5]
    some, complete = footprints_in_view(db, columns, view, limit=1)
    assert not complete and some.parts == 1
    header, arrays = map_payload.unpack(map_payload.message("t", (), None, (view, footprints, True)))
    assert header["view_footprints"] == {"bbox": list(view), "complete": True}
    assert arrays["vf_xy"].size == footprints.vertices * 2 and arrays["vf_owner"].tolist() == footprints.owner.tolist()


def test_the_message_round_trips_typed_arrays_at_aligned_offsets(db):
    ids = add_detections(db, 5)
    _judge(db, ids)
    columns = read_columns(db)
    message = map_payload.message("tok", [], columns, extra={"deck_url": "/app/static/x.js"})
    assert message[:8] == map_payload.MAGIC
    header, arrays = map_payload.unpack(message)
    assert header["kind"] == "base" and header["token"] == "tok" and header["n"] == 5
    assert header["deck_url"] == "/app/static/x.js" and header["statuses"][0] == "pending"
    assert arrays["ids"].dtype == np.int32 and arrays["ids"].tolist() == columns.ids.tolist()
    assert np.array_equal(arrays["lonlat"].reshape(-1, 2), columns.lonlat)
    assert np.array_equal(arrays["status"], columns.status)
    length = int.from_bytes(message[8:12], "little")
    start = 12 + length
    assert start % 8 == 0
    for name, (kind, offset, size) in json.loads(message[12:start])["arrays"].items():
        assert offset % 8 == 0, name


def test_an_empty_map_opens_on_the_amazon():
    assert view_state(None) == {"longitude": -60.0, "latitude": -5.0, "zoom": 3}


def test_the_tooltips_words_keep_what_reviewers_typed_as_it_was():
    text = last_text(("<img src=x onerror=alert(1)>", "unsure", "<script>x</script>"))
    # The browser sets the tooltip's textContent, never parses it as HTML.
    assert text == "last: unsure by <img src=x onerror=alert(1)> (<script>x</script>)"
    assert last_text(None) is None


def test_the_tables_highest_scores_come_from_the_columns_in_the_queues_order(db):
    from review.analysis.map_layers import highest_scores
    from review.judging import queue

    ids = add_detections(db, 12)
    db.execute("update detections set score = null where id = ?", [ids[11]])
    db.execute("update detections set score = 0.65 where id in (?, ?)", [ids[2], ids[9]])
    db.conn.commit()
    verdicts.record(db, ids[4], "ana", "verified")
    columns = read_columns(db)
    every = Filters(status=None)
    assert [r["id"] for r in highest_scores(db, columns, 100)] == \
        [r["id"] for r in queue.listing(db, every, order="score", limit=100)]
    top = highest_scores(db, columns, 3)
    assert [r["id"] for r in top] == [r["id"] for r in queue.listing(db, every, order="score", limit=3)]
    assert {r["id"]: r["status"] for r in highest_scores(db, columns, 100)}[ids[4]] == "verified"
