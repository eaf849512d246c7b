"""The Review page with several reviewers (AppTest sessions): claims honoured by every way
in, a blind second opinion, an editor's final decision, skips and undo that survive a
reload, and the Agreement page."""
import pytest
from streamlit.testing.v1 import AppTest

from review.judging import project_settings, queue, verdicts
from review.store import connect

from tests.conftest import REPO, add_detections

REVIEW = str(REPO / "app_pages" / "2_Review.py")
AGREEMENT = str(REPO / "app_pages" / "6_Agreement.py")
HOME = str(REPO / "app.py")


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes")       # nothing to fetch in these tests
    add_detections(connect(path), 4)                          # ids 1-4, #4 scores highest
    return path


def _session(name, link=None, order=None):
    at = AppTest.from_file(REVIEW, default_timeout=120)
    if link is not None:
        at.query_params["detection"] = str(link)
    at.session_state["reviewer"] = name
    at.session_state["reviewer_name"] = name
    if order:
        at.session_state["order"] = order
    at.run()
    assert not at.exception, at.exception
    return at


def _shown(at) -> int:
    return int(at.subheader[0].value.split(" · ")[0].split("#")[1])


def _text(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "warning", "info", "error")
                    for e in at.get(kind))


def test_a_held_detection_opens_read_only_and_review_anyway_is_recorded(db_path):
    ana = _session("Ana")
    assert _shown(ana) == 4
    ben = _session("Ben", link=4)                 # a direct link to what Ana has on screen
    assert _shown(ben) == 4
    assert "Being reviewed by Ana since" in _text(ben)
    assert ben.button(key="verdict_verified").disabled and ben.button(key="fp_riverbank").disabled
    ben.button(key="review_anyway").click().run()
    assert not ben.button(key="verdict_verified").disabled
    assert queue.holder_of(connect(db_path), 4)["reviewer"] == "Ben"
    # Ana's page has not been redrawn yet: her key records nothing, and she is told why.
    ana.button(key="verdict_verified").click().run()
    assert connect(db_path)["verdicts"].count == 0
    assert "taken over by Ben" in _text(ana) and "no longer hold" in _text(ana)
    ben.button(key="verdict_verified").click().run()
    (verdict,) = list(connect(db_path)["verdicts"].rows)
    assert (verdict["detection_id"], verdict["reviewer"]) == (4, "Ben")
    assert verdict["override"].startswith("reviewed anyway while Ana held it (since ")
    assert _shown(ben) != 4


def test_two_sessions_under_one_name_never_share_a_detection(db_path):
    first, second = _session("Ana"), _session("Ana")
    assert _shown(first) != _shown(second)
    first.button(key="verdict_verified").click().run()
    second.button(key="verdict_verified").click().run()
    rows = list(connect(db_path).execute("select detection_id from verdicts"))
    assert len(rows) == 2 and len(set(rows)) == 2


def test_a_blind_second_opinion_and_an_editors_final_decision(db_path):
    db = connect(db_path)
    verdicts.set_second_opinion(db, "verified")
    ana = _session("Ana")
    ana.text_input(key="note").input("tailings pond, Ana's note")
    ana.button(key="verdict_verified").click().run()
    assert db["detections"].get(4)["status"] == "needs_second_opinion"
    ben = _session("Ben", order="second_opinion")
    assert _shown(ben) == 4
    page = _text(ben)
    assert "a second opinion: decide without seeing the first verdict" in page
    assert "Ana" not in page and "tailings" not in page and not ben.dataframe or \
        all("Ana" not in d.value.to_string() for d in ben.dataframe)
    assert any("History hidden until you decide" in e.label for e in ben.expander)
    assert not ben.button(key="verdict_verified").disabled
    ben.button(key="fp_riverbank").click().run()
    assert db["detections"].get(4)["status"] == "disputed"
    # Ana's own first look never comes back to her as a second opinion.
    assert "Nothing left to review" in _session("Ana", order="second_opinion").success[0].value
    cy = _session("Cy", order="disputed")                    # the local user may edit
    assert _shown(cy) == 4
    assert "Your decision is final" in _text(cy)
    cy.button(key="verdict_verified").click().run()
    rows = verdicts.history(db, 4)
    assert [(r["reviewer"], r["verdict"], r["final"]) for r in rows] == [
        ("Ana", "verified", None), ("Ben", "false_positive", None), ("Cy", "verified", 1)]
    assert db["detections"].get(4)["status"] == "verified"


def test_a_decided_detection_shows_its_status_and_changing_it_is_explicit(db_path):
    db = connect(db_path)
    verdicts.record(db, 2, "Ben", "false_positive", reason="riverbank")
    ana = _session("Ana", link=2)
    assert _shown(ana) == 2
    assert "Status: false positive" in _text(ana) and "by Ben" in _text(ana)
    assert ana.button(key="verdict_verified").disabled
    ana.toggle(key="change_2").set_value(True).run()
    ana.button(key="verdict_verified").click().run()
    assert [r["verdict"] for r in verdicts.history(db, 2)] == ["false_positive", "verified"]


def test_skips_and_undo_survive_a_reload(db_path):
    ana = _session("Ana")
    ana.button(key="verdict_skip").click().run()             # #4 skipped
    ana.button(key="verdict_verified").click().run()         # #3 verified
    queue.release(connect(db_path), ana.session_state["_claim_holder"])   # the tab is closed
    again = _session("Ana")                                   # a reload: a new session
    assert _shown(again) == 2                                 # #4 stays skipped, #3 is done
    assert not again.button(key="verdict_undo").disabled
    again.button(key="verdict_undo").click().run()
    assert _shown(again) == 3
    assert connect(db_path)["detections"].get(3)["status"] == "pending"
    assert _shown(_session("Ben")) == 4                       # skips are Ana's, not everyone's


def test_leaving_the_review_page_lets_go_of_the_claim(db_path):
    ana = AppTest.from_file(HOME, default_timeout=120)
    ana.session_state["reviewer"] = ana.session_state["reviewer_name"] = "Ana"
    ana.run().switch_page("app_pages/2_Review.py").run()
    assert queue.holder_of(connect(db_path), 4)["reviewer"] == "Ana"
    ana.switch_page("app_pages/3_Map.py").run()
    assert queue.holder_of(connect(db_path), 4) is None


def test_home_shows_the_setting_and_the_agreement_page_reports(db_path):
    db = connect(db_path)
    home = AppTest.from_file(HOME, default_timeout=120).run()
    assert any("Second opinions: off" in c.value for c in home.caption)
    empty = AppTest.from_file(AGREEMENT, default_timeout=120).run()
    assert "No detection has verdicts from two reviewers yet" in empty.info[0].value
    project_settings.write(db, "second_opinion", "all")
    for detection, (a, b) in {1: ("verified", "verified"), 2: ("false_positive", "verified"),
                              3: ("false_positive", "false_positive"), 4: ("unsure", "verified")}.items():
        verdicts.record(db, detection, "Ana", a, reason="riverbank" if a == "false_positive" else None)
        verdicts.record(db, detection, "Ben", b, reason="aquaculture" if b == "false_positive" else None)
    at = AppTest.from_file(AGREEMENT, default_timeout=120).run()
    assert not at.exception
    assert at.metric[0].value == "4" and at.metric[1].value == "50.0%"
    pairs = at.dataframe[0].value
    assert pairs.iloc[0]["reviewer"] == "Ana" and pairs.iloc[0]["detections both judged"] == 4
    stood = at.dataframe[1].value
    assert stood.iloc[0]["reviewer"] == "Ana" and stood.iloc[0]["stood"] == 2
    reasons = at.dataframe[2].value
    assert reasons.iloc[0]["reason"] == "riverbank or sandbar" and reasons.iloc[0]["disputed"] == 1


def test_the_claim_is_renewed_while_on_screen_and_a_lost_one_is_said(db_path):
    db = connect(db_path)
    ana = _session("Ana")
    db.execute("update claims set claimed_at = claimed_at - 100")    # nearly expired
    ana.session_state["_renewed"] = 0                                  # the timer is due
    ana.run()
    assert queue.holder_of(db, 4)["since"] > __import__("time").time() - 5
    queue.claim(db, "Ben", 4, holder="ben-tab", force=True)           # Ben reviews it anyway
    ana.run()
    assert "You no longer hold this detection: it is being reviewed by Ben" in _text(ana)
    assert ana.button(key="verdict_verified").disabled


def test_a_key_pressed_for_one_detection_records_nothing_on_the_next_one_unseen(db_path):
    # The reviewer presses "v" on #4 while the page has moved on to #3 (a second press before
    # #3 reached the screen): the press belongs to #4's buttons, so #3 gets no verdict.
    db = connect(db_path)
    ana = _session("Ana")
    assert _shown(ana) == 4
    ana.session_state["current_id"] = 3              # moved on in the session, not on screen
    ana.button(key="verdict_verified").click().run()
    assert db["verdicts"].count == 0
    assert "Nothing recorded: #3 had not reached your screen" in " ".join(e.value for e in ana.error)
    assert _shown(ana) == 3                          # now on screen: a press decides it
    ana.button(key="verdict_verified").click().run()
    assert [(v["detection_id"], v["verdict"]) for v in db["verdicts"].rows] == [(3, "verified")]
