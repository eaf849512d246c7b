"""The judging wing's commands: queue, verdict, verify-log, user, settings, agreement, backup."""
import json

from review.cli import main
from review.store import connect

from tests.conftest import add_detections


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path, capsys):
    notes = tmp_path / "notes.db"
    notes.write_text("my field notes, not a database")
    assert main(["queue", "--db", str(notes)]) == 2
    assert "not a usable review database" in capsys.readouterr().err
    assert notes.read_text() == "my field notes, not a database"


def test_review_commands_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "d.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": s},
         "geometry": {"type": "Point", "coordinates": [-57 + s, -5]}} for s in (0.6, 0.9)]}))
    db = str(tmp_path / "r.db")
    assert main(["import", str(path), "--db", db, "--source", "partner"]) == 0
    assert "2 added" in capsys.readouterr().out
    assert main(["queue", "--db", db, "--limit", "5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["score"] for r in rows] == [0.9, 0.6]
    first = rows[0]["id"]
    assert main(["verdict", str(first), "false_positive", "--reviewer", "ana", "--reason", "cloud",
                 "--before", "S2@2019-01-01/2019-12-31", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": first, "status": "false_positive"}
    assert main(["verdict", str(first), "maybe", "--reviewer", "ana", "--db", db]) == 2
    assert "unknown verdict 'maybe'" in capsys.readouterr().err
    assert main(["verdict", "999", "verified", "--reviewer", "ana", "--db", db]) == 2
    assert "no detection with id 999" in capsys.readouterr().err
    assert main(["queue", "--db", db]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [rows[1]["id"]]
    row = connect(db)["verdicts"].get(1)
    assert (row["before_source"], row["before_start"], row["before_end"]) == ("S2", "2019-01-01", "2019-12-31")


def test_the_judging_commands_say_what_they_did(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    (first, second) = add_detections(connect(db), 2)
    assert main(["agreement", "--db", db]) == 0
    assert capsys.readouterr().out == ("no detection has verdicts from two reviewers yet, so there "
                                       "is no agreement to measure\n")
    assert main(["verdict", str(first), "verified", "--reviewer", "ana", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": first, "status": "verified"}
    assert main(["verdict", str(first), "undo", "--reviewer", "ana", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": first, "status": "pending"}
    assert main(["queue", "--status", "all", "--db", db]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["verify-log", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("verdict log intact: 2 verdicts")
    assert main(["settings", "show", "--db", db]) == 0
    assert "second_opinion = off" in capsys.readouterr().out
    assert main(["settings", "set", "second_opinion", "--db", db]) == 2
    assert capsys.readouterr().err == ("error: settings set needs a key and a value, e.g. settings "
                                       "set second_opinion verified\n")
    assert main(["user", "add", "--db", db]) == 2
    assert capsys.readouterr().err == "error: user add needs a user name\n"
    out = tmp_path / "copy.db"
    assert main(["backup", str(out), "--db", db]) == 0
    assert capsys.readouterr().out == (f"backup of {db} written to {out} (2 verdicts); restore by "
                                       "copying it back while nobody reviews\n")
    assert connect(out)["detections"].count == 2


def test_imagery_shown_is_source_at_start_slash_end():
    from review.cli.judging import imagery

    assert imagery(None) is None and imagery("") is None
    shown = imagery("S2@2019-01-01/2019-12-31")
    assert (shown.source, shown.start, shown.end) == ("S2", "2019-01-01", "2019-12-31")
    shown = imagery("Wayback@2020-11-18")
    assert (shown.source, shown.start, shown.end) == ("Wayback", "2020-11-18", None)


def test_with_accounts_the_command_line_answers_to_them(tmp_path, capsys, monkeypatch):
    """Unauthenticated, wrong-password, unknown, under-role and other-person's-undo calls are
    refused in one line and change nothing; the right accounts are recorded as themselves."""
    import io

    from review.judging import users

    path = tmp_path / "r.db"
    db = connect(path)
    first, second = add_detections(db, 2)
    users.add(db, "ana", "ana's password", role="reviewer")
    users.add(db, "bo", "bo's password", role="reviewer")
    users.add(db, "eda", "eda's password", role="editor")

    def verdict(*args, password=None):
        monkeypatch.setattr("sys.stdin", io.StringIO("" if password is None else password + "\n"))
        capsys.readouterr()
        extra = [] if password is None else ["--password-stdin"]
        code = main(["verdict", *map(str, args), *extra, "--db", str(path)])
        return code, capsys.readouterr()

    refusals = [
        ((first, "verified", "--reviewer", "ana"), None, "give --reviewer NAME and the password"),
        ((first, "verified"), "ana's password", "give --reviewer NAME and the password"),
        ((first, "verified", "--reviewer", "ana"), "not it", "wrong user name or password"),
        ((first, "verified", "--reviewer", "nobody"), "whatever", "wrong user name or password"),
        ((first, "verified", "--reviewer", "ana", "--final"), "ana's password",
         "ana is a reviewer; this needs an editor"),
    ]
    for args, password, message in refusals:
        code, out = verdict(*args, password=password)
        assert code == 2 and out.err.count("\n") == 1 and message in out.err, (args, out.err)
        assert db["verdicts"].count == 0
    code, out = verdict(first, "verified", "--reviewer", "ana", "--note", "pit", password="ana's password")
    assert code == 0 and json.loads(out.out)["status"] == "verified"
    assert (db["verdicts"].get(1)["reviewer"], db["verdicts"].get(1)["via"]) == ("ana", "cli")
    code, out = verdict(first, "undo", "--reviewer", "bo", password="bo's password")
    assert code == 2 and "the latest decision on detection 1 is ana's; only they can take it back" in out.err
    code, out = verdict(second, "false_positive", "--reason", "cloud", "--reviewer", "eda", "--final",
                        password="eda's password")
    assert code == 0 and db["verdicts"].get(2)["final"] == 1
    code, out = verdict(second, "undo", "--reviewer", "ana", password="ana's password")
    assert code == 2 and "is final; only an editor who made it" in out.err
    assert db["verdicts"].count == 2
    code, out = verdict(second, "undo", "--reviewer", "eda", password="eda's password")
    assert code == 0 and json.loads(out.out)["status"] == "pending"
    code, out = verdict(first, "undo", "--reviewer", "ana", password="ana's password")
    assert code == 0 and json.loads(out.out)["status"] == "pending"
    assert [v["reviewer"] for v in db["verdicts"].rows_where(order_by="id")] == ["ana", "eda", "eda", "ana"]


def test_without_accounts_the_command_line_records_the_name_given_as_before(tmp_path, capsys):
    path = tmp_path / "r.db"
    (first,) = add_detections(connect(path), 1)
    assert main(["verdict", str(first), "verified", "--reviewer", "ana", "--db", str(path)]) == 0
    assert main(["verdict", str(first), "undo", "--reviewer", "bo", "--db", str(path)]) == 0
    assert [v["reviewer"] for v in connect(path)["verdicts"].rows_where(order_by="id")] == ["ana", "bo"]
