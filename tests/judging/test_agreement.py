"""Agreement between reviewers, checked against scikit-learn's and statsmodels' numbers
(kappa), irrCAC's (Gwet's AC1, Krippendorff's alpha) and the krippendorff package's, and
against published worked examples; the kappa paradox said on the CLI and the page."""
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
                                   "too_few", "ac1", "ac1_low", "ac1_high", "alpha", "alpha_low",
                                   "alpha_high", "top_category", "top_share", "prevalence_note"}
    assert [list(p) for p in out["pairs"]] == [["reviewer_a", "reviewer_b", "detections",
                                                "percent_agreement", "kappa", "ac1", "alpha"]] * 3
    assert out["overall"]["prevalence_note"] is None        # a balanced sample: kappa is fine
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


# ------------------------------------------------------------ Gwet's AC1, Krippendorff's alpha

# Gwet's and Krippendorff's worked example: 12 units, 4 raters, categories 1-5, missing
# ratings as None (Krippendorff 2011, "Computing Krippendorff's alpha-reliability", nominal
# alpha 0.743; Gwet, Handbook of Inter-Rater Reliability, AC1 0.7754 on the same data).
PUBLISHED = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
             [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
             [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
             [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]


def _published_counts():
    units = list(zip(*PUBLISHED))
    return np.array([[sum(v == k for v in unit) for k in range(1, 6)] for unit in units])


def test_ac1_and_alpha_match_the_published_worked_example():
    counts = _published_counts()
    assert agreement.gwet_ac1(counts, categories=5) == pytest.approx(0.7754, abs=5e-5)
    assert agreement.krippendorff_alpha(counts) == pytest.approx(0.743, abs=5e-4)


def test_ac1_by_hand_at_98_percent_prevalence():
    # 50 detections: 48 both verified, one verified/false positive each way. pa = 0.96;
    # pi = (0.98, 0.02, 0); pe = (0.98 * 0.02 + 0.02 * 0.98) / (3 - 1) = 0.0196;
    # AC1 = (0.96 - 0.0196) / 0.9804 = 0.959200. Kappa: pe = 0.98² + 0.02² = 0.9608,
    # kappa = (0.96 - 0.9608) / 0.0392 = -0.0204.
    counts = agreement.rating_counts([list(p) for p in zip(PREVALENT_A, PREVALENT_B)])
    assert agreement.gwet_ac1(counts) == pytest.approx(0.9592, abs=1e-6)
    assert agreement.fleiss_kappa(counts) == pytest.approx(-0.0204, abs=1e-4)


def _reference_ac1_alpha(columns: list[list]):
    """irrCAC's Gwet's AC1 and Krippendorff's alpha of raters' columns (None: missing),
    on the three verdict categories."""
    irr = pytest.importorskip("irrCAC.raw")
    import pandas as pd

    table = pd.DataFrame({f"r{i}": column for i, column in enumerate(columns)})
    cac = irr.CAC(table, categories=list(agreement.CATEGORIES), digits=12)
    return cac.gwet()["est"]["coefficient_value"], cac.krippendorff()["est"]["coefficient_value"]


def _krippendorff(columns: list[list]) -> float:
    krippendorff = pytest.importorskip("krippendorff")
    code = {c: i for i, c in enumerate(agreement.CATEGORIES)}
    data = [[np.nan if v is None else code[v] for v in column] for column in columns]
    return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")


def test_pairs_match_irrcac_and_krippendorff(judged):
    pairs = {(p["reviewer_a"], p["reviewer_b"]): p
             for p in agreement.agreement(judged, bootstrap=50).pairs}
    for (a, b), (x, y) in {("ana", "ben"): (ANA, BEN), ("ben", "cat"): (BEN[:6], CAT)}.items():
        assert pairs[a, b]["alpha"] == pytest.approx(_krippendorff([x, y]))
        ac1, alpha = _reference_ac1_alpha([x, y])
        assert pairs[a, b]["ac1"] == pytest.approx(ac1)
        assert pairs[a, b]["alpha"] == pytest.approx(alpha)


def test_overall_ac1_and_alpha_match_irrcac_and_krippendorff(judged):
    result = agreement.agreement(judged, seed=7, bootstrap=300)
    # AC1 0.7545, alpha 0.7514 on the first two reviewers' verdicts (ana and ben)
    assert result.alpha == pytest.approx(_krippendorff([ANA, BEN]))
    assert (result.ac1, result.alpha) == pytest.approx(_reference_ac1_alpha([ANA, BEN]))
    assert result.ac1_low <= result.ac1 <= result.ac1_high
    assert result.alpha_low <= result.alpha <= result.alpha_high
    again = agreement.agreement(judged, seed=7, bootstrap=300)
    assert (again.ac1_low, again.alpha_high) == (result.ac1_low, result.alpha_high)


def test_ac1_and_alpha_with_three_raters_and_missing_ratings_match_the_references():
    cat = CAT + [None] * 6
    counts = agreement.rating_counts([[v for v in unit if v is not None] for unit in zip(ANA, BEN, cat)])
    assert agreement.krippendorff_alpha(counts) == pytest.approx(_krippendorff([ANA, BEN, cat]))
    ac1, alpha = _reference_ac1_alpha([ANA, BEN, cat])
    assert agreement.gwet_ac1(counts) == pytest.approx(ac1)
    assert agreement.krippendorff_alpha(counts) == pytest.approx(alpha)


# 98% of ratings 'verified' (as in Amazon Mining Watch's check, 498 of 500 real mines),
# reviewers agreeing on 96% of 50 detections.
PREVALENT_A = ["verified"] * 48 + ["verified", "false_positive"]
PREVALENT_B = ["verified"] * 48 + ["false_positive", "verified"]


@pytest.fixture
def prevalent(db):
    ids = add_detections(db, 50)
    _record(db, ids, "ana", PREVALENT_A)
    _record(db, ids, "ben", PREVALENT_B)
    return db


def test_at_98_percent_prevalence_kappa_collapses_ac1_does_not_and_the_paradox_is_said(prevalent, capsys):
    result = agreement.agreement(prevalent, bootstrap=200)
    assert result.percent_agreement == pytest.approx(96.0)
    assert result.kappa < 0.1 < 0.9 < result.ac1
    assert result.ac1 == pytest.approx(0.9592, abs=1e-6)
    assert result.alpha == pytest.approx(_krippendorff([PREVALENT_A, PREVALENT_B]))
    assert (result.top_category, result.top_share) == ("verified", pytest.approx(0.98))
    note = result.prevalence_note
    assert note.startswith("98% of ratings are 'verified': with so one-sided a sample, kappa "
                           "understates agreement (the kappa paradox")
    assert "read Gwet's AC1 (0.96), which does not collapse at high prevalence" in note
    assert result.too_few is None and result.to_json()["overall"]["prevalence_note"] == note

    path = prevalent.conn.execute("pragma database_list").fetchone()[2]
    assert main(["agreement", "--db", path]) == 0
    out, err = capsys.readouterr()
    assert f"note: {note}" in err
    assert "96.0% agreement" in out and "Gwet's AC1 0.96 (95%" in out and "Krippendorff's alpha -0.01" in out
    assert main(["agreement", "--format", "csv", "--db", path]) == 0
    out, err = capsys.readouterr()
    header, pair, overall = out.splitlines()
    assert header == "reviewer_a,reviewer_b,detections,percent_agreement,kappa,ac1,alpha"
    assert pair.split(",")[:4] == ["ana", "ben", "50", "96.0"]
    assert float(pair.split(",")[5]) == pytest.approx(0.9592)
    assert overall.split(",")[:4] == ["overall", "", "50", "96.0"]
    assert "kappa paradox" in err
    assert main(["agreement", "--format", "json", "--db", path]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["prevalence_note"] == note


def test_no_paradox_note_when_kappa_holds_up_or_the_sample_is_balanced(db):
    ids = add_detections(db, 40)
    labels = ["verified"] * 36 + ["false_positive"] * 4       # 90% verified, full agreement
    _record(db, ids, "ana", labels)
    _record(db, ids, "ben", labels)
    result = agreement.agreement(db, bootstrap=50)
    assert result.top_share == pytest.approx(0.9) and result.kappa == pytest.approx(1.0)
    assert result.prevalence_note is None


def test_everyone_verified_everything_kappa_cannot_be_computed_and_ac1_is_one(db):
    ids = add_detections(db, 30)
    _record(db, ids, "ana", ["verified"] * 30)
    _record(db, ids, "ben", ["verified"] * 30)
    result = agreement.agreement(db, bootstrap=50)
    assert result.kappa != result.kappa and result.ac1 == 1.0          # NaN kappa
    assert result.to_json()["overall"]["kappa"] is None
    assert "100% of ratings are 'verified'" in result.prevalence_note
    assert "kappa cannot be computed" in result.prevalence_note


def test_labels_of_area_units_are_left_out(prevalent):
    columns = [c[1] for c in prevalent.execute("pragma table_info(verdicts)")]
    if "unit_id" not in columns:
        pytest.skip("this schema has no area-assessment units yet")
    before = agreement.agreement(prevalent, bootstrap=50).to_json()
    prevalent.execute("pragma foreign_keys = off")
    with prevalent.conn:
        for reviewer, verdict in (("ana", "mining"), ("ben", "not_mining"), ("cat", "unsure")):
            prevalent.execute("insert into verdicts (detection_id, unit_id, reviewer, verdict, created_at) "
                              "values (null, 1, ?, ?, '2024-01-01T00:00:00')", [reviewer, verdict])
    prevalent.execute("pragma foreign_keys = on")
    assert agreement.agreement(prevalent, bootstrap=50).to_json() == before
    assert agreement.second_opinion_record(prevalent)[0]["second_opinions"] == 50
    assert agreement.disputed_reasons(prevalent) == [{"reason": "other", "second_looks": 1, "disputed": 1}]


def test_the_agreement_page_shows_ac1_alpha_and_the_paradox(prevalent, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("REVIEW_DB", prevalent.conn.execute("pragma database_list").fetchone()[2])
    at = AppTest.from_file(str(REPO / "app_pages" / "6_Agreement.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Agreement"] == "96.0%" and metrics["Gwet's AC1"] == "0.96"
    assert metrics["Fleiss' kappa"] == "-0.02" and metrics["Krippendorff's alpha"] == "-0.01"
    assert any("98% of ratings are 'verified': with so one-sided a sample, kappa understates" in i.value
               for i in at.info)
    pairs = at.dataframe[0].value
    assert list(pairs.columns)[-2:] == ["Gwet's AC1", "Krippendorff's alpha"]
    assert pairs.iloc[0]["Gwet's AC1"] == pytest.approx(0.9592)


def test_the_bootstrap_by_distinct_rows_equals_resampling_the_detections():
    from review.statistics import bootstrap

    counts = agreement.rating_counts([list(p) for p in zip(ANA, BEN)])
    fast = agreement._bootstrap(counts, 100, seed=3)
    slow = bootstrap(agreement._overall, (counts,), 100, seed=3)
    assert np.allclose(np.array(fast, dtype=float), np.array(slow, dtype=float), equal_nan=True)
