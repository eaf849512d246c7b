"""A site's dossier (review.publishing.dossier): a PDF pypdf reads, whose text holds the site,
its onset, every verdict and the context it overlaps in Portuguese, Spanish and Ukrainian;
its JSON twin holding the database's facts, with proofs that verify against the signed
checkpoint; names only when asked; bad input refused in one line with nothing written."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import date, timedelta

import pytest
import shapely
from pypdf import PdfReader

from review.analysis import context, onset, sites, spectral_series
from review.cli import main
from review.judging import merkle, signed_note, transparency_log, verdicts
from review.judging.queue import get
from review.judging.verdicts import Imagery
from review.publishing import dossier, dossier_facts, dossier_pdf, reports
from review.review_imagery import preparation
from tests.conftest import detections_with_imagery, jpeg_with_gps

NAMES = {"ua": "Рівненська область", "pt": "Terra Indígena Munduruku", "es": "Madre de Dios, Perú"}
REVIEWERS = ("Ana Sousa", "Оксана Коваленко")
REPORTER = "José Ñúñez"
BEFORE = Imagery("s2_2022.tif (GeoTIFF)", "2022-01-01", "2022-12-31")
AFTER = Imagery("s2_2023.tif (GeoTIFF)", "2023-01-01", "2023-12-31")


def _layer(path, footprint):
    """Three polygons around a footprint: one through it (Portuguese name), one over its
    east edge (Ukrainian), one over its north edge (Spanish)."""
    west, south, east, north = footprint.bounds
    shapes = {NAMES["pt"]: shapely.box(west - 0.001, south - 0.001, (west + east) / 2, north + 0.001),
              NAMES["ua"]: shapely.box(east - 0.0005, south - 0.01, east + 0.02, north + 0.01),
              NAMES["es"]: shapely.box(west - 0.02, north - 0.0003, east, north + 0.02)}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": json.loads(shapely.to_geojson(shape))}
        for name, shape in shapes.items()]}))
    return path


def _series(db, site_id, change=date(2023, 3, 20)):
    """Observations every 25 days for three years: vegetation, then bare ground from
    `change` on, the ring green throughout."""
    rows, day, number = [], date(2021, 1, 4), 0
    while day < date(2024, 6, 1):
        bare = day >= change
        rows.append({"place": spectral_series.site_place(site_id), "item_id": f"S2_{number:03d}",
                     "acquired": day.isoformat(), "source": "sentinel-2-l2a", "clear_share": 1.0,
                     "ring_clear_share": 1.0, "ndvi": 0.12 if bare else 0.82, "bsi": 0.25 if bare else -0.2,
                     "mndwi": -0.4, "ring_ndvi": 0.84, "ring_bsi": -0.21, "ring_mndwi": -0.5,
                     "footprint_pixels": 400, "ring_pixels": 3000, "fetched_at": "2024-07-01T00:00:00"})
        day, number = day + timedelta(days=25), number + 1
    db["series_observations"].insert_all(rows)


@pytest.fixture
def site(db, tmp_path):
    """One site seen in 2022 and 2023 over stored scenes: a detection verified by one
    reviewer and confirmed by a second, a false positive, one waiting for its second
    opinion, and an unreviewed one of 2022; a field report with a GPS photo; a context
    layer it overlaps; a stored time series. Returns (site id, detection ids)."""
    ids = detections_with_imagery(db, tmp_path, n=3)
    first = dict(next(db["detections"].rows_where("id = ?", [ids[0]])))
    older = {k: v for k, v in first.items() if k not in ("id", "status")}
    older.update(external_id="t-2022", period_start="2022-01-01", period_end="2022-12-31")
    db["detections"].insert(older)
    ids.append(db.execute("select max(id) from detections").fetchone()[0])
    db.execute("update detections set model_id = '48px_v4.21', threshold = 0.43, area_ha = 4.0")
    verdicts.set_second_opinion(db, "verified")
    verdicts.record(db, ids[0], REVIEWERS[0], "verified", before=BEFORE, after=AFTER, note="fresh pit")
    verdicts.record(db, ids[0], REVIEWERS[1], "verified", before=BEFORE, after=AFTER)
    verdicts.record(db, ids[1], REVIEWERS[0], "false_positive", reason="riverbank", before=BEFORE, after=AFTER)
    verdicts.record(db, ids[2], REVIEWERS[0], "verified", before=BEFORE, after=AFTER, note="waiting")
    sites.build(db, distance_m=1000)
    site_id = sites.site_of(db, ids[0])
    lon, lat = db.execute("select lon, lat from detections where id = ?", [ids[0]]).fetchone()
    photo = jpeg_with_gps(tmp_path / "photo.jpg", lon=lon + 0.0004, lat=lat)
    reports.add(db, text="Escavadeiras no leito do rio", reporter=REPORTER, detection_id=ids[0],
                seen="2024-05-31", photos=[photo])
    footprint = shapely.from_geojson(db.execute("select geometry from detections where id = ?",
                                                [ids[0]]).fetchone()[0])
    context.add(db, _layer(tmp_path / "territories.geojson", footprint), "Territories")
    _series(db, site_id)
    return site_id, ids


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _embedded(pdf: bytes) -> set[str]:
    """SHA-256 of every image stream in the PDF, as stored (a JPEG is stored as is)."""
    found = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for image in (page["/Resources"].get("/XObject") or {}).values():
            found.add(hashlib.sha256(image.get_object().get_data()).hexdigest())
    return found


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_dossier_pdf_holds_the_site_onset_verdicts_and_overlaps(db, site):
    site_id, ids = site
    made = dossier.build(db, site_id)
    reader = PdfReader(io.BytesIO(made.pdf))
    assert len(reader.pages) >= 3
    text = _flat(_text(made.pdf))
    assert f"Site {site_id}: dossier" in text
    found = onset.for_site(db, site_id)
    assert found.status == "found" and found.month
    assert found.month in text and _flat(found.words) in text
    shown = [v for d in made.facts["detections"] for v in d["verdicts"]]
    assert len(shown) == 3                                  # the waiting one's first look is withheld
    for verdict in shown:
        assert f"#{verdict['id']}" in text and verdict["log_leaf_hash"] in text
    assert "false positive (riverbank or sandbar)" in text
    assert "Waiting for a second opinion" in text
    for name in NAMES.values():                             # fonts that show all three languages
        assert name in text, name
    assert "Escavadeiras no leito do rio" in text
    assert made.facts["verdict_log"]["root_hash"] in text


def test_embedded_images_are_the_jpegs_the_json_names(db, site, monkeypatch):
    site_id, ids = site
    # The chips Review showed are prepared: the dossier takes them, rendering nothing.
    prepared = preparation.prepare(db, get(db, ids[0]), sources=("scenes",))
    preparation.prepare(db, get(db, ids[3]), sources=("scenes",))
    monkeypatch.setattr(dossier, "scene_views", lambda *args: pytest.fail("rendered again"))
    made = dossier.build(db, site_id)
    named = [side["sha256"] for shown in made.facts["imagery"] for side in (shown["before"], shown["after"]) if side]
    named += [p["embedded_sha256"] for r in made.facts["field_reports"] for p in r["photos"]]
    assert len(named) >= 4                                  # 2023 before and after, 2022 after, the photo
    assert _embedded(made.pdf) == set(named)
    by_period = {shown["period"]: shown for shown in made.facts["imagery"]}
    assert by_period["2023"]["detection_id"] == ids[0]      # the verified one is shown
    assert by_period["2023"]["before"]["start"] == "2022-01-01"
    assert by_period["2023"]["after"]["start"] == "2023-01-01"
    assert by_period["2023"]["after"]["sha256"] == hashlib.sha256(prepared.after.path().read_bytes()).hexdigest()
    assert by_period["2023"]["source"] == "stored scenes"


def test_a_period_without_its_own_imagery_says_so(db, tmp_path):
    ids = detections_with_imagery(db, tmp_path, n=1)
    db.execute("update detections set period_start = '2021-01-01', period_end = '2021-12-31'")
    sites.build(db)
    [shown] = dossier.build(db, sites.site_of(db, ids[0])).facts["imagery"]
    assert shown["after"] is None                           # the 2023 scene is no picture of 2021
    assert shown["note"].startswith("No imagery of 2021 is prepared or stored for this site")
    assert "2023-01-01 to 2023-12-31" in shown["note"]


def test_json_twin_facts_equal_the_database(db, site):
    site_id, ids = site
    made = dossier.build(db, site_id, with_names=True)
    facts = json.loads(made.json)
    assert facts == made.facts
    row = db.execute("select area_ha, lon, lat from sites where id = ?", [site_id]).fetchone()
    assert facts["site"]["id"] == site_id and facts["site"]["area_ha"] == round(row[0], 4)
    assert facts["site"]["place"]["lon"] == round(row[1], 6)
    assert facts["site"]["place"]["utm"]["crs"] == "EPSG:32633"
    periods = db.execute("select period, area_ha, state, detections from site_periods where site_id = ? "
                         "order by period", [site_id]).fetchall()
    assert [(p["period"], p["area_ha"], p["state"], p["detections"]) for p in facts["periods"]] == \
        [(p, round(a, 4), s, n) for p, a, s, n in periods]
    members = [r[0] for r in db.execute("select detection_id from site_members where site_id = ?", [site_id])]
    assert sorted(d["id"] for d in facts["detections"]) == sorted(members)
    status = dict(db.execute("select id, status from detections").fetchall())
    for detection in facts["detections"]:
        assert detection["status"] == status[detection["id"]]
        rows = db.execute("select id, reviewer, verdict, reason, note, created_at, before_source, "
                          "after_start from verdicts where detection_id = ? order by id",
                          [detection["id"]]).fetchall()
        if detection["status"] == "needs_second_opinion":
            assert detection["verdicts"] == [] and detection["verdicts_withheld"] == len(rows) == 1
            continue
        assert [(v["id"], v["reviewer"], v["verdict"], v["reason"], v["note"], v["time"],
                 v["before"]["source"], v["after"]["start"]) for v in detection["verdicts"]] == rows
    onset_now = onset.for_site(db, site_id)
    assert (facts["onset"]["status"], facts["onset"]["month"], facts["onset"]["last_before"],
            facts["onset"]["first_after"]) == (onset_now.status, onset_now.month,
                                               onset_now.last_before, onset_now.first_after)
    assert len(facts["onset"]["series"]["observations"]) == db.execute(
        "select count(*) from series_observations").fetchone()[0]
    [report] = facts["field_reports"]
    stored = db.execute("select text, reporter, seen from field_reports").fetchone()
    assert (report["text"], report["reporter"], report["seen"]) == stored
    [photo] = report["photos"]
    assert (photo["sha256"], photo["exif_time"], photo["exif_lon"], photo["exif_lat"]) == db.execute(
        "select sha256, taken_at, lon, lat from photos").fetchone()
    assert photo["exif_metres_from_site"] < 50
    assert {(r["layer"], r["value"]) for r in facts["context"]["site"]} == {("Territories", n) for n in NAMES.values()}
    for mine, theirs in zip(facts["context"]["site"], context.site_overlaps(db, site_id)):
        assert mine["overlap_ha"] == pytest.approx(theirs["overlap_ha"], abs=1e-4)
    assert sorted((r["detection_id"], r["value"], r["overlap_ha"]) for r in facts["context"]["detections"]) == \
        sorted((d, v, round(h, 4)) for d, v, h in db.execute(
            "select detection_id, value, overlap_ha from context_overlaps"))
    assert facts["models"]["by_model"] == [{"model": "48px_v4.21", "threshold": 0.43, "source": "t",
                                            "detections": 4, "score_min": 0.9, "score_max": 0.9}]
    kept = transparency_log.latest(db)
    assert facts["verdict_log"]["checkpoint"] == kept.note and facts["verdict_log"]["key"] == kept.key


def test_proofs_verify_against_the_checkpoint(db, site):
    site_id, _ = site
    for with_names in (True, False):
        facts = dossier.build(db, site_id, with_names=with_names).facts
        key = signed_note.parse_verifier(facts["verdict_log"]["key"])
        point = signed_note.parse_checkpoint(signed_note.open_note(facts["verdict_log"]["checkpoint"], key))
        for verdict in (v for d in facts["detections"] for v in d["verdicts"]):
            leaf = base64.b64decode(verdict["log_leaf_hash"])
            if with_names:
                assert merkle.leaf_hash(verdict["log_entry"].encode()) == leaf
                assert json.loads(verdict["log_entry"])["reviewer"] == verdict["reviewer"]
            else:
                assert "log_entry" not in verdict
            proof = [base64.b64decode(h) for h in verdict["inclusion_proof"]]
            assert merkle.verify_inclusion(verdict["log_index"], point.size, leaf, proof, point.root)


def test_reviewer_and_reporter_names_only_when_asked(db, site):
    site_id, _ = site
    plain = dossier.build(db, site_id)
    named = dossier.build(db, site_id, with_names=True)
    for text in (_text(plain.pdf), plain.json.decode()):
        for name in (*REVIEWERS, REPORTER):
            assert name not in text
    assert "reviewer 1" in _text(plain.pdf) and "reviewer 2" in _text(plain.pdf)
    assert "reporter 1" in plain.json.decode()
    confirmed = next(d for d in plain.facts["detections"] if len(d["verdicts"]) == 2)
    assert [v["reviewer"] for v in confirmed["verdicts"]] == ["reviewer 1", "reviewer 2"]
    named_text = _flat(_text(named.pdf))
    for name in (*REVIEWERS, REPORTER):
        assert name in named_text and name in named.json.decode()


def test_cli_writes_both_files_and_verify_dossier_checks_them(db, site, tmp_path, capsys):
    site_id, _ = site
    out = tmp_path / "out"
    out.mkdir()
    database = str(tmp_path / "review.db")
    assert main(["dossier", str(site_id), str(out / "site.pdf"), "--db", database]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["site.json", "site.pdf"]
    assert f"dossier of site {site_id}" in capsys.readouterr().out
    PdfReader(out / "site.pdf")
    key = json.loads((out / "site.json").read_text())["verdict_log"]["key"]
    assert main(["verify-dossier", str(out / "site.json"), "--key", key]) == 0
    assert "3 verdicts are entries" in capsys.readouterr().out

    assert main(["dossier", str(site_id), str(out / "named.pdf"), "--with-reviewers", "--db", database]) == 0
    capsys.readouterr()
    facts = json.loads((out / "named.json").read_text())
    confirmed = next(d for d in facts["detections"] if len(d["verdicts"]) == 2)
    confirmed["verdicts"][1]["verdict"] = "false_positive"          # a claim the log does not make
    (out / "named.json").write_text(json.dumps(facts))
    assert main(["verify-dossier", str(out / "named.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "verdict says 'false_positive'" in err


@pytest.mark.parametrize("case", ["unknown site", "missing folder", "not a pdf"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(db, site, tmp_path, capsys, case):
    site_id, _ = site
    out = tmp_path / "out"
    out.mkdir()
    target = {"unknown site": out / "x.pdf", "missing folder": tmp_path / "nowhere" / "x.pdf",
              "not a pdf": out / "x.json"}[case]
    checkpoints = db.execute("select count(*) from log_checkpoints").fetchone()[0]
    argv = ["dossier", str(999 if case == "unknown site" else site_id), str(target),
            "--db", str(tmp_path / "review.db")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert {"unknown site": "there is no site 999", "missing folder": "does not exist",
            "not a pdf": ".pdf"}[case] in err
    assert list(out.iterdir()) == [] and not (tmp_path / "nowhere").exists()
    # Refused before the log was signed: no checkpoint kept for nothing.
    assert db.execute("select count(*) from log_checkpoints").fetchone()[0] == checkpoints


def test_a_failure_while_making_leaves_no_file(db, site, tmp_path, monkeypatch, capsys):
    site_id, _ = site

    def broken(*args, **kwargs):
        raise dossier.DossierError("the layout failed")

    monkeypatch.setattr(dossier_pdf, "render", broken)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["dossier", str(site_id), str(out / "x.pdf"), "--db", str(tmp_path / "review.db")]) == 2
    assert "the layout failed" in capsys.readouterr().err
    assert list(out.iterdir()) == []                        # neither file, nor a temporary one


def test_without_series_or_imagery_it_says_so(db, tmp_path):
    box = shapely.box(-57.0, -5.0, -56.996, -4.996)
    db["detections"].insert({"source": "s", "external_id": "a", "geometry": shapely.to_geojson(box),
                             "lon": -56.998, "lat": -4.998, "west": -57.0, "south": -5.0, "east": -56.996,
                             "north": -4.996, "period_start": "2023-01-01", "period_end": "2023-12-31"})
    sites.build(db)
    made = dossier.build(db, 1)
    text = _flat(_text(made.pdf))
    assert "No time series stored: run `python -m review timeseries 1`" in text
    assert "No imagery of 2023 is prepared or stored for this site." in text
    assert "Not reviewed yet." in text and "No field report on this site." in text
    assert made.facts["verdict_log"]["tree_size"] == 0
    assert dossier_facts.utm_zone(-56.998, -4.998) == (21, "S", "EPSG:32721")


def test_dossier_button_makes_both_downloads(db, site, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    site_id, _ = site
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))

    def app(site_id: int) -> None:
        from review.ui import common, site_dossier

        database = common.page("Sites")
        if database is not None:
            site_dossier.dossier_button(database, site_id)

    at = AppTest.from_function(app, args=(site_id,), default_timeout=120)
    at.run()
    assert not at.exception
    at.button(key=f"dossier_{site_id}_make").click().run()
    assert not at.exception and not at.error
    assert len(at.download_button) == 2


def test_only_editors_may_name_people_in_a_dossier(db, site, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from review.judging import users

    site_id, _ = site
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    monkeypatch.setenv("REVIEW_SECRET_KEY", "test key")

    def app(site_id: int) -> None:
        from review.ui import common, site_dossier

        database = common.page("Sites")
        if database is not None:
            site_dossier.dossier_button(database, site_id)

    for name, role in (("ana", "reviewer"), ("eda", "editor")):
        users.add(db, name, "a long password", role=role)
        at = AppTest.from_function(app, args=(site_id,), default_timeout=120)
        at.session_state["_session_token"] = users.issue_token(db, users.User(name, role))
        at.run()
        assert not at.exception
        named = [c for c in at.checkbox if c.key == f"dossier_{site_id}_named"]
        assert bool(named) == (role == "editor")
        if named:
            named[0].check()
        at.button(key=f"dossier_{site_id}_make").click().run()
        assert not at.exception and not at.error
        made = at.session_state[f"dossier_{site_id}"]
        assert made.facts["dossier"]["names"] == ("shown" if role == "editor" else "withheld")
