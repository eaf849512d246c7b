"""Every page, driven through Streamlit's AppTest (no browser)."""
import functools
import http.server
import json
import threading
import time

from streamlit.testing.v1 import AppTest

from review.detection.importers import import_file
from review.judging import verdicts
from review.store import connect

from tests.conftest import (FIXTURES, REPO, WEBSITE_LAYER_HA, assert_plain, mine_tile,
                            needs_fixtures)

TIMEOUT = 120
HOME, DETECT, REVIEW, MAP = (str(REPO / p) for p in (
    "app.py", "app_pages/1_Detect.py", "app_pages/2_Review.py", "app_pages/3_Map.py"))


def _detections_file(tmp_path, n=3, note=""):
    features = []
    for i in range(n):
        lon, lat = -57.0 + i * 0.01, -5.0
        features.append({"type": "Feature", "properties": {"pred": 0.6 + 0.1 * i, "id": f"d{i}"},
                         "geometry": {"type": "Polygon", "coordinates": [[
                             [lon, lat], [lon + 0.004, lat], [lon + 0.004, lat + 0.004],
                             [lon, lat + 0.004], [lon, lat]]]}})
    path = tmp_path / "detections_2023-01-01_2023-12-31.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_home_page_on_an_empty_database_says_what_to_do(db_path):
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["0", "0", "0", "0"]
    assert "database is empty" in at.info[0].value
    for _ in range(60):          # the device is checked in the background; the page does not wait
        if any("detector device: CPU" in c.value or "detector device: GPU" in c.value
               for c in at.caption):
            break
        time.sleep(1)
        at.run()
    assert any("detector device: CPU" in c.value or "detector device: GPU" in c.value
               for c in at.caption)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@needs_fixtures
def test_home_page_loads_the_published_example_from_its_url(db_path, monkeypatch):
    folder = FIXTURES / "detections" / "earthrise"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = "amazon_1_48px_v3.7_0.50_2023-01-01_2023-12-31.geojson"
    monkeypatch.setenv("REVIEW_EXAMPLE_URL", f"http://127.0.0.1:{server.server_address[1]}/{name}")
    try:
        at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
        at.button[0].click().run()
    finally:
        server.shutdown()
        server.server_close()
    assert not at.exception and not at.error
    assert [m.value for m in at.metric][2] == "1,809"
    assert "1,809 added" in at.success[0].value
    assert any("1,809 wait for a verdict" in m.value for m in at.markdown)


def test_home_page_reports_a_failed_example_download(db_path, monkeypatch):
    monkeypatch.setenv("REVIEW_EXAMPLE_URL", "http://127.0.0.1:9/nothing.geojson")
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.button[0].click().run()
    assert not at.exception
    message = at.error[0].value
    assert message.startswith("Could not reach 127.0.0.1 to download nothing.geojson")
    assert "you can still import a file from this computer" in message
    assert_plain(message)
    assert connect(db_path)["detections"].count == 0


def test_detect_page_runs_an_uploaded_tile_and_stores_candidates(db_path, tmp_path, tiny_model_path):
    tile = mine_tile(tmp_path / "upload.tif")
    at = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    at.file_uploader[0].upload("upload.tif", tile.read_bytes(), "image/tiff")
    at.selectbox[1].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "1 candidates" in at.success[0].value
    db = connect(db_path)
    assert db["runs"].count == 1 and db["detections"].count == 1
    (scene,) = list(db["scenes"].rows)
    assert scene["name"].endswith("upload.tif")
    assert (tmp_path / "data" / "scenes").is_dir()     # kept for the review page
    home = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    assert [m.value for m in home.metric][:3] == ["1", "1", "1"]


def test_home_page_imports_an_uploaded_file_once(db_path, tmp_path):
    path = _detections_file(tmp_path)
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.file_uploader(key="import_file").upload(path.name, path.read_bytes(), "application/geo+json")
    at.text_input(key="import_source").input("partner <b>desk</b>")
    at.button(key="import_button").click().run()
    assert not at.exception and not at.error
    assert "3 added" in at.success[0].value
    at.file_uploader(key="import_file").upload(path.name, path.read_bytes(), "application/geo+json")
    at.button(key="import_button").click().run()
    assert "0 added, 3 already present" in at.success[0].value
    assert {r["source"] for r in connect(db_path)["detections"].rows} == {"partner <b>desk</b>"}


def test_home_page_import_of_a_bad_file_is_a_message(db_path, tmp_path):
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.file_uploader(key="import_file").upload("x.csv", b"name\nfoo\n", "text/csv")
    at.button(key="import_button").click().run()
    assert not at.exception
    assert "latitude and longitude" in at.error[0].value


def test_detect_page_stores_a_before_tile_and_reruns_a_stored_scene(db_path, tmp_path, tiny_model_path):
    tile = mine_tile(tmp_path / "after.tif", tags={"PERIOD_START": "2024-01-01", "PERIOD_END": "2024-12-31"})
    before = mine_tile(tmp_path / "before.tif", block=(0, 0),
                       tags={"PERIOD_START": "2019-01-01", "PERIOD_END": "2019-12-31"})
    at = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    at.file_uploader[0].upload("after.tif", tile.read_bytes(), "image/tiff")
    at.file_uploader(key="before_upload").upload("before.tif", before.read_bytes(), "image/tiff")
    at.selectbox[1].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    db = connect(db_path)
    assert sorted(s["period_start"] for s in db["scenes"].rows) == ["2019-01-01", "2024-01-01"]
    # The stored scene can be run again without uploading it.
    again = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    label = next(o for o in again.selectbox(key="stored_scene").options if "2024-01-01" in o)
    again.selectbox(key="stored_scene").select(label)
    again.selectbox[1].select("A file on this machine").run()
    again.text_input(key="model_path").input(str(tiny_model_path))
    again.button[0].click().run()
    assert not again.error and connect(db_path)["runs"].count == 2


def test_detect_page_shows_bad_input_as_a_message(db_path, tmp_path, tiny_model_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    at = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    at.text_input(key="tile_path").input(str(bad))
    at.selectbox[1].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception
    assert "not a raster" in at.error[0].value
    assert connect(db_path)["runs"].count == 0



def test_a_refused_upload_is_named_as_it_was_uploaded(db_path, tmp_path, tiny_model_path):
    """The message names the file the person uploaded, not the name or the server path it
    was kept under while it was checked; and the refused upload is not kept."""
    from review import settings

    at = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    at.file_uploader[0].upload("fake.tif", b"not an image at all", "image/tiff")
    at.selectbox[1].select("A file on this machine").run()
    at.text_input(key="model_path").input(str(tiny_model_path))
    at.button[0].click().run()
    assert not at.exception
    message = at.error[0].value
    assert message.startswith("fake.tif: not a raster"), message
    scenes = settings.data_dir() / "scenes"
    assert str(scenes) not in message and "_fake" not in message, message
    assert not list(scenes.glob("*fake*"))

def test_detect_page_asks_for_a_tile(db_path):
    at = AppTest.from_file(DETECT, default_timeout=TIMEOUT).run()
    at.button[0].click().run()
    assert "Upload a GeoTIFF, give the path of one, pick a stored scene, or fetch an area" in at.error[0].value


def _review(db_path, reviewer="Ana"):
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    at.text_input(key="reviewer").input(reviewer).run()
    assert not at.exception, at.exception
    return at


def test_review_page_asks_for_a_name_first(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    assert "Enter your name" in at.info[0].value
    assert not at.subheader


def test_review_page_records_verdicts_with_the_buttons(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    at = _review(db_path)
    assert at.subheader[0].value.startswith("Detection #3 · score 0.800")   # highest score first
    at.text_input(key="note").input("<b>tailings</b> visible")
    at.button(key="verdict_verified").click().run()
    assert at.subheader[0].value.startswith("Detection #2")               # the next one, at once
    at.button(key="fp_riverbank").click().run()
    assert at.subheader[0].value.startswith("Detection #1")
    at.button(key="verdict_unsure").click().run()
    assert "Nothing left to review" in at.success[0].value
    db = connect(db_path)
    rows = list(db.execute("select detection_id, reviewer, verdict, reason, note, after_source "
                           "from verdicts order by id"))
    # No imagery covers these detections: each verdict says that nothing was shown.
    assert rows == [(3, "Ana", "verified", None, "<b>tailings</b> visible", "no imagery was shown"),
                    (2, "Ana", "false_positive", "riverbank", None, "no imagery was shown"),
                    (1, "Ana", "unsure", None, None, "no imagery was shown")]
    statuses = dict(db.execute("select id, status from detections"))
    assert statuses == {1: "unsure", 2: "false_positive", 3: "verified"}


def test_review_page_undo_and_skip(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    at = _review(db_path)
    at.button(key="verdict_verified").click().run()             # #3 verified
    at.button(key="verdict_undo").click().run()                 # back to #3, verdict undone
    assert at.subheader[0].value.startswith("Detection #3")
    at.button(key="verdict_skip").click().run()
    assert at.subheader[0].value.startswith("Detection #2")
    db = connect(db_path)
    assert [v["verdict"] for v in verdicts.history(db, 3)] == ["verified", "undo"]
    assert db["detections"].get(3)["status"] == "pending"


def test_review_history_is_in_words(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    at = _review(db_path)
    at.button(key="fp_riverbank").click().run()                 # #3 a false positive
    at.button(key="verdict_undo").click().run()                 # back to #3, with its history
    history = at.dataframe[0].value
    assert history["verdict"].tolist() == ["false positive", "undo"]
    assert history["reason"].tolist() == ["riverbank or sandbar", ""]
    assert history["note"].tolist() == ["", ""]
    assert all(len(when) == 16 and " " in when for when in history["when (UTC)"])


def test_a_new_name_takes_over_the_claim_and_no_name_lets_it_go(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    at = _review(db_path, "Ana")
    assert at.subheader[0].value.startswith("Detection #3")
    claims = "select detection_id, reviewer from claims"
    assert list(connect(db_path).execute(claims)) == [(3, "Ana")]
    at.text_input(key="reviewer").input("Ben").run()
    assert at.subheader[0].value.startswith("Detection #3")           # the same detection, now Ben's
    assert list(connect(db_path).execute(claims)) == [(3, "Ben")]
    at.text_input(key="reviewer").input("").run()
    assert "Enter your name" in at.info[0].value
    assert list(connect(db_path).execute(claims)) == []               # nobody holds it now
    other = _review(db_path, "Cy")
    assert other.subheader[0].value.startswith("Detection #3")


def test_a_session_opens_the_database_once(db_path, tmp_path, monkeypatch):
    from review import store

    import_file(connect(db_path), _detections_file(tmp_path))
    opened = []
    real_connect = store.connect
    monkeypatch.setattr(store, "connect", lambda path: opened.append(path) or real_connect(path))
    at = _review(db_path)                                        # two runs
    at.button(key="verdict_verified").click().run()              # a callback and a run
    at.button(key="verdict_undo").click().run()
    assert not at.exception and at.subheader[0].value.startswith("Detection #3")
    assert opened == [db_path]                                   # opened and migrated once
    _review(db_path, "Ben")
    assert opened == [db_path, db_path]                          # another session, its own


def test_two_reviewers_see_different_detections(db_path, tmp_path):
    import_file(connect(db_path), _detections_file(tmp_path))
    ana = _review(db_path, "Ana")
    ben = _review(db_path, "Ben")
    assert ana.subheader[0].value.split(" · ")[0] != ben.subheader[0].value.split(" · ")[0]


def test_review_page_shows_before_and_after_from_stored_scenes(db_path, tmp_path, tiny_model):
    from review.detection.imagery import open_tile
    from review.detection.runs import run_detection, store_result

    db = connect(db_path)
    before = mine_tile(tmp_path / "before.tif", block=(0, 0),
                       tags={"PERIOD_START": "2019-01-01", "PERIOD_END": "2019-12-31"})
    after = mine_tile(tmp_path / "after.tif",
                      tags={"PERIOD_START": "2024-01-01", "PERIOD_END": "2024-12-31"})
    store_result(db, run_detection(open_tile(before), tiny_model))
    store_result(db, run_detection(open_tile(after), tiny_model))
    assert db["detections"].count == 1 and db["scenes"].count == 2
    at = _review(db_path)
    assert not at.warning, [w.value for w in at.warning]
    captions = [image.caption for element in at.get("image") for image in element.proto.imgs]
    assert any(c.startswith("Before: before.tif") and "2019-01-01 to 2019-12-31" in c for c in captions)
    assert any(c.startswith("After: after.tif") and "2024-01-01 to 2024-12-31" in c for c in captions)
    at.button(key="verdict_verified").click().run()
    (verdict,) = list(db["verdicts"].rows)
    assert verdict["before_source"].startswith("before.tif") and verdict["before_end"] == "2019-12-31"
    assert verdict["after_source"].startswith("after.tif") and verdict["after_start"] == "2024-01-01"
    assert verdict["model_id"] == "tiny" and verdict["threshold"] == 0.5


def test_map_page_lists_detections_and_opens_one_in_review(db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))
    verdicts.record(db, 2, "<img src=x onerror=alert(1)>", "unsure", note="<script>x</script>")
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/3_Map.py").run()
    assert not at.exception
    assert "3 detections match, every one drawn" in at.caption[0].value
    table = at.dataframe[0].value
    assert sorted(table["id"].tolist()) == [1, 2, 3]
    assert dict(zip(table["id"], table["status"]))[2] == "unsure"
    at.selectbox(key="f_status").select("unsure").run()
    assert at.dataframe[0].value["id"].tolist() == [2]
    at.number_input(key="open_id").set_value(99).run()
    at.button(key="open_button").click().run()
    assert "There is no detection #99." in at.error[0].value
    at.number_input(key="open_id").set_value(2).run()
    at.button(key="open_button").click().run()
    assert not at.exception
    # AppTest does not follow st.switch_page; the Review page gets what it was handed.
    assert at.session_state["open_detection"] == 2
    review = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    review.session_state["open_detection"] = 2
    review.session_state["reviewer"] = "Ana"
    review.run()
    assert review.subheader[0].value.startswith("Detection #2")


def test_map_colours_follow_a_second_opinion_switch_with_no_new_verdict(db_path, tmp_path):
    """Switching second opinions on re-derives statuses without a verdict: the map (its
    cached drawing and legend) must show them waiting, not the colours from before."""
    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))
    verdicts.record(db, 2, "ana", "verified")
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/3_Map.py").run()
    legend = lambda: next(h.proto.body for h in at.get("html") if "map-legend" in h.proto.body)
    assert "verified (1)" in legend()
    verdicts.set_second_opinion(db, "verified")
    at.run()
    assert "verified (1)" not in legend() and "needs a second opinion (1)" in legend()


TRENDS, EXPORT = str(REPO / "app_pages" / "4_Trends.py"), str(REPO / "app_pages" / "5_Export.py")


@needs_fixtures
def test_trends_page_shows_the_published_yearly_totals(db_path):
    db = connect(db_path)
    for year in WEBSITE_LAYER_HA:
        import_file(db, FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson")
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert dict(zip(table["period"], table["area_ha_all"].round(1))) == {str(y): a for y, a in WEBSITE_LAYER_HA.items()}
    assert "mined-area attribute" in at.caption[0].value
    assert len(at.get("plotly_chart")) == 3              # area by status, per source, cumulative
    # Nothing reviewed: the precision chart says why instead of drawing empty axes.
    assert any("No precision yet" in i.value for i in at.info)
    assert at.get("download_button")


def test_trends_page_counts_again_when_a_verdict_or_a_setting_changes_the_data(db_path, tmp_path):
    # The tables are kept between runs while the data stay the same: a verdict recorded
    # elsewhere, a new import or a source hidden from Trends must still show on the next run.
    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    table = at.dataframe[0].value
    assert (table["verified"].sum(), table["detections"].sum()) == (0, 3)
    first = db.execute("select min(id) from detections").fetchone()[0]
    verdicts.record(db, first, "Ana", "verified")                 # another reviewer, elsewhere
    at.run()
    assert at.dataframe[0].value["verified"].sum() == 1
    import_file(db, _detections_file(tmp_path, n=2, note="more"), source="second import")
    at.run()
    assert at.dataframe[0].value["detections"].sum() == 5
    from review.analysis.trends import set_hidden

    set_hidden(db, "source", "second import", True)
    at.run()
    assert at.dataframe[0].value["detections"].sum() == 3


def test_trends_page_on_an_empty_database_and_a_bad_region_file(db_path, tmp_path):
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    assert not at.exception
    # One sentence says why: no empty axes, no charts each saying it again, no empty table
    # to download, no sample form with nothing to draw from.
    assert [i.value for i in at.info] == [
        "No detections with a period yet: import or detect some, then review them."]
    assert not at.get("plotly_chart") and not at.dataframe and not at.get("download_button")
    assert not any(h.value == "Random samples" for h in at.subheader)
    import_file(connect(db_path), _detections_file(tmp_path))
    points = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]})
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    at.file_uploader(key="t_regions").upload("points.geojson", points.encode(), "application/geo+json").run()
    assert not at.exception
    assert "regions must be polygons" in at.error[0].value
    # The detections are there: the page does not say there are none, nor that there is
    # nothing to chart; the error alone says what is wrong.
    assert not any("No detections with a period" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe


def test_trends_page_draws_a_sample_and_reports_its_estimate(db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    at.text_input(key="s_name").input("2023 stratum")
    at.number_input(key="s_size").set_value(2)
    at.button[0].click().run()
    assert not at.exception and "Sample 1 drawn" in at.success[0].value
    for (member,) in db.execute("select detection_id from sample_members"):
        verdicts.record(db, member, "ana", "verified")
    at = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    assert any("2023 stratum" in m.value and "ha verified" in m.value for m in at.markdown)


def test_export_page_prepares_verified_geojson_and_evidence_errors(db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))
    verdicts.record(db, 2, "ana", "verified")
    at = AppTest.from_file(EXPORT, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "1 detection matches" in at.markdown[0].value        # status defaults to verified
    at.button(key="x_prepare").click().run()
    assert not at.exception
    assert "Download detections.geojson (1 detections)" in at.get("download_button")[0].proto.label
    assert at.number_input(key="x_evidence_id").value == 2     # the newest verified one
    verdicts.record(db, 1, "ana", "verified")
    verdicts.record(db, 1, "ana", "false_positive", reason="other")   # changed its mind
    at = AppTest.from_file(EXPORT, default_timeout=TIMEOUT).run()
    assert at.number_input(key="x_evidence_id").value == 2
    at.button(key="x_evidence").click().run()
    assert "no stored scene covers detection 2" in at.error[0].value


def test_the_period_filters_are_dates_and_an_impossible_range_says_so(db_path, tmp_path):
    """The sidebar's period is picked as dates (typed nonsense cannot become a filter that
    silently matches nothing); a range that ends before it starts is pointed out."""
    from datetime import date

    db = connect(db_path)
    import_file(db, _detections_file(tmp_path))                       # #1-#3: 2023
    older = tmp_path / "old"
    older.mkdir()
    import_file(db, _detections_file(older).rename(older / "detections_2020-01-01_2020-12-31.geojson"))
    at = _review(db_path)                                              # #4-#6: 2020
    at.date_input(key="f_to").set_value(date(2020, 12, 31)).run()
    assert not at.exception and not at.warning
    assert at.subheader[0].value.startswith("Detection #6")
    at.date_input(key="f_from").set_value(date(2021, 1, 1)).run()
    assert "“Period from” is after “Period to”" in at.warning[0].value
    at.date_input(key="f_to").set_value(None).run()
    assert not at.warning
    assert at.subheader[0].value.startswith("Detection #3")


def test_an_empty_map_or_export_says_whether_the_filters_or_the_database_are_why(db_path, tmp_path):
    """A journalist who sees nothing is told why: no detections at all, or the sidebar's
    filters (named, with Export's default status among them)."""
    from datetime import date

    export_page = str(REPO / "app_pages" / "5_Export.py")
    at = AppTest.from_file(MAP, default_timeout=TIMEOUT).run()
    assert "No detections yet" in at.info[0].value and "filters" not in at.info[0].value
    import_file(connect(db_path), _detections_file(tmp_path))
    at = AppTest.from_file(MAP, default_timeout=TIMEOUT).run()
    at.date_input(key="f_from").set_value(date(2025, 1, 1)).run()
    assert not at.exception
    assert "filters in the sidebar (period 2025-01-01 to …)" in at.info[0].value
    at = AppTest.from_file(export_page, default_timeout=TIMEOUT).run()
    assert not at.exception
    said = " ".join(m.value for m in at.markdown)
    assert "0 detections match the filters in the sidebar (status verified)" in said
    assert "3 detections in all" in " ".join(c.value for c in at.caption)
    verdicts.record(connect(db_path), 1, "ana", "verified")
    at = AppTest.from_file(export_page, default_timeout=TIMEOUT).run()
    assert "1 detection matches the filters in the sidebar (status verified)" in " ".join(
        m.value for m in at.markdown)
