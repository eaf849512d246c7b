"""The assessment in the dashboard (AppTest): points labelled by key on the Review page's
assessment queue with nothing of the map on screen, the Assessment page's progress and
estimate, editors creating a design, and the estimate beside the map on Trends."""
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from review.analysis import assessment
from review.judging import unit_labels, verdicts
from review.store import connect

from tests.conftest import REPO, add_detections

REVIEW = str(REPO / "app_pages" / "2_Review.py")
ASSESSMENT = str(REPO / "app_pages" / "4_Assessment.py")
TRENDS = str(REPO / "app_pages" / "4_Trends.py")
REGION = shapely.box(-57.02, -5.02, -56.94, -4.97)


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes")       # nothing to fetch in these tests
    db = connect(path)
    add_detections(db, 6)                   # #1 and #6 are of 2018 and 2023; 2018: #1
    for i in range(1, 7):
        db.execute("update detections set period_start = '2024-01-01', period_end = '2024-12-31' "
                   "where id = ?", [i])
    strata = assessment.make_strata(db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata("detected,near:500,rest"))
    assessment.create(db, "pará 2024", strata, [3, 3, 4], "Sizes as given.", seed=5)
    return path


def _session(name, order="assess:1"):
    at = AppTest.from_file(REVIEW, default_timeout=120)
    at.session_state["reviewer"] = name
    at.session_state["reviewer_name"] = name
    at.session_state["order"] = order
    at.run()
    assert not at.exception, at.exception
    return at


def _text(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "warning", "info", "error",
                                               "subheader", "title", "success")
                    for e in at.get(kind))


def test_points_are_labelled_by_key_without_the_map_on_screen(db_path):
    ana = _session("Ana")
    page = _text(ana)
    assert "Is the ground at the crosshair mined?" in page
    # The label must not know what the map said: no stratum, score, outline or unit id.
    for word in ("detected", "near", "rest", "stratum", "score", "Detection #"):
        assert word not in page, word
    assert [b.label for b in ana.button if b.key.startswith("unit_")][:3] == [
        "Mining", "Not mining", "Can't tell"]
    db = connect(db_path)
    first = db.execute("select unit_id from unit_claims").fetchone()[0]
    ana.button(key="unit_mining").click().run()
    (label,) = list(db["verdicts"].rows_where("unit_id is not null"))
    assert (label["unit_id"], label["reviewer"], label["verdict"]) == (first, "Ana", "mining")
    assert label["before_source"] == verdicts.NO_IMAGERY.source   # nothing could be shown here
    second = db.execute("select unit_id from unit_claims").fetchone()[0]
    assert second != first
    ana.button(key="unit_not_mining").click().run()
    ana.button(key="unit_undo").click().run()                     # takes back the last label
    assert unit_labels.unit(db, second)["status"] == "pending"
    assert db.execute("select unit_id from unit_claims").fetchone()[0] == second
    assert [r["verdict"] for r in unit_labels.history(db, second)] == ["not_mining", "undo"]


def test_two_labellers_never_get_the_same_point(db_path):
    ana, ben = _session("Ana"), _session("Ben")
    db = connect(db_path)
    held = dict(db.execute("select reviewer, unit_id from unit_claims").fetchall())
    assert held["Ana"] != held["Ben"]
    ana.button(key="unit_mining").click().run()
    ben.button(key="unit_unsure").click().run()
    labelled = [r["unit_id"] for r in db["verdicts"].rows_where("unit_id is not null")]
    assert sorted(labelled) == sorted(held.values())


def test_a_lapsed_claim_taken_by_someone_else_records_nothing(db_path):
    ana = _session("Ana")
    db = connect(db_path)
    first = db.execute("select unit_id from unit_claims").fetchone()[0]
    # Ana's laptop slept: her claim lapsed, and Ben was given the same point.
    db.execute("update unit_claims set claimed_at = claimed_at - 600")
    ben = _session("Ben")
    assert db.execute("select unit_id from unit_claims where reviewer = 'Ben'").fetchone()[0] == first
    ana.button(key="unit_mining").click().run()
    assert "Nothing recorded: this point was taken over by Ben" in _text(ana)
    assert db["verdicts"].count == 0
    ben.button(key="unit_mining").click().run()
    assert [(r["unit_id"], r["reviewer"]) for r in db["verdicts"].rows] == [(first, "Ben")]
    # Ana's page moved on to another point, which she holds.
    assert db.execute("select unit_id from unit_claims where reviewer = 'Ana'").fetchone()[0] != first


def test_second_opinions_apply_to_labels_and_stay_blind(db_path):
    db = connect(db_path)
    verdicts.set_second_opinion(db, "verified")
    ana = _session("Ana")
    first = db.execute("select unit_id from unit_claims").fetchone()[0]
    ana.text_input(key="unit_note").input("fresh tailings, Ana")
    ana.button(key="unit_mining").click().run()
    assert unit_labels.unit(db, first)["status"] == "needs_second_opinion"
    # Ana is never asked again about her own point; Ben gets it, without Ana's label or note.
    assert first not in [u["id"] for u in unit_labels.upcoming(db, 1, "Ana", 20)]
    ben = _session("Ben")
    assert db.execute("select unit_id from unit_claims where reviewer = 'Ben'").fetchone()[0] == first
    assert "Ana" not in _text(ben) and "tailings" not in _text(ben)
    ben.button(key="unit_mining").click().run()
    # Ben had no imagery on screen: his "mining" is recorded but confirms nothing, as for verdicts.
    assert [r["reviewer"] for r in unit_labels.history(db, first)] == ["Ana", "Ben"]
    assert unit_labels.unit(db, first)["status"] == "needs_second_opinion"
    seen = verdicts.Imagery("Sentinel-2 L2A median", "2024-01-01", "2024-12-31")
    unit_labels.record(db, first, "Cy", "mining", before=seen, after=seen)
    assert unit_labels.unit(db, first)["status"] == "mining"


def test_assessment_page_shows_progress_and_the_estimate(db_path):
    db = connect(db_path)
    design = assessment.get(db, "pará 2024")
    for unit in assessment.units(db, design):
        label = "mining" if unit["stratum"] == "detected" else "not_mining"
        unit_labels.record(db, unit["unit_id"], "Ana", label)
    at = AppTest.from_file(ASSESSMENT, default_timeout=120).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["stratum"]) == ["detected", "near", "rest"]
    assert list(table["labelled"]) == [3, 3, 4]
    metrics = {m.label: m.value for m in at.metric}
    mapped = design.strata[0]["area_ha"]
    assert metrics["Estimated mined area"] == f"{mapped:,.0f} ha"
    assert metrics["User's accuracy"] == "100%"
    assert "Olofsson" in _text(at)


def test_an_editor_creates_a_design_from_the_page(db_path, tmp_path):
    region = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
              '"geometry": ' + shapely.to_geojson(REGION) + "}]}").encode()
    at = AppTest.from_file(ASSESSMENT, default_timeout=120).run()
    at.text_input(key="as_name").input("from the page")
    at.text_input(key="as_period").input("2024")
    at.get("file_uploader")[0].upload("aoi.geojson", region, "application/geo+json")
    next(b for b in at.button if b.label == "Draw the points").click().run()
    assert not at.exception, at.exception
    assert "design from the page (2024): detected" in at.success[0].value
    db = connect(db_path)
    design = assessment.get(db, "from the page")
    assert [s["n"] for s in design.strata] == [50, 50, 100]
    # The same name again is a message, and the first design is untouched.
    at.text_input(key="as_name").input("from the page")
    at.get("file_uploader")[0].upload("aoi.geojson", region, "application/geo+json")
    next(b for b in at.button if b.label == "Draw the points").click().run()
    assert any("exists already" in e.value for e in at.error)
    assert db.execute("select count(*) from assessment_units where assessment_id = ?",
                      [design.id]).fetchone()[0] == 200


def test_trends_shows_the_estimate_beside_the_mapped_area(db_path):
    db = connect(db_path)
    design = assessment.get(db, "pará 2024")
    for unit in assessment.units(db, design):
        unit_labels.record(db, unit["unit_id"], "Ana",
                           "mining" if unit["stratum"] != "rest" else "not_mining")
    verdicts.record(db, 1, "Ana", "verified")
    at = AppTest.from_file(TRENDS, default_timeout=120).run()
    assert not at.exception, at.exception
    assert any("counting what the detector missed" in s.value for s in at.subheader)
    table = next(d.value for d in at.dataframe if "estimated_area_ha" in d.value.columns)
    row = table.iloc[0]
    assert row["assessment"] == "pará 2024" and row["period"] == "2024"
    assert row["verified_area_ha"] == pytest.approx(
        assessment.covered_area_ha(REGION, [shapely.from_geojson(db["detections"].get(1)["geometry"])]))
    assert row["estimated_area_ha"] > row["mapped_area_ha"]     # the ring was all mining
    assert row["robust_low_ha"] <= row["estimated_area_ha"] <= row["robust_high_ha"]
    assert any("Stehman" in c.value for c in at.caption)
