"""Random samples of a stratum and the verified-area estimate drawn from them."""
import pytest

from review.analysis import sampling
from review.errors import ReviewError
from review.judging import verdicts
from review.judging.queue import Filters
from review.statistics import ratio_estimate

from tests.conftest import import_squares


def test_ratio_estimate_matches_hand_computation():
    # R = 80/100; residuals 2, -16, 6, 8 -> s² = 360/3 = 120; fpc = 0.96;
    # SE(R) = sqrt(0.96 * 120 / 4) / 25 = 0.214663; half = 1.96 * SE * 2500 = 1051.8
    estimate = ratio_estimate([10, 20, 30, 40], [True, False, True, True], stratum_count=100,
                              stratum_area=2500.0)
    assert estimate.ratio == pytest.approx(0.8)
    assert estimate.verified_area_ha == pytest.approx(2000.0)
    assert estimate.low_ha == pytest.approx(948.17, abs=0.05)
    assert estimate.high_ha == 2500.0            # capped at the stratum's whole area
    with pytest.raises(ReviewError, match="no reviewed detections"):
        ratio_estimate([], [], 10, 100.0)


def test_random_sample_estimate(db, tmp_path):
    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "all 2023", Filters(), size=4, seed=3)
    members = [r[0] for r in db.execute("select detection_id from sample_members where sample_id = ?",
                                        [sample_id])]
    assert len(set(members)) == 4
    assert sampling.draw(db, "again", Filters(), size=4, seed=3) != sample_id
    again = [r[0] for r in db.execute("select detection_id from sample_members where sample_id = 2")]
    assert sorted(again) == sorted(members)             # the same seed draws the same sample
    with pytest.raises(ReviewError, match="no reviewed detections"):
        sampling.estimate(db, sample_id)
    for i, member in enumerate(members):
        if i < 3:
            verdicts.record(db, member, "ana", "verified")
        else:
            verdicts.record(db, member, "ana", "false_positive", reason="other")
    estimate = sampling.estimate(db, sample_id)
    assert estimate.sample_size == 4 and estimate.stratum_detections == 6
    assert estimate.ratio == pytest.approx(0.75, rel=0.01)        # equal areas: 3 of 4
    assert estimate.low_ha < estimate.verified_area_ha < estimate.high_ha


def test_a_stratum_that_is_empty_or_too_small_is_refused(db, tmp_path):
    with pytest.raises(ReviewError, match="no detections match"):
        sampling.draw(db, "empty", Filters(), size=3)
    import_squares(db, tmp_path, n=3)
    with pytest.raises(ReviewError, match="only 3 detections"):
        sampling.draw(db, "too many", Filters(), size=5)
    assert db["samples"].count == 0 and db["sample_members"].count == 0


def _decide(db, detection_id, verdict="verified"):
    verdicts.record(db, detection_id, "ana", verdict, reason="other" if verdict == "false_positive" else None)


def test_members_are_stored_in_drawn_order(db, tmp_path):
    import random

    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "all", Filters(), size=5, seed=11)
    stratum = sorted(r[0] for r in db.execute("select id from detections"))
    assert sampling.drawn_order(db, sample_id) == random.Random(11).sample(stratum, 5)


def test_the_estimate_uses_the_decided_prefix_of_the_drawn_order_only(db, tmp_path):
    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "all 2023", Filters(), size=5, seed=3)
    drawn = sampling.drawn_order(db, sample_id)
    _decide(db, drawn[0])
    _decide(db, drawn[1], "false_positive")
    _decide(db, drawn[3], "false_positive")            # out of order: drawn[2] is still pending
    _decide(db, drawn[4], "false_positive")
    result = sampling.estimate(db, sample_id)
    assert (result.drawn, result.used, result.left_out, result.sample_size) == (5, 2, 2, 2)
    assert result.ratio == pytest.approx(0.5)          # 1 of the first 2, not 1 of 4
    said = result.summary()
    assert "from the first 2 of 5 drawn, reviewed in drawn order" in said
    assert f"the drawn order stops at member 3 (detection {drawn[2]}), not reviewed yet" in said
    assert ("2 members decided past that point are left out: with a gap before them, they are a "
            "subset chosen by what was reviewed, not at random") in said
    assert "reviewed at random" not in said and "drawn at random" not in said
    verdicts.record(db, drawn[2], "ana", "unsure")
    assert "member 3 (detection {}), marked unsure".format(drawn[2]) in sampling.estimate(db, sample_id).summary()
    _decide(db, drawn[2])                              # the gap is filled: all five count
    whole = sampling.estimate(db, sample_id)
    assert (whole.used, whole.left_out, whole.stopped_at) == (5, 0, None)
    assert whole.ratio == pytest.approx(0.4)
    assert "from all 5 drawn at random, every one reviewed" in whole.summary()


def test_no_estimate_when_only_members_out_of_drawn_order_were_decided(db, tmp_path):
    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "s", Filters(), size=4, seed=2)
    drawn = sampling.drawn_order(db, sample_id)
    _decide(db, drawn[2])
    _decide(db, drawn[3])
    with pytest.raises(ReviewError, match=f"the first member drawn \\(detection {drawn[0]}\\) is not "
                                          "reviewed yet, and the 2 decided further down the drawn order "
                                          "are not a random sample"):
        sampling.estimate(db, sample_id)
    _decide(db, drawn[0])
    one = sampling.estimate(db, sample_id)
    assert (one.used, one.left_out) == (1, 2)
    assert "no interval from fewer than two" in one.summary() and "nan" not in one.summary()


def test_a_reviewer_working_through_the_sample_queue_keeps_the_estimate_random(db, tmp_path):
    from review.judging.queue import claim_next

    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "s", Filters(), size=4, seed=9)
    for _ in range(3):                                 # whatever order she chose
        member = claim_next(db, "ana", Filters(sample_id=sample_id), order="score", holder="a")
        _decide(db, member["id"])
    result = sampling.estimate(db, sample_id)
    assert (result.used, result.left_out) == (3, 0)
    assert result.summary().endswith("from the first 3 of 4 drawn, reviewed in drawn order "
                                     "(itself a random sample); the drawn order stops at member 4 "
                                     f"(detection {sampling.drawn_order(db, sample_id)[3]}), not "
                                     "reviewed yet")


def test_the_cli_prints_the_honest_summary(db, tmp_path, capsys):
    from review.cli import main

    import_squares(db, tmp_path)
    sample_id = sampling.draw(db, "s", Filters(), size=4, seed=9)
    drawn = sampling.drawn_order(db, sample_id)
    _decide(db, drawn[0])
    _decide(db, drawn[1])
    _decide(db, drawn[3])
    path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["sample", "--estimate", str(sample_id), "--db", path]) == 0
    out = capsys.readouterr().out
    assert "from the first 2 of 4 drawn" in out and "1 member decided past that point is left out" in out
