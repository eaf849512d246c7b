"""Agreement between reviewers, checked against scikit-learn's and statsmodels' numbers."""
import json

import numpy as np
import pytest

from review.cli import main
from review.judging import agreement, verdicts

from tests.conftest import add_detections

sklearn_metrics = pytest.importorskip("sklearn.metrics")
inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")

# 12 detections, three reviewers; ana and ben judge all, cat the first six.
ANA = ["verified"] * 5 + ["false_positive"] * 4 + ["unsure"] * 3
BEN = ["verified"] * 4 + ["false_positive"] * 5 + ["unsure", "verified", "unsure"]
CAT = ["verified", "false_positive", "verified", "verified", "unsure", "false_positive"]


def _record(db, ids, reviewer, labels):
    for i, label in zip(ids, labels):
        verdicts.record(db, i, reviewer, label, reason="other" if label == "false_positive" else None)


@pytest.fixture
def judged(db):
    ids = add_detections(db, 12)
    _record(db, ids, "ana", ANA)
    _record(db, ids, "ben", BEN)
    _record(db, ids[:6], "cat", CAT)
    verdicts.record(db, ids[0], "cat", "unsure")     # cat changes her mind: the latest counts
    verdicts.undo(db, ids[0], "cat")                 # ... then takes it back
    return db


def test_pairs_match_cohens_kappa_from_scikit_learn(judged):
    result = agreement.agreement(judged, bootstrap=200)
    pairs = {(p["reviewer_a"], p["reviewer_b"]): p for p in result.pairs}
    assert set(pairs) == {("ana", "ben"), ("ana", "cat"), ("ben", "cat")}
    assert pairs["ana", "ben"]["detections"] == 12
    assert pairs["ana", "ben"]["kappa"] == pytest.approx(sklearn_metrics.cohen_kappa_score(ANA, BEN))
    assert pairs["ana", "ben"]["percent_agreement"] == pytest.approx(100 * np.mean(np.array(ANA) == np.array(BEN)))
    assert pairs["ben", "cat"]["kappa"] == pytest.approx(sklearn_metrics.cohen_kappa_score(BEN[:6], CAT))


def test_overall_matches_fleiss_kappa_from_statsmodels(judged):
    result = agreement.agreement(judged, seed=7, bootstrap=300)
    table, _ = inter_rater.aggregate_raters(np.array([ANA, BEN]).T)       # first two reviewers
    assert result.detections == 12
    assert result.kappa == pytest.approx(inter_rater.fleiss_kappa(table))
    assert result.kappa_low < result.kappa < result.kappa_high
    again = agreement.agreement(judged, seed=7, bootstrap=300)
    assert (again.kappa_low, again.kappa_high) == (result.kappa_low, result.kappa_high)


def test_json_shape_and_an_empty_database(judged, db, capsys, tmp_path):
    path = judged.conn.execute("pragma database_list").fetchone()[2]
    assert main(["agreement", "--format", "json", "--db", path]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["overall"]) == {"detections", "percent_agreement", "kappa", "kappa_low", "kappa_high",
                                   "too_few"}
    assert [set(p) for p in out["pairs"]] == [{"reviewer_a", "reviewer_b", "detections",
                                               "percent_agreement", "kappa"}] * 3
    empty = str(tmp_path / "empty.db")
    assert main(["agreement", "--db", empty]) == 0
    assert "no detection has verdicts from two reviewers" in capsys.readouterr().out
    assert main(["agreement", "--format", "json", "--db", empty]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == []


def test_who_stood_and_which_reasons_are_disputed(judged):
    record = {r["reviewer"]: r for r in agreement.second_opinion_record(judged)}
    assert record["ana"]["second_opinions"] == 12
    assert record["ana"]["stood"] == sum(a == b for a, b in zip(ANA, BEN))
    (reason,) = agreement.disputed_reasons(judged)
    assert reason == {"reason": "other", "second_looks": 4, "disputed": 0}


def test_too_few_detections_judged_twice_is_said_and_the_interval_holds_the_estimate(db):
    from review.judging import agreement as agreement_module

    ids = add_detections(db, 6)
    for n, i in enumerate(ids):
        verdicts.record(db, i, "ana", "verified")
        verdicts.record(db, i, "bo", "verified" if n < 5 else "unsure")
    result = agreement_module.agreement(db, bootstrap=500)
    assert result.detections == 6
    assert "only 6 detections judged by two reviewers: too few" in result.too_few
    assert result.kappa_low <= result.kappa <= result.kappa_high
    assert result.to_json()["overall"]["too_few"] == result.too_few
