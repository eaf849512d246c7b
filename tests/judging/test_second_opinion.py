"""Four eyes: a verified detection waits for a second reviewer; disputes go to an editor."""
import json

import pytest

from review.cli import main
from review.judging import verdicts
from review.judging.project_settings import SettingError, get
from review.judging.queue import Filters, claim_next
from review.judging.verdicts import status_from_history
from review.publishing.export import export
from review.store import connect

from tests.conftest import add_detections


def _rows(*steps):
    return [{"reviewer": r, "verdict": v, "final": f} for r, v, f in steps]


@pytest.mark.parametrize("steps, mode, status", [
    ([("ana", "verified", None)], "off", "verified"),
    ([("ana", "verified", None)], "verified", "needs_second_opinion"),
    ([("ana", "verified", None), ("ben", "verified", None)], "verified", "verified"),
    ([("ana", "verified", None), ("ben", "false_positive", None)], "verified", "disputed"),
    ([("ana", "verified", None), ("ana", "verified", None)], "verified", "needs_second_opinion"),
    ([("ana", "verified", None), ("ana", "unsure", None)], "verified", "unsure"),
    ([("ana", "false_positive", None)], "verified", "false_positive"),
    ([("ana", "false_positive", None)], "all", "needs_second_opinion"),
    ([("ana", "verified", None), ("ben", "false_positive", None), ("cat", "verified", None)],
     "verified", "disputed"),
    ([("ana", "verified", None), ("ben", "false_positive", None), ("eda", "false_positive", 1)],
     "verified", "false_positive"),
    ([("ana", "verified", None), ("ben", "verified", None), ("cat", "verified", None)],
     "verified", "verified"),
    ([("ana", "verified", None), ("ben", "false_positive", None), ("ben", "undo", None)],
     "verified", "needs_second_opinion"),
])
def test_second_opinion_states(steps, mode, status):
    assert status_from_history(_rows(*steps), mode) == status


def test_the_setting_is_shared_and_statuses_follow_it(db, tmp_path, capsys):
    path = db.conn.execute("pragma database_list").fetchone()[2]
    ids = add_detections(db, 4)
    verdicts.record(db, ids[0], "ana", "verified")
    assert main(["settings", "set", "second_opinion", "verified", "--db", path]) == 0
    assert get(connect(path), "second_opinion") == "verified"      # another process sees it
    assert db["detections"].get(ids[0])["status"] == "needs_second_opinion"
    verdicts.record(db, ids[1], "ana", "verified")
    verdicts.record(db, ids[1], "ben", "verified")
    verdicts.record(db, ids[2], "ana", "verified")
    verdicts.record(db, ids[2], "ben", "false_positive", reason="riverbank")
    statuses = [db["detections"].get(i)["status"] for i in ids]
    assert statuses == ["needs_second_opinion", "verified", "disputed", "pending"]
    capsys.readouterr()
    assert main(["settings", "set", "second_opinion", "off", "--db", path]) == 0
    assert "2 detections were waiting" in capsys.readouterr().out
    assert [db["detections"].get(i)["status"] for i in ids] == [
        "verified", "verified", "false_positive", "pending"]
    assert db["verdicts"].count == 5                                    # nothing removed


@pytest.mark.parametrize("args, message", [
    (["settings", "set", "colour", "blue"], "unknown setting 'colour': the settings are second_opinion, log_origin"),
    (["settings", "set", "log_origin", "has space"], "log_origin needs at least one character, no spaces and no '+'"),
    (["settings", "set", "second_opinion", "maybe"], "second_opinion can be off, verified, all, not 'maybe'"),
])
def test_bad_settings_are_refused_and_change_nothing(db, capsys, args, message):
    path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(args + ["--db", path]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert get(db, "second_opinion") == "off"
    with pytest.raises(SettingError):
        verdicts.set_second_opinion(db, "sometimes")


def test_second_opinions_go_to_anyone_but_the_first_reviewer(db):
    ids = add_detections(db, 3)
    verdicts.set_second_opinion(db, "verified")
    verdicts.record(db, ids[2], "ana", "verified")
    assert claim_next(db, "ana", order="second_opinion", holder="a") is None
    assert claim_next(db, "ben", order="second_opinion", holder="b")["id"] == ids[2]


def test_an_editors_final_decision_settles_a_dispute_and_exports_follow(db, tmp_path):
    ids = add_detections(db, 3)
    verdicts.set_second_opinion(db, "verified")
    for i in ids:
        verdicts.record(db, i, "ana", "verified")
    verdicts.record(db, ids[0], "ben", "verified")                          # confirmed
    verdicts.record(db, ids[1], "ben", "false_positive", reason="cloud")     # disputed
    exported = {}
    for status in ("verified", "needs_second_opinion", "disputed"):
        out = tmp_path / f"{status}.geojson"
        export(db, out, Filters(status=status))
        exported[status] = [f["id"] for f in json.loads(out.read_text())["features"]]
    assert exported == {"verified": [ids[0]], "needs_second_opinion": [ids[2]], "disputed": [ids[1]]}
    verdicts.record(db, ids[1], "eda", "verified", final=True)
    assert db["detections"].get(ids[1])["status"] == "verified"
    assert [h["verdict"] for h in verdicts.history(db, ids[1])] == ["verified", "false_positive", "verified"]


def test_export_refuses_an_unknown_status(db, tmp_path, capsys):
    path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["export", str(tmp_path / "x.geojson"), "--status", "confirmed", "--db", path]) == 2
    assert "use one of pending, verified" in capsys.readouterr().err
    assert not (tmp_path / "x.geojson").exists()


def test_a_verified_given_with_no_imagery_on_screen_confirms_nothing(db):
    """Two reviewers pressing 'verified' on a detection neither saw do not make it verified:
    it waits for someone who had imagery on screen."""
    from review.judging.verdicts import NO_IMAGERY, Imagery

    ids = add_detections(db, 2)
    verdicts.set_second_opinion(db, "verified")
    seen = Imagery("sentinel-2", "2023-01-01", "2023-12-31")
    for detection in ids:
        verdicts.record(db, detection, "ana", "verified", before=NO_IMAGERY, after=NO_IMAGERY)
    verdicts.record(db, ids[0], "bo", "verified", before=NO_IMAGERY, after=NO_IMAGERY)
    verdicts.record(db, ids[1], "bo", "verified", before=seen, after=seen)
    assert db["detections"].get(ids[0])["status"] == "needs_second_opinion"
    assert db["detections"].get(ids[1])["status"] == "verified"
    assert db["verdicts"].get(3)["before_source"] == "no imagery was shown"      # recorded as such
    verdicts.record(db, ids[0], "cy", "verified", after=seen)
    assert db["detections"].get(ids[0])["status"] == "verified"
