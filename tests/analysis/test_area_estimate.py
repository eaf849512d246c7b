"""The statistics of an area estimate (review.analysis.area_estimate): Olofsson et al. 2014's
worked example, the stratified estimator against a plain pandas one, the coverage of the
intervals when mining is rare, and sample-size planning."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from review.analysis.area_estimate import (ErrorMatrix, Stratum, error_matrix_estimate, plan,
                                           read_counts, robust_interval, stratified_estimate)
from review.errors import ReviewError
from review.statistics import Z95

CLASSES = ["Deforestation", "Forest gain", "Stable forest", "Stable non-forest"]
# Olofsson et al. 2014, Table 8: mapped pixels of 30 m (0.09 ha each) and counts, rows map.
AREAS_HA = [200_000 * 0.09, 150_000 * 0.09, 3_200_000 * 0.09, 6_450_000 * 0.09]
COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]


def _table8() -> ErrorMatrix:
    return ErrorMatrix(tuple(CLASSES), tuple(AREAS_HA), tuple(CLASSES), tuple(map(tuple, COUNTS)))


def _write(tmp_path, text, name="counts.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- error matrix


def test_olofsson_table_8_is_reproduced():
    result = error_matrix_estimate(_table8()).to_json()
    classes = result["classes"]
    # Section 5 of the paper: area ± 1.96·SE in ha, to the hectare. The paper multiplies by
    # 1.96, we by Z95 = 1.95996: stable non-forest's half-width is 16,281.4 here, 16,282 there.
    for name, area, half in [("Deforestation", 21_158, 6_158), ("Forest gain", 11_686, 3_756),
                             ("Stable forest", 285_770, 15_510),
                             ("Stable non-forest", 581_386, 16_282)]:
        assert round(classes[name]["area_ha"]) == area
        assert round(1.96 * classes[name]["se_ha"]) == half
        assert classes[name]["ci95_ha"] == pytest.approx(Z95 * classes[name]["se_ha"])
        assert classes[name]["ci95_ha"] == pytest.approx(half, abs=1)
    for name, users, producers, half in [("Deforestation", 0.88, 0.75, 0.21),
                                         ("Forest gain", 0.73, 0.85, None),
                                         ("Stable forest", 0.93, 0.93, 0.03),
                                         ("Stable non-forest", 0.96, 0.96, 0.02)]:
        assert round(classes[name]["users_accuracy"]["value"], 2) == users
        assert round(classes[name]["producers_accuracy"]["value"], 2) == producers
        if half is not None:
            assert round(Z95 * classes[name]["producers_accuracy"]["se"], 2) == half
    # The paper prints 0.85 ± 0.23 for forest gain; its own eq. 7 gives ± 0.254 (SE 0.1298),
    # almost all of it from the one forest-gain unit in the large stable non-forest stratum.
    assert Z95 * classes["Forest gain"]["producers_accuracy"]["se"] == pytest.approx(0.2544, abs=5e-4)
    assert round(result["overall_accuracy"]["value"], 2) == 0.95
    assert round(Z95 * result["overall_accuracy"]["se"], 2) == 0.02
    assert sum(c["area_ha"] for c in classes.values()) == pytest.approx(sum(AREAS_HA))
    json.dumps(result, allow_nan=False)


def test_user_accuracy_has_the_binomial_standard_error():
    classes = error_matrix_estimate(_table8()).to_json()["classes"]
    users = classes["Deforestation"]["users_accuracy"]
    assert users["se"] == pytest.approx(math.sqrt(0.88 * 0.12 / 74))


def test_counts_round_trip_through_a_csv_in_any_column_order(tmp_path):
    # Reference columns in another order than the rows, area_ha after them: matched by name.
    order = [2, 0, 3, 1]
    lines = ["map class," + ",".join(CLASSES[j] for j in order) + ",area_ha"]
    for i, name in enumerate(CLASSES):
        lines.append(f"{name}," + ",".join(str(COUNTS[i][j]) for j in order) + f",{AREAS_HA[i]}")
    matrix = read_counts(_write(tmp_path, "\n".join(lines) + "\n"))
    assert matrix.map_classes == tuple(CLASSES)
    assert matrix.reference_classes == tuple(CLASSES[j] for j in order)
    ours, theirs = (error_matrix_estimate(m).to_json() for m in (matrix, _table8()))
    for name in CLASSES:
        for key in ("area_ha", "se_ha", "ci95_ha"):
            assert ours["classes"][name][key] == pytest.approx(theirs["classes"][name][key])
        for key in ("users_accuracy", "producers_accuracy"):
            assert ours["classes"][name][key] == pytest.approx(theirs["classes"][name][key])
    assert ours["overall_accuracy"] == pytest.approx(theirs["overall_accuracy"])


def test_classes_on_one_side_only_have_undefined_accuracies(tmp_path):
    # "cloud" is a map class nobody labels; "road" a reference class the map lacks.
    path = _write(tmp_path, "class,area_ha,mining,other,road\n"
                            "mining,100,40,9,1\n"
                            "other,900,2,47,1\n"
                            "cloud,50,0,20,0\n")
    result = error_matrix_estimate(read_counts(path)).to_json()
    cloud, road = result["classes"]["cloud"], result["classes"]["road"]
    assert cloud == {"area_ha": None, "se_ha": None, "ci95_ha": None, "users_accuracy": None,
                     "producers_accuracy": None}
    assert road["area_ha"] == pytest.approx(100 / 50 + 900 / 50)
    assert road["users_accuracy"] is None and road["producers_accuracy"] is None
    assert result["classes"]["mining"]["users_accuracy"]["value"] == pytest.approx(0.8)
    # Overall: agreement in mining and other; none in cloud.
    assert result["overall_accuracy"]["value"] == pytest.approx((100 * 0.8 + 900 * 0.94) / 1050)
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("class,mining,other\nmining,5,1\n", "no area_ha column"),
    ("class,area_ha\nmining,10\n", "no reference class"),
    ("class,area_ha,mining,other\n", "no strata"),
    ("class,area_ha,mining,other\nmining,10,5,x\n", "line 2 (mining), column other: 'x' is not a number"),
    ("class,area_ha,mining,other\nmining,ten,5,1\n", "line 2 (mining), area_ha"),
    ("class,area_ha,mining,other\nmining,10,5,\n", "column other is empty"),
    ("class,area_ha,mining,other\nmining,10,5,-1\n", "column other: a count cannot be negative"),
    ("class,area_ha,mining,other\nmining,10,5,1.5\n", "whole number"),
    ("class,area_ha,mining,other\nmining,0,5,1\nother,10,1,5\n", "stratum mining has no area"),
    ("class,area_ha,mining,other\nmining,10,5,1\nother,10,0,0\n", "stratum other has no samples"),
    ("class,area_ha,mining,other\nmining,10,5,1\nmining,10,1,5\n", "line 3: stratum mining appears twice"),
    ("class,area_ha,mining,mining\nmining,10,5,1\n", "column mining appears twice"),
    ("class,area_ha,mining,other\nmining,10,5\n", "line 2: 3 values, the header has 4"),
])
def test_bad_counts_are_refused_with_a_line_that_says_where(tmp_path, text, words):
    with pytest.raises(ReviewError) as caught:
        read_counts(_write(tmp_path, text))
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ReviewError, match="cannot read"):
        read_counts(tmp_path / "nowhere.csv")


# ---------------------------------------------------------------------------- stratified estimate


def _pandas_estimate(strata, mapped):
    """The same estimates, written plainly over a table of units."""
    units = pd.DataFrame([{"stratum": s.name, "area": s.area_ha, "mining": float(y),
                           "mapped": float(s.name in mapped)} for s in strata for y in s.labels])
    units["hit"] = units["mining"] * units["mapped"]
    units["agree"] = (units["mining"] == units["mapped"]).astype(float)
    g = units.groupby("stratum")
    area, size = g["area"].first(), g.size()
    total = area.sum()

    def stratified(column, subset=None):
        keep = area.index if subset is None else [h for h in area.index if h in subset]
        a = area[keep]
        mean, var = g[column].mean()[keep], g[column].var(ddof=1)[keep]
        return (a * mean).sum(), math.sqrt((a ** 2 * var / size[keep]).sum())

    mining, mining_se = stratified("mining")
    hits, _ = stratified("hit")
    # Producer's accuracy by linearisation: residuals d = hit - R·mining per stratum.
    ratio = hits / mining
    units["residual"] = units["hit"] - ratio * units["mining"]
    _, residual_se = stratified("residual")
    users, users_se = stratified("hit", subset=mapped)
    mapped_area = area[[h for h in area.index if h in mapped]].sum()
    agree, agree_se = stratified("agree")
    return {"area": mining, "se": mining_se, "users": users / mapped_area,
            "users_se": users_se / mapped_area, "producers": ratio,
            "producers_se": residual_se / mining, "overall": agree / total,
            "overall_se": agree_se / total}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_stratified_estimate_matches_a_plain_pandas_one(seed):
    rng = np.random.default_rng(seed)
    names = ["detected", "detected_old", "near", "rest", "rivers"]
    strata = []
    for name in names:
        n = int(rng.integers(5, 40))
        share = rng.uniform(0.05, 0.9)
        strata.append(Stratum(name, float(rng.uniform(100, 50_000)), n,
                              [bool(v) for v in rng.random(n) < share]))
    mapped = ("detected", "detected_old")
    ours = stratified_estimate(strata, mapped=mapped, draws=2000).to_json()
    plain = _pandas_estimate(strata, mapped)
    assert ours["mining"]["area_ha"] == pytest.approx(plain["area"])
    assert ours["mining"]["se_ha"] == pytest.approx(plain["se"])
    total = sum(s.area_ha for s in strata)
    assert ours["mining"]["ci95_low_ha"] == pytest.approx(max(0, plain["area"] - Z95 * plain["se"]))
    assert ours["mining"]["ci95_high_ha"] == pytest.approx(min(total, plain["area"] + Z95 * plain["se"]))
    for key in ("users", "producers", "overall"):
        accuracy = ours[f"{key}_accuracy"]
        assert accuracy["value"] == pytest.approx(plain[key])
        assert accuracy["se"] == pytest.approx(plain[f"{key}_se"])
    assert ours["mapped_area_ha"] == pytest.approx(sum(s.area_ha for s in strata if s.name in mapped))
    assert ours["complete"] and ours["notes"] == []
    assert ours["labelled"] == ours["n"] == sum(s.n for s in strata)
    assert ours["strata"][0] == {"name": "detected", "area_ha": strata[0].area_ha, "n": strata[0].n,
                                 "labelled": strata[0].n, "mining": sum(strata[0].labels)}
    robust = ours["mining"]["robust"]
    assert robust["low_ha"] <= ours["mining"]["area_ha"] <= robust["high_ha"]
    json.dumps(ours, allow_nan=False)


def test_the_design_of_issue_25_when_the_rest_shows_no_mining():
    strata = [Stratum("detected", 2000, 100, [True] * 85 + [False] * 15),
              Stratum("near", 20_000, 100, [True] * 2 + [False] * 98),
              Stratum("rest", 400_000, 60, [False] * 60)]
    result = stratified_estimate(strata, seed=5).to_json()
    mining = result["mining"]
    assert mining["area_ha"] == pytest.approx(1700 + 400)
    # The usual interval stops short of the rest's possible mining; the robust one does not.
    assert mining["ci95_high_ha"] < 3000 < mining["robust"]["high_ha"]
    assert mining["robust"]["low_ha"] < mining["area_ha"]
    assert "Jeffreys" in mining["robust"]["method"]
    assert result["users_accuracy"]["value"] == pytest.approx(0.85)
    assert result["producers_accuracy"]["value"] == pytest.approx(1700 / 2100)
    # Same seed, same interval.
    assert stratified_estimate(strata, seed=5).to_json()["mining"]["robust"] == mining["robust"]


def test_an_incomplete_sample_is_said_to_be_so():
    strata = [Stratum("detected", 2000, 100, [True] * 30 + [False] * 10),
              Stratum("near", 20_000, 100, [False] * 100),
              Stratum("rest", 400_000, 60, [False])]
    result = stratified_estimate(strata, draws=2000).to_json()
    assert not result["complete"] and result["labelled"] == 141 and result["n"] == 260
    assert any("the sample is not complete: 141 of 260 units labelled" in note
               and "rest 1 of 60" in note for note in result["notes"])
    assert any("rest has a single labelled unit" in note for note in result["notes"])
    # One unit: a point estimate, no standard error, still a robust interval.
    assert result["mining"]["area_ha"] == pytest.approx(1500)
    assert result["mining"]["se_ha"] is None and result["mining"]["ci95_low_ha"] is None
    assert result["mining"]["robust"]["high_ha"] > 1500
    assert result["producers_accuracy"]["se"] is None
    json.dumps(result, allow_nan=False)


def test_a_stratum_with_area_and_no_labels_leaves_no_estimate():
    strata = [Stratum("detected", 2000, 100, [True] * 10), Stratum("rest", 400_000, 60, [])]
    result = stratified_estimate(strata, draws=2000).to_json()
    assert result["mining"]["area_ha"] is None and result["mining"]["robust"]["low_ha"] is None
    assert result["producers_accuracy"] is None and result["overall_accuracy"] is None
    assert result["users_accuracy"]["value"] == 1.0        # the mapped stratum alone
    assert any("rest (400,000 ha) has no labelled units yet" in note for note in result["notes"])


def test_an_empty_detected_stratum_contributes_nothing():
    strata = [Stratum("detected", 0, 0, []), Stratum("near", 20_000, 50, [True] + [False] * 49),
              Stratum("rest", 400_000, 50, [False] * 50)]
    result = stratified_estimate(strata, draws=2000).to_json()
    assert result["mining"]["area_ha"] == pytest.approx(400)
    assert result["mapped_area_ha"] == 0 and result["users_accuracy"] is None
    assert result["producers_accuracy"] == {"value": 0.0, "se": 0.0}   # the map finds nothing
    assert result["complete"] and result["notes"] == []


def test_no_mining_seen_leaves_producers_accuracy_undefined():
    strata = [Stratum("detected", 100, 10, [False] * 10), Stratum("rest", 1000, 10, [False] * 10)]
    result = stratified_estimate(strata, draws=2000).to_json()
    assert result["producers_accuracy"] is None
    assert result["mining"]["area_ha"] == 0 and result["mining"]["robust"]["low_ha"] == 0
    assert result["users_accuracy"] == {"value": 0.0, "se": 0.0}


@pytest.mark.parametrize("strata, mapped, words", [
    ([], ("detected",), "no strata"),
    ([Stratum("detected", -1, 1, [True])], ("detected",), "negative or unknown area"),
    ([Stratum("detected", 1, 1, [True, False])], ("detected",),
     "more labelled units (2) than its sample (1)"),
    ([Stratum("rest", 1, 1, [True])], ("detected",), "mapped stratum detected is not among the strata"),
    ([Stratum("a", 1, 1, []), Stratum("a", 1, 1, [])], (), "stratum a appears twice"),
    ([Stratum("a", 0, 0, [])], (), "no area"),
])
def test_a_bad_design_is_refused(strata, mapped, words):
    with pytest.raises(ReviewError, match=words.replace("(", r"\(").replace(")", r"\)")):
        stratified_estimate(strata, mapped=mapped)


# ---------------------------------------------------------------------------- coverage

AREAS = np.array([2000.0, 20_000.0, 400_000.0])
SIZES = np.array([100, 100, 60])


def _jeffreys_per_stratum(k, n):
    """The sum over strata of each stratum's Jeffreys 95% interval (0 below when k = 0, 1
    above when k = n): the conservative yardstick for the robust interval's width."""
    low = np.where(k == 0, 0.0, stats.beta.ppf(0.025, k + 0.5, n - k + 0.5))
    high = np.where(k == n, 1.0, stats.beta.ppf(0.975, k + 0.5, n - k + 0.5))
    return low @ AREAS, high @ AREAS


@pytest.mark.parametrize("rest_share", [0.0005, 0.001, 0.002])
def test_the_robust_interval_covers_where_the_usual_one_does_not(rest_share):
    """2,000 replicates of the design of issue 25 (detected 2,000 ha at 0.85, near 20,000 ha
    at 0.02, rest 400,000 ha at `rest_share`; n = 100, 100, 60), 1,000 posterior draws per
    replicate instead of the 20,000 of a real estimate, to stay fast.

    Measured (seeds 25, 26):      rest 0.0005   0.001   0.002
      ±1.96·SE coverage               0.76       0.62    0.38
      robust coverage                 0.99       0.99    0.99
      robust mean width (ha)        17,200     17,500  18,300
      Jeffreys-per-stratum width    18,200     18,500  19,200   (robust/Jeffreys 0.95)
    The usual interval fails because the rest mostly shows no mining (SE 0 there) while
    it holds 200-800 ha; plain Jeffreys posteriors on both sides covered 0.93-0.95 (a single
    hit in the rest lifts their lower bound above the truth 6% of the time at 0.001)."""
    shares = np.array([0.85, 0.02, rest_share])
    true = float(AREAS @ shares)
    rng = np.random.default_rng(25)
    k = rng.binomial(SIZES, shares, size=(2000, 3))
    p = k / SIZES
    estimate = (AREAS * p).sum(axis=1)
    se = np.sqrt((AREAS ** 2 * p * (1 - p) / (SIZES - 1)).sum(axis=1))
    usual = np.mean((estimate - Z95 * se <= true) & (true <= estimate + Z95 * se))
    low, high = robust_interval(AREAS, k, SIZES, draws=1000, seed=26)
    robust = np.mean((low <= true) & (true <= high))
    j_low, j_high = _jeffreys_per_stratum(k, SIZES)
    width_ratio = np.mean(high - low) / np.mean(j_high - j_low)
    print(f"rest {rest_share}: usual {usual:.3f}, robust {robust:.3f}, width "
          f"{np.mean(high - low):,.0f} ha vs Jeffreys {np.mean(j_high - j_low):,.0f} ha")
    assert usual < 0.85
    assert robust >= 0.94
    assert width_ratio <= 1.5


def test_the_robust_interval_of_one_sample_is_the_batched_one():
    k, n = [80, 3, 0], [100, 100, 60]
    alone = robust_interval(AREAS, k, n, draws=4000, seed=9)
    batched = robust_interval(AREAS, [k, k], n, draws=4000, seed=9)
    assert batched[0].shape == (2,)
    assert float(alone[0]) == pytest.approx(float(batched[0][0]), rel=0.05)
    assert float(alone[1]) == pytest.approx(float(batched[1][0]), rel=0.05)


# ---------------------------------------------------------------------------- planning


def test_the_plan_follows_equation_13_by_hand():
    # W = 0.25, 0.75; S_h = sqrt(.5·.5) = 0.5 and sqrt(.1·.9) = 0.3; sum W S = 0.35;
    # S(p) = 10 ha / 400 ha = 0.025; n = (0.35 / 0.025)^2 = 196; Neyman: 196·0.125/0.35 = 70
    # and 196·0.225/0.35 = 126.
    result = plan({"detected": 100, "rest": 300}, 0.5, target_se_ha=10,
                  expected_share={"rest": 0.1}, minimum_per_stratum=20)
    assert result.n_equation == 196
    assert result.n == {"detected": 70, "rest": 126} and result.total == 196
    assert result.expected_hits == pytest.approx({"detected": 35, "rest": 12.6})
    assert result.expected_se_ha == pytest.approx(10)
    assert result.warnings == []
    assert "Olofsson et al. (2014) eq. 13" in result.summary() and "196" in result.summary()
    json.dumps(result.to_json(), allow_nan=False)


def test_the_floor_per_stratum_is_applied():
    # Twice the standard error: n = 49, Neyman 17.5 -> 18 and 31.5 -> 32, both raised to 50.
    result = plan({"detected": 100, "rest": 300}, 0.5, target_se_ha=20, expected_share=0.1)
    assert result.n_equation == 49
    assert result.n == {"detected": 50, "rest": 50}
    assert "at least 50 units per stratum" in result.summary()


def test_a_rare_stratum_is_warned_about():
    result = plan({"detected": 2000, "near": 20_000, "rest": 400_000, "empty": 0}, target_se_ha=500)
    assert result.shares == {"detected": 0.9, "near": 0.01, "rest": 0.001, "empty": 0.001}
    assert result.n["empty"] == 0 and result.n["detected"] == 50
    rest = next(w for w in result.warnings if w.startswith("stratum rest"))
    assert rest == (f"stratum rest will likely show no mining (about {result.n['rest'] * 0.001:.1f} "
                    f"expected hits in {result.n['rest']} units); the interval will be wide: add "
                    f"units or a stratum along rivers")
    assert not any(w.startswith("stratum detected") or w.startswith("stratum empty")
                   for w in result.warnings)


@pytest.mark.parametrize("kwargs, words", [
    ({"strata_areas": {"detected": 10, "rest": 100}, "target_se_ha": 0}, "positive number"),
    ({"strata_areas": {"detected": 10, "rest": 100}, "target_se_ha": -5}, "positive number"),
    ({"strata_areas": {"detected": 10, "rest": 100}, "target_se_ha": 5,
      "expected_users_accuracy": 1.0}, "between 0 and 1"),
    ({"strata_areas": {"detected": 10, "rest": 100}, "target_se_ha": 5,
      "expected_share": {"rest": 0}}, "between 0 and 1"),
    ({"strata_areas": {"detected": 10, "rest": -1}, "target_se_ha": 5}, "negative or unknown area"),
    ({"strata_areas": {"detected": 0, "rest": 0}, "target_se_ha": 5}, "no stratum has any area"),
    ({"strata_areas": {}, "target_se_ha": 5}, "at least one stratum"),
    ({"strata_areas": {"rest": 10}, "target_se_ha": 5}, "mapped stratum detected"),
    ({"strata_areas": {"detected": 10, "rest": 100}, "target_se_ha": 5,
      "minimum_per_stratum": 1}, "at least 2"),
])
def test_a_bad_plan_is_refused(kwargs, words):
    with pytest.raises(ReviewError, match=words):
        plan(**kwargs)
