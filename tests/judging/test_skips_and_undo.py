"""Skips kept per reviewer (and expiring), the latest decision undo takes back, and the
look-ahead list of a reviewer's queue."""
import time

from review.judging import queue, verdicts

from tests.conftest import add_detections


def test_skips_belong_to_a_reviewer_and_expire(db, monkeypatch):
    ids = add_detections(db, 3)
    top = queue.claim_next(db, "Ana", holder="tab-1")["id"]
    queue.skip(db, "Ana", top, holder="tab-1")
    assert queue.holder_of(db, top) is None                     # let go of at once
    assert queue.skipped(db, "Ana") == (top,) and queue.skipped(db, "Ben") == ()
    assert queue.claim_next(db, "Ana", skip=queue.skipped(db, "Ana"), holder="tab-2")["id"] != top
    assert queue.claim_next(db, "Ben", skip=queue.skipped(db, "Ben"), holder="tab-3")["id"] == top
    later = time.time() + queue.SKIP_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert queue.skipped(db, "Ana") == ()                        # it comes back in time
    assert sorted(ids) == sorted(d["id"] for d in queue.listing(db))


def test_undo_takes_back_the_reviewers_latest_standing_decision(db):
    ids = add_detections(db, 3)
    assert verdicts.last_decision(db, "Ana") is None
    verdicts.record(db, ids[0], "Ana", "verified")
    verdicts.record(db, ids[1], "Ana", "unsure")
    assert verdicts.last_decision(db, "Ana") == ids[1]
    verdicts.undo(db, ids[1], "Ana")
    assert verdicts.last_decision(db, "Ana") == ids[0]          # a second undo goes further back
    verdicts.record(db, ids[0], "Ben", "unsure")                 # someone decided after Ana
    assert verdicts.last_decision(db, "Ana") is None
    assert verdicts.last_decision(db, "Ben") == ids[0]


def test_upcoming_is_the_queue_ahead_without_claims(db):
    ids = add_detections(db, 5)                                  # the last scores highest
    ahead = queue.upcoming(db, "Ana", count=3, skip=(ids[-1],))
    assert [d["id"] for d in ahead] == [ids[-2], ids[-3], ids[-4]]
    assert db["claims"].count == 0
