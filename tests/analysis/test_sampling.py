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
