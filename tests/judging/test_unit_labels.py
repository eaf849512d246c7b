"""Labels of assessment points: appended like verdicts, in the same hash chain and Merkle
tree, never rewritten; second opinions apply; a file of labels made elsewhere is taken
whole or not at all; and an older database gains them without a verdict changing."""
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
import shapely

from review import store
from review.analysis import assessment
from review.errors import ReviewError
from review.judging import transparency_log, unit_labels, verdicts
from review.store import connect
from review.verdict_log import verify

from tests.conftest import REPO, add_detections

REGION = shapely.box(-57.02, -5.02, -56.94, -4.97)
SEEN = verdicts.Imagery("Sentinel-2 L2A median", "2024-01-01", "2024-12-31")


def _design(db, name="pará", sizes=(2, 2, 3), seed=1):
    strata = assessment.make_strata(db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    return assessment.create(db, name, strata, list(sizes), "Sizes as given.", seed=seed)


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    database = connect(tmp_path / "review.db")
    add_detections(database, 3)
    database.execute("update detections set period_start = '2024-01-01', period_end = '2024-12-31'")
    return database


def test_a_label_is_a_record_of_the_verdict_log_and_undo_appends(db):
    design = _design(db)
    first, second = [u["unit_id"] for u in assessment.units(db, design)][:2]
    verdicts.record(db, 1, "Ana", "verified", before=SEEN, after=SEEN)
    unit_labels.record(db, first, "Ana", "mining", before=SEEN, after=SEEN, note="pits")
    unit_labels.record(db, second, "Ben", "not_mining")
    unit_labels.undo(db, second, "Ben")
    rows = list(db["verdicts"].rows_where(order_by="id"))
    assert [(r["detection_id"], r["unit_id"], r["verdict"]) for r in rows] == [
        (1, None, "verified"), (None, first, "mining"), (None, second, "not_mining"),
        (None, second, "undo")]
    assert unit_labels.unit(db, first)["status"] == "mining"
    assert unit_labels.unit(db, second)["status"] == "pending"
    assert verify(db).ok and verify(db).verdicts == 4
    # The signed checkpoint covers the labels: its tree has four leaves, and a label's
    # entry names its unit.
    kept = transparency_log.checkpoint(db)
    assert kept.checkpoint.size == 4
    assert b'"unit_id":%d' % first in transparency_log.entries(db)[1]
    # Nothing of a detection's is touched: its status and history are its own.
    assert db["detections"].get(1)["status"] == "verified"
    assert len(verdicts.history(db, 1)) == 1


def test_a_changed_label_is_caught_by_the_chain_and_the_checkpoint(db, tmp_path):
    design = _design(db)
    unit = assessment.units(db, design)[0]["unit_id"]
    unit_labels.record(db, unit, "Ana", "not_mining")
    kept = transparency_log.checkpoint(db)
    path = db.execute("pragma database_list").fetchone()[2]
    db.close()
    # Someone edits the file by hand: drops the trigger and turns the label into mining.
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("drop trigger verdicts_append_only_update")
        raw.execute("update verdicts set verdict = 'mining' where unit_id = ?", [unit])
        raw.commit()
    again = connect(path)
    check = verify(again)
    assert not check.ok and "content does not match its hash" in check.problem
    with pytest.raises(transparency_log.LogError, match="do not have the root hash"):
        transparency_log.check(again, [("published", kept.note)])


def test_the_table_refuses_a_row_about_both_or_neither(db):
    design = _design(db)
    unit = assessment.units(db, design)[0]["unit_id"]
    for detection_id, unit_id in ((1, unit), (None, None)):
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("insert into verdicts (id, detection_id, unit_id, reviewer, verdict, created_at) "
                       "values (99, ?, ?, 'x', 'mining', '2024-01-01')", [detection_id, unit_id])
    unit_labels.record(db, unit, "Ana", "mining")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("delete from verdicts")


def test_a_label_for_a_point_of_another_design_is_refused(db):
    ours, theirs = _design(db, "ours"), _design(db, "theirs", seed=2)
    foreign = assessment.units(db, theirs)[0]["unit_id"]
    with pytest.raises(ReviewError, match="belongs to design 'theirs'"):
        unit_labels.record(db, foreign, "Ana", "mining", design_id=ours.id)
    with pytest.raises(ReviewError, match="unknown label"):
        unit_labels.record(db, foreign, "Ana", "gold")
    assert db["verdicts"].count == 0


def test_second_opinions_apply_to_labels_and_switching_the_mode_rederives_them(db):
    design = _design(db)
    unit = assessment.units(db, design)[0]["unit_id"]
    unit_labels.record(db, unit, "Ana", "mining", before=SEEN, after=SEEN)
    assert unit_labels.unit(db, unit)["status"] == "mining"
    verdicts.set_second_opinion(db, "verified")
    assert unit_labels.unit(db, unit)["status"] == "needs_second_opinion"
    assert unit not in [u["id"] for u in unit_labels.upcoming(db, design.id, "Ana", 10)]
    assert unit in [u["id"] for u in unit_labels.upcoming(db, design.id, "Ben", 10)]
    unit_labels.record(db, unit, "Ben", "not_mining", before=SEEN, after=SEEN)
    assert unit_labels.unit(db, unit)["status"] == "disputed"
    unit_labels.record(db, unit, "Eda", "mining", final=True)
    assert unit_labels.unit(db, unit)["status"] == "mining"
    verdicts.set_second_opinion(db, "off")
    assert unit_labels.unit(db, unit)["status"] == "mining"


def test_the_queue_serves_points_in_drawn_order_across_strata_and_never_twice_at_once(db):
    design = _design(db, sizes=(2, 2, 3))
    order = [(u["stratum"], u["position"]) for u in assessment.units(db, design)]
    assert order == [("detected", 1), ("near", 1), ("rest", 1), ("detected", 2), ("near", 2),
                     ("rest", 2), ("rest", 3)]
    ana = unit_labels.claim_next(db, design.id, "Ana", "tab-a")
    ben = unit_labels.claim_next(db, design.id, "Ben", "tab-b")
    units = assessment.units(db, design)
    assert (ana["id"], ben["id"]) == (units[0]["unit_id"], units[1]["unit_id"])
    assert unit_labels.remaining(db, design.id, "Cy") == 7


def _labels_file(tmp_path, rows):
    path = tmp_path / "labels.csv"
    path.write_text("unit_id,label,reviewer,note\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _cli(*args, db_path):
    return subprocess.run([sys.executable, "-m", "review", *args, "--db", str(db_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_labels_made_elsewhere_are_taken_whole_or_not_at_all(db, tmp_path):
    design, other = _design(db, "ours"), _design(db, "other", seed=3)
    ours = [u["unit_id"] for u in assessment.units(db, design)]
    foreign = assessment.units(db, other)[0]["unit_id"]
    path = db.execute("pragma database_list").fetchone()[2]
    bad = _labels_file(tmp_path, [(ours[0], "mining", "cee", "from CEO"), (foreign, "mining", "cee", ""),
                                  (ours[1], "not_mining", "cee", "")])
    result = _cli("assess", "label", "ours", "--from", str(bad), db_path=path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "line 3" in result.stderr and "nothing was recorded" in result.stderr
    typo = _labels_file(tmp_path, [(ours[0], "mining", "cee", ""), (ours[1], "maybe", "cee", "")])
    result = _cli("assess", "label", "ours", "--from", str(typo), db_path=path)
    assert result.returncode == 2 and "line 3" in result.stderr and "unknown label" in result.stderr
    assert db["verdicts"].count == 0
    good = _labels_file(tmp_path, [(ours[0], "mining", "cee", "from CEO"), (ours[1], "unsure", "", "")])
    result = _cli("assess", "label", "ours", "--from", str(good), "--reviewer", "dee", db_path=path)
    assert result.returncode == 0, result.stderr
    rows = list(db["verdicts"].rows_where(order_by="id"))
    assert [(r["unit_id"], r["verdict"], r["reviewer"], r["via"], r["note"]) for r in rows] == [
        (ours[0], "mining", "cee", "import", "from CEO"), (ours[1], "unsure", "dee", "import", None)]


def test_an_older_database_gains_labels_without_a_verdict_changing(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS[:16])
    old = connect(path)
    add_detections(old, 3)
    for i, verdict in ((1, "verified"), (2, "unsure"), (1, "undo")):
        (verdicts.undo(old, i, "Ana") if verdict == "undo"
         else verdicts.record(old, i, "Ana", verdict, note=f"n{i}"))
    before = [tuple(r) for r in old.execute("select * from verdicts order by id")]
    old.close()
    monkeypatch.undo()
    db = connect(path)
    assert store.schema_version(db) == len(store.MIGRATIONS)
    after = [tuple(r)[:len(before[0])] for r in db.execute("select * from verdicts order by id")]
    assert after == before and verify(db).ok
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update verdicts set verdict = 'verified' where id = 2")
    assert db["detections"].get(1)["status"] == "pending"


def test_labelling_points_leaves_a_reviewers_detection_queues_as_they_were(db):
    from review.judging import queue

    design = _design(db)
    verdicts.set_second_opinion(db, "verified")
    verdicts.record(db, 1, "Ana", "verified", before=SEEN, after=SEEN)
    unit_labels.record(db, assessment.units(db, design)[0]["unit_id"], "Ben", "mining")
    # Ben's label (a row with no detection) must not empty his second-opinion queue.
    waiting = queue.listing(db, queue.second_opinion_filters("Ben"))
    assert [d["id"] for d in waiting] == [1]
    assert verdicts.latest(db) == {1: ("Ana", "verified", None)}
