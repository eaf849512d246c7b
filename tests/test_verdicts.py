import multiprocessing

import pytest
import shapely

from review import queue, verdicts
from review.errors import StoreError
from review.queue import Filters, claim_next, listing
from review.store import connect
from review.verdicts import Imagery, status_from_history


def _add(db, n, source="s", **extra):
    rows = []
    for i in range(n):
        lon, lat = -57.0 + i * 0.01, -5.0
        box = shapely.box(lon, lat, lon + 0.004, lat + 0.004)
        rows.append({"source": source, "external_id": f"{source}-{i}", "geometry": shapely.to_geojson(box),
                     "lon": lon + 0.002, "lat": lat + 0.002, "west": lon, "south": lat,
                     "east": lon + 0.004, "north": lat + 0.004, "score": round(0.3 + 0.07 * i, 2),
                     "threshold": 0.5, "period_start": f"{2018 + i % 5}-01-01",
                     "period_end": f"{2018 + i % 5}-12-31", "model_id": "48px_v4.21", **extra})
    db["detections"].insert_all(rows)
    return [r["id"] for r in db["detections"].rows_where("source = ?", [source], order_by="id")]


@pytest.fixture
def db(tmp_path):
    return connect(tmp_path / "review.db")


def test_status_is_derived_from_history_and_undo_appends():
    assert status_from_history([]) == "pending"
    assert status_from_history(["verified", "false_positive"]) == "false_positive"
    assert status_from_history(["verified", "false_positive", "undo"]) == "verified"
    assert status_from_history(["verified", "undo", "undo"]) == "pending"


def test_verdict_is_stored_with_who_when_imagery_and_model(db):
    (first,) = _add(db, 1)
    before = Imagery("Sentinel-2 L1C composite", "2019-01-01", "2019-12-31")
    after = Imagery("Esri Wayback", "2024-03-14", "2024-03-14")
    verdicts.record(db, first, "Ana <script>", "false_positive", reason="riverbank",
                    note="sandbar, see 'after' chip", before=before, after=after)
    (row,) = verdicts.history(db, first)
    assert row["reviewer"] == "Ana <script>" and row["note"] == "sandbar, see 'after' chip"
    assert (row["before_source"], row["before_start"], row["after_end"]) == (
        "Sentinel-2 L1C composite", "2019-01-01", "2024-03-14")
    assert row["model_id"] == "48px_v4.21" and row["threshold"] == 0.5 and row["created_at"]
    assert db["detections"].get(first)["status"] == "false_positive"


def test_undo_keeps_the_history(db):
    (first,) = _add(db, 1)
    verdicts.record(db, first, "ana", "verified")
    verdicts.undo(db, first, "ana")
    assert db["detections"].get(first)["status"] == "pending"
    assert [v["verdict"] for v in verdicts.history(db, first)] == ["verified", "undo"]


@pytest.mark.parametrize("args, message", [
    (("verified",), None),
    (("maybe",), "unknown verdict 'maybe'"),
    (("false_positive",), "needs a reason"),
    (("false_positive", "ufo"), "unknown reason 'ufo'"),
    (("verified", "riverbank"), "only with a false_positive"),
])
def test_bad_verdicts_are_refused_and_store_nothing(db, args, message):
    (first,) = _add(db, 1)
    verdict, reason = args[0], (args[1] if len(args) > 1 else None)
    if message is None:
        verdicts.record(db, first, "ana", verdict, reason=reason)
        return
    with pytest.raises(StoreError, match=message):
        verdicts.record(db, first, "ana", verdict, reason=reason)
    assert db["verdicts"].count == 0 and db["detections"].get(first)["status"] == "pending"


def test_verdict_on_a_missing_detection_is_refused(db):
    with pytest.raises(StoreError, match="no detection with id 42"):
        verdicts.record(db, 42, "ana", "verified")
    with pytest.raises(StoreError, match="reviewer"):
        verdicts.record(db, 42, " ", "verified")


def test_queue_orders(db):
    ids = _add(db, 6)            # scores 0.3, 0.37, 0.44, 0.51, 0.58, 0.65
    assert [r["id"] for r in listing(db, order="score")] == ids[::-1]
    closest = [r["score"] for r in listing(db, order="threshold")]
    assert closest[:2] == [0.51, 0.44]
    newest = listing(db, order="newest")
    assert newest[0]["period_start"] == "2022-01-01"
    with pytest.raises(StoreError, match="unknown order"):
        listing(db, order="random")


def test_queue_filters(db):
    _add(db, 6)
    _add(db, 3, source="other")
    assert {r["source"] for r in listing(db, Filters(sources=["other"]))} == {"other"}
    assert all(0.4 <= r["score"] <= 0.6 for r in listing(db, Filters(score_min=0.4, score_max=0.6)))
    in_2019 = listing(db, Filters(period_from="2019-01-01", period_to="2019-12-31"))
    assert {r["period_start"] for r in in_2019} == {"2019-01-01"}
    area = shapely.box(-56.985, -5.01, -56.965, -4.99)        # covers detections 2 and 3 of each
    near = listing(db, Filters(area=area))
    assert sorted(r["external_id"] for r in near) == ["other-2", "s-2", "s-3"]
    assert queue.count(db, Filters(area=area)) == 3


def test_reviewed_detections_leave_the_queue(db):
    ids = _add(db, 3)
    verdicts.record(db, ids[2], "ana", "verified")
    assert ids[2] not in [r["id"] for r in listing(db)]
    assert [r["id"] for r in listing(db, Filters(status="verified"))] == [ids[2]]


def test_two_reviewers_never_get_the_same_detection(db, tmp_path):
    _add(db, 5)
    other = connect(tmp_path / "review.db")        # a second reviewer's own connection
    a = claim_next(db, "ana")
    b = claim_next(other, "ben")
    assert a["id"] != b["id"]
    assert claim_next(db, "ana")["id"] not in (b["id"],)     # ana moves on, ben keeps his
    verdicts.record(other, b["id"], "ben", "verified")
    skipped = claim_next(db, "ana", skip=(a["id"],))
    assert skipped["id"] not in (a["id"], b["id"])


def test_expired_claims_are_handed_out_again(db):
    (only,) = _add(db, 1)
    assert claim_next(db, "ana")["id"] == only
    assert claim_next(db, "ben") is None
    assert claim_next(db, "ben", claim_seconds=-1)["id"] == only


def test_racing_verdicts_are_both_kept(db, tmp_path):
    (first,) = _add(db, 1)
    other = connect(tmp_path / "review.db")
    verdicts.record(db, first, "ana", "verified")
    verdicts.record(other, first, "ben", "false_positive", reason="cloud")
    assert [v["reviewer"] for v in verdicts.history(db, first)] == ["ana", "ben"]
    assert db["detections"].get(first)["status"] == "false_positive"


def _reviewer(path, name, ids, count, results):
    db = connect(path)
    done = 0
    for i in range(count):
        verdicts.record(db, ids[i % len(ids)], name, ("verified", "unsure")[i % 2],
                        note=f"{name} {i}")
        done += 1
    results.put((name, done))


def test_four_processes_recording_500_verdicts_each_lose_none(tmp_path):
    path = tmp_path / "review.db"
    db = connect(path)
    ids = _add(db, 50)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_reviewer, args=(path, f"r{n}", ids, 500, results))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0, "a reviewer process failed (database is locked?)"
    assert sorted(results.get(timeout=5) for _ in workers) == [(f"r{n}", 500) for n in range(4)]
    assert db["verdicts"].count == 2000
    per_reviewer = dict(db.execute("select reviewer, count(*) from verdicts group by reviewer").fetchall())
    assert per_reviewer == {f"r{n}": 500 for n in range(4)}


def test_latest_is_the_last_record_per_detection(db):
    ids = _add(db, 3)
    assert verdicts.latest(db) == {}
    verdicts.record(db, ids[0], "ana", "verified", note="pits")
    verdicts.record(db, ids[0], "ben", "false_positive", reason="riverbank")
    verdicts.record(db, ids[1], "ana", "unsure", note="<b>cloud</b>")
    verdicts.undo(db, ids[1], "cy")
    assert verdicts.latest(db) == {ids[0]: ("ben", "false_positive", None), ids[1]: ("cy", "undo", None)}
