"""The review queue: orders, filters, claims that keep two reviewers apart, and the
read-outs the pages show (sources, counts by source and status, extents, filter keys)."""
import pytest
import shapely

from review.errors import StoreError
from review.judging import queue, verdicts
from review.judging.queue import Filters, claim_next, listing
from review.store import connect

from tests.conftest import add_detections


def test_queue_orders(db):
    ids = add_detections(db, 6)            # scores 0.3, 0.37, 0.44, 0.51, 0.58, 0.65
    assert [r["id"] for r in listing(db, order="score")] == ids[::-1]
    closest = [r["score"] for r in listing(db, order="threshold")]
    assert closest[:2] == [0.51, 0.44]
    newest = listing(db, order="newest")
    assert newest[0]["period_start"] == "2022-01-01"
    with pytest.raises(StoreError, match="unknown order"):
        listing(db, order="random")


def test_queue_filters(db):
    add_detections(db, 6)
    add_detections(db, 3, source="other")
    assert {r["source"] for r in listing(db, Filters(sources=["other"]))} == {"other"}
    assert all(0.4 <= r["score"] <= 0.6 for r in listing(db, Filters(score_min=0.4, score_max=0.6)))
    in_2019 = listing(db, Filters(period_from="2019-01-01", period_to="2019-12-31"))
    assert {r["period_start"] for r in in_2019} == {"2019-01-01"}
    area = shapely.box(-56.985, -5.01, -56.965, -4.99)        # covers detections 2 and 3 of each
    near = listing(db, Filters(area=area))
    assert sorted(r["external_id"] for r in near) == ["other-2", "s-2", "s-3"]
    assert queue.count(db, Filters(area=area)) == 3


def test_reviewed_detections_leave_the_queue(db):
    ids = add_detections(db, 3)
    verdicts.record(db, ids[2], "ana", "verified")
    assert ids[2] not in [r["id"] for r in listing(db)]
    assert [r["id"] for r in listing(db, Filters(status="verified"))] == [ids[2]]


def test_two_reviewers_never_get_the_same_detection(db, tmp_path):
    add_detections(db, 5)
    other = connect(tmp_path / "review.db")        # a second reviewer's own connection
    a = claim_next(db, "ana", holder="tab-a")
    b = claim_next(other, "ben", holder="tab-b")
    assert a["id"] != b["id"]
    assert claim_next(db, "ana", holder="tab-a")["id"] != b["id"]   # ana moves on, ben keeps his
    verdicts.record(other, b["id"], "ben", "verified")
    skipped = claim_next(db, "ana", skip=(a["id"],), holder="tab-a")
    assert skipped["id"] not in (a["id"], b["id"])


def test_two_tabs_under_one_name_are_two_holders(db):
    add_detections(db, 3)
    first = claim_next(db, "ana", holder="tab-1")
    second = claim_next(db, "ana", holder="tab-2")
    assert first["id"] != second["id"]
    assert queue.holder_of(db, first["id"])["holder"] == "tab-1"


def test_expired_claims_are_handed_out_again(db):
    (only,) = add_detections(db, 1)
    assert claim_next(db, "ana", holder="a")["id"] == only
    assert claim_next(db, "ben", holder="b") is None
    assert claim_next(db, "ben", holder="b", claim_seconds=-1)["id"] == only


def test_release_lets_another_reviewer_take_the_detection(db):
    (only,) = add_detections(db, 1)
    assert claim_next(db, "ana", holder="a")["id"] == only
    assert claim_next(db, "ben", holder="b") is None
    queue.release(db, "a")
    assert claim_next(db, "ben", holder="b")["id"] == only


def test_a_held_detection_opened_directly_is_refused_unless_reviewed_anyway(db):
    ids = add_detections(db, 3)
    assert queue.claim(db, "ana", ids[1], holder="a")["id"] == ids[1]
    with pytest.raises(queue.ClaimHeld, match=f"detection {ids[1]} is being reviewed by ana since "
                                              r"\d\d:\d\d") as held:
        queue.claim(db, "dan", ids[1], holder="d")
    assert held.value.reviewer == "ana"
    assert queue.holder_of(db, ids[1])["holder"] == "a"                 # nothing changed
    assert queue.claim(db, "dan", ids[1], holder="d", force=True)["id"] == ids[1]
    assert queue.renew(db, "a", ids[1]) is False                         # ana's page learns it
    assert queue.renew(db, "d", ids[1]) is True
    assert claim_next(db, "ben", holder="b")["id"] != ids[1]
    with pytest.raises(StoreError, match="no detection with id 99"):
        queue.claim(db, "ana", 99, holder="a")


def test_a_renewed_claim_outlives_the_window_and_an_abandoned_one_does_not(db, monkeypatch):
    (only,) = add_detections(db, 1)
    clock = [1_000_000.0]
    monkeypatch.setattr(queue.time, "time", lambda: clock[0])
    claim_next(db, "ana", holder="a")
    for _ in range(5):                                 # on screen for 5 windows, renewed
        clock[0] += queue.CLAIM_SECONDS * 0.9
        assert queue.renew(db, "a", only)
        assert claim_next(db, "ben", holder="b") is None
    clock[0] += queue.CLAIM_SECONDS + 1                # the tab died: no more renewals
    assert claim_next(db, "ben", holder="b")["id"] == only
    assert queue.renew(db, "a", only) is False


def test_neighbours_within_3_km_nearest_first(db):
    ids = add_detections(db, 6)            # 0.01° (about 1.1 km) apart along a parallel
    near = queue.neighbours(db, db["detections"].get(ids[0]))
    assert [n["id"] for n in near] == ids[1:3]
    assert near[0]["distance_km"] == pytest.approx(1.11, abs=0.01)


def _add_at(db, source, n, lon0=-57.0):
    rows = []
    for i in range(n):
        lon, lat = lon0 + i * 0.01, -5.0 - i * 0.01
        box = shapely.box(lon, lat, lon + 0.004, lat + 0.004)
        rows.append({"source": source, "external_id": f"{source}-{i}", "geometry": shapely.to_geojson(box),
                     "lon": lon + 0.002, "lat": lat + 0.002, "west": lon, "south": lat,
                     "east": lon + 0.004, "north": lat + 0.004, "score": 0.5 + 0.1 * i})
    db["detections"].insert_all(rows)
    return [r["id"] for r in db["detections"].rows_where("source = ?", [source], order_by="id")]


def test_sources_are_distinct_and_sorted(db):
    assert queue.sources(db) == []
    _add_at(db, "partner", 2)
    _add_at(db, "earthrise", 3)
    assert queue.sources(db) == ["earthrise", "partner"]


def test_status_by_source_counts_every_status_with_a_total(db):
    assert queue.status_by_source(db).empty
    partner = _add_at(db, "partner", 2)
    earthrise = _add_at(db, "earthrise", 3)
    verdicts.record(db, earthrise[0], "ana", "verified")
    verdicts.record(db, earthrise[1], "ana", "false_positive", reason="riverbank")
    verdicts.record(db, partner[0], "ana", "verified")
    table = queue.status_by_source(db)
    assert table.index.tolist() == ["earthrise", "partner"]          # largest first
    assert table.loc["earthrise"].to_dict() == {"false_positive": 1, "pending": 1, "verified": 1, "total": 3}
    assert table.loc["partner"].to_dict() == {"false_positive": 0, "pending": 1, "verified": 1, "total": 2}


def test_extent_covers_every_box(db):
    _add_at(db, "s", 3, lon0=-60.0)
    rows = queue.listing(db, Filters(status=None))
    assert queue.extent(rows) == pytest.approx((-60.0, -5.02, -59.976, -4.996))
    with pytest.raises(StoreError, match="no detections"):
        queue.extent([])


def test_filter_keys_differ_exactly_when_the_selection_does():
    area = shapely.box(0, 0, 1, 1)
    assert Filters(sources=["a"], area=area).key() == Filters(sources=["a"], area=shapely.box(0, 0, 1, 1)).key()
    assert Filters().key() != Filters(status=None).key()
    assert Filters(score_min=0.5).key() != Filters(score_max=0.5).key()
    assert Filters(area=area).key() != Filters(area=shapely.box(0, 0, 2, 1)).key()
    assert len({Filters(sample_id=1).key(), Filters(sample_id=2).key(), Filters().key()}) == 3
    assert len({Filters(site_id=1).key(), Filters(not_judged_by="ana").key(), Filters().key()}) == 3


def test_a_sample_is_served_in_drawn_order_whatever_the_chosen_order(db):
    from review.analysis import sampling

    ids = add_detections(db, 12)
    sample_id = sampling.draw(db, "twelve", Filters(status=None), size=8, seed=5)
    drawn = sampling.drawn_order(db, sample_id)
    assert len(drawn) == 8 and drawn != sorted(drawn) and set(drawn) <= set(ids)
    by_score = [r["id"] for r in listing(db, Filters(sample_id=sample_id), order="score")]
    assert by_score != sorted(by_score, key=lambda i: -i)        # not by score (ids rise with it)
    only = Filters(sample_id=sample_id)
    assert queue.serves_drawn_order(only) and not queue.serves_drawn_order(Filters())
    for order in queue.ORDERS:
        if order != "second_opinion":
            assert [r["id"] for r in listing(db, only, order=order)] == drawn, order
    # Claims and the lookahead follow the drawn order too; decided members leave the queue.
    assert claim_next(db, "ana", only, order="score", holder="a")["id"] == drawn[0]
    assert claim_next(db, "ben", only, order="threshold", holder="b")["id"] == drawn[1]
    verdicts.record(db, drawn[0], "ana", "verified")
    assert [r["id"] for r in queue.upcoming(db, "ana", only, order="newest", count=3)] == drawn[1:4]
    area = shapely.box(-57.1, -5.1, -56.0, -4.9)                 # exact-area path, same order
    assert [r["id"] for r in listing(db, Filters(sample_id=sample_id, area=area))] == drawn[1:]
    # Without a sample, the chosen order applies as before.
    assert [r["id"] for r in listing(db, order="score")][:2] == [ids[-1], ids[-2]]


@pytest.mark.parametrize("order", ["score", "threshold", "newest", "second_opinion", "uncertain"])
def test_the_next_detection_is_read_from_an_index_not_by_sorting_the_whole_queue(db, order):
    # At a million pending detections a sort took 3-4 s on every Review run; an index in
    # the queue's order makes it a few rows' read, whatever the size.
    add_detections(db, 300)
    add_detections(db, 5, source="unscored", score=None)
    status = "needs_second_opinion" if order == "second_opinion" else "pending"
    db.execute("update detections set status = ?", [status])
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        chosen = claim_next(db, "ana", order=order, holder="tab-1")
        ahead = queue.upcoming(db, "ana", order=order, count=5, skip=(chosen["id"],))
    finally:
        db.conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().lower().startswith("select * from detections")]
    assert reads, statements
    for sql in reads:
        plan = " | ".join(row[3] for row in db.execute("explain query plan " + sql))
        assert "TEMP B-TREE" not in plan, plan
    if order in ("score", "second_opinion"):
        assert chosen["score"] == max(r["score"] for r in db["detections"].rows_where("score is not null"))
        assert [r["score"] for r in ahead] == sorted((r["score"] for r in ahead), reverse=True)
    if order != "newest":
        everything = listing(db, order=order if order != "second_opinion" else "score",
                             filters=Filters(status=status), limit=400)
        assert all(r["score"] is None for r in everything[-5:])      # unscored come last


def test_the_uncertain_order_follows_each_detections_latest_rescore_whoever_writes_it(db):
    ids = add_detections(db, 4)                      # source scores 0.3 to 0.51

    def rescored(detection, score, at, model="m1"):
        db.execute("insert or replace into model_scores (detection_id, model_sha256, model_id, "
                   "score, threshold, scored_at) values (?, ?, ?, ?, 0.5, ?)",
                   [detection, model, model, score, at])

    def order():
        return [r["id"] for r in listing(db, order="uncertain")]

    rescored(ids[0], 0.9, "2026-01-01")              # 0.4 from the threshold
    rescored(ids[1], 0.45, "2026-01-01")             # 0.05: the most uncertain
    assert order() == [ids[1], ids[0], ids[3], ids[2]]   # unscored after, highest score first
    rescored(ids[0], 0.51, "2026-02-01", model="m2")     # a later model: 0.01 now
    assert order()[:2] == [ids[0], ids[1]]
    db.execute("delete from model_scores where detection_id = ? and model_sha256 = 'm2'", [ids[0]])
    assert order()[:2] == [ids[1], ids[0]]           # back to its earlier rescore
    db.execute("update model_scores set score = 0.05 where detection_id = ?", [ids[1]])
    assert order()[:2] == [ids[0], ids[1]]           # 0.45 from the threshold, against 0.4


def test_counts_by_source_and_status_read_an_index_not_every_detection(db):
    # Home's table: a scan of every detection's row took 1.6 s at a million.
    add_detections(db, 50)
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        table = queue.status_by_source(db)
    finally:
        db.conn.set_trace_callback(None)
    assert table.loc["s", "total"] == 50
    (sql,) = [s for s in statements if "group by source, status" in s]
    plan = " | ".join(row[3] for row in db.execute("explain query plan " + sql))
    assert "COVERING INDEX" in plan, plan
