import multiprocessing

import pytest

from review.errors import StoreError
from review.judging import verdicts
from review.judging.verdicts import Imagery, status_from_history
from review.store import connect

from tests.conftest import add_detections


def test_status_is_derived_from_history_and_undo_appends():
    assert status_from_history([]) == "pending"
    assert status_from_history(["verified", "false_positive"]) == "false_positive"
    assert status_from_history(["verified", "false_positive", "undo"]) == "verified"
    assert status_from_history(["verified", "undo", "undo"]) == "pending"


def test_verdict_is_stored_with_who_when_imagery_and_model(db):
    (first,) = add_detections(db, 1)
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
    (first,) = add_detections(db, 1)
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
    (first,) = add_detections(db, 1)
    verdict, reason = args[0], (args[1] if len(args) > 1 else None)
    if message is None:
        verdicts.record(db, first, "ana", verdict, reason=reason)
        assert [h["verdict"] for h in verdicts.history(db, first)] == ["verified"]
        assert db["detections"].get(first)["status"] == "verified"
        return
    with pytest.raises(StoreError, match=message):
        verdicts.record(db, first, "ana", verdict, reason=reason)
    assert db["verdicts"].count == 0 and db["detections"].get(first)["status"] == "pending"


def test_verdict_on_a_missing_detection_is_refused(db):
    with pytest.raises(StoreError, match="no detection with id 42"):
        verdicts.record(db, 42, "ana", "verified")
    with pytest.raises(StoreError, match="reviewer"):
        verdicts.record(db, 42, " ", "verified")


def test_racing_verdicts_are_both_kept(db, tmp_path):
    (first,) = add_detections(db, 1)
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
    ids = add_detections(db, 50)
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
    ids = add_detections(db, 3)
    assert verdicts.latest(db) == {}
    verdicts.record(db, ids[0], "ana", "verified", note="pits")
    verdicts.record(db, ids[0], "ben", "false_positive", reason="riverbank")
    verdicts.record(db, ids[1], "ana", "unsure", note="<b>cloud</b>")
    verdicts.undo(db, ids[1], "cy")
    assert verdicts.latest(db) == {ids[0]: ("ben", "false_positive", None), ids[1]: ("cy", "undo", None)}
