"""The Field reports page (AppTest), field photos in Review, and the helpers they read in
review.publishing.reports. Everything people typed is shown as text, never as Markdown or HTML."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from review.analysis import sites
from review.detection.importers import import_file
from review.judging.queue import Filters
from review.publishing import reports
from review.publishing.export import export
from review.store import connect

from tests.conftest import REPO, jpeg_with_gps, local_browser, needs_chromium

TIMEOUT = 120
HOME, REPORTS = str(REPO / "app.py"), str(REPO / "app_pages" / "7_Field_reports.py")
HTML = "<img src=x onerror=alert(1)> pits **and** [a link](http://example.com)"


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    return path


def _detections(tmp_path, n=3):
    """n 0.004° squares along -5° latitude from -57° longitude, 0.01° apart (2023)."""
    features = [{"type": "Feature", "properties": {"pred": 0.6 + 0.1 * i},
                 "geometry": {"type": "Polygon", "coordinates": [[
                     [-57.0 + i * 0.01, -5.0], [-56.996 + i * 0.01, -5.0],
                     [-56.996 + i * 0.01, -4.996], [-57.0 + i * 0.01, -4.996],
                     [-57.0 + i * 0.01, -5.0]]]}} for i in range(n)]
    path = tmp_path / "detections_2023-01-01_2023-12-31.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _page(name="Ana") -> AppTest:
    at = AppTest.from_file(REPORTS, default_timeout=TIMEOUT)
    if name:
        at.session_state["reviewer"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def _markdown(at) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info, *at.success, *at.error])


# ------------------------------------------------------------------- the test


def test_a_gps_photo_attaches_to_the_nearest_detection_and_shows_in_review_and_export(
        db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    # A real JPEG whose EXIF puts it 150 m east of detection 2 (and 800 m from the others).
    photo = jpeg_with_gps(tmp_path / "pits.jpg", lon=-56.9846, lat=-4.998, colour="orange")
    stored = reports.add(db, "Fresh pits and a sluice", "Ana", seen="2024-05-31", photos=[photo])
    assert (stored["detection_id"], stored["position_from"], stored["lead"]) == (2, "photo", False)
    assert 100 < stored["distance_m"] < 200
    sha = stored["photos"][0]["sha256"]

    review = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    review.session_state["reviewer"] = "Ben"
    review.session_state["open_detection"] = 2
    review.run().switch_page("app_pages/2_Review.py").run()
    assert not review.exception, review.exception
    assert review.subheader[0].value.startswith("Detection #2")
    captions = [i.caption for element in review.get("image") for i in element.proto.imgs]
    assert f"Field photo · report #{stored['id']} · seen 2024-05-31" in captions
    assert any(c.value == "Field photos (1)" for c in review.caption)

    out = tmp_path / "export.geojson"
    export(db, out, Filters(status=None))
    by_id = {f["properties"]["id"]: f["properties"] for f in json.loads(out.read_text())["features"]}
    assert [p["sha256"] for r in by_id[2]["field_reports"] for p in r["photos"]] == [sha]
    assert by_id[1]["field_reports"] == by_id[3]["field_reports"] == []


def test_review_shows_no_field_photos_when_there_are_none(db_path, tmp_path):
    import_file(connect(db_path), _detections(tmp_path))
    review = AppTest.from_file(str(REPO / "app_pages" / "2_Review.py"), default_timeout=TIMEOUT)
    review.session_state["reviewer"] = "Ben"
    review.run()
    assert review.subheader[0].value.startswith("Detection #")
    assert not [c for c in review.caption if c.value.startswith("Field photos")]


# ------------------------------------------------------------------------- the page


def test_the_page_asks_for_a_name_before_a_report_can_be_filed(db_path, tmp_path):
    at = _page(name="")
    assert "Enter your name in the sidebar" in at.info[0].value
    assert not [b for b in at.button if b.label == "Save report"]
    assert at.subheader[0].value == "Reports (0)"


def test_a_report_about_a_detection_is_saved_and_listed_as_text(db_path, tmp_path):
    import_file(connect(db_path), _detections(tmp_path))
    at = _page(name="<b>Ana</b>")
    at.text_area(key="fr_text_0").input(HTML)
    at.date_input(key="fr_seen_0").set_value("2024-05-30")
    at.radio(key="fr_about_0").set_value("detection").run()
    at.number_input(key="fr_detection_0").set_value(3)
    at.button(key="fr_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success[0].value == "Report #1 saved with 0 photo(s), about detection #3."
    (row,) = reports.listing(connect(db_path))
    assert (row["text"], row["reporter"], row["seen"], row["detection_id"], row["via"]) == (
        HTML, "<b>Ana</b>", "2024-05-30", 3, "dashboard")
    assert HTML in _texts(at) and "Reporter: <b>Ana</b>" in _texts(at)
    assert "<img" not in _markdown(at) and "<b>" not in _markdown(at) and "example.com" not in _markdown(at)
    assert at.text_area(key="fr_text_1").value == ""                      # a blank form again


def test_a_report_that_cannot_be_saved_is_one_sentence_and_stores_nothing(db_path, tmp_path):
    import_file(connect(db_path), _detections(tmp_path))
    at = _page()
    at.text_area(key="fr_text_0").input("tailings")
    at.radio(key="fr_about_0").set_value("detection").run()
    at.number_input(key="fr_detection_0").set_value(42)
    at.button(key="fr_save").click().run()
    assert [e.value for e in at.error] == ["no detection with id 42"]
    at.radio(key="fr_about_0").set_value("position").run()
    at.button(key="fr_save").click().run()
    assert [e.value for e in at.error] == [
        "a report needs what it is about: a site, a detection, or a position (given, or read "
        "from a photo's GPS)"]
    at.number_input(key="fr_lon_0").set_value(-57.0)
    at.button(key="fr_save").click().run()
    assert [e.value for e in at.error] == ["a position needs both a longitude and a latitude"]
    at.text_area(key="fr_text_0").input("")
    at.button(key="fr_save").click().run()
    assert [e.value for e in at.error] == ["the report's text is empty"]
    assert connect(db_path)["field_reports"].count == 0


def test_a_position_shows_where_the_report_goes_and_far_away_it_is_a_lead(db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    sites.build(db)
    at = _page()
    at.text_area(key="fr_text_0").input("new pits by the road")
    at.number_input(key="fr_lon_0").set_value(-56.975)
    at.number_input(key="fr_lat_0").set_value(-4.998).run()
    assert at.info[0].value.startswith("From the position given (-4.99800, -56.97500) the report "
                                       "will be attached to detection #3 (")
    assert "and site #3 (" in at.info[0].value
    at.button(key="fr_save").click().run()
    assert "about detection #3 and site #3, " in at.success[0].value
    at.text_area(key="fr_text_1").input("smoke over the hills")
    at.number_input(key="fr_lon_1").set_value(-50.0)
    at.number_input(key="fr_lat_1").set_value(-3.0).run()
    assert "Nothing lies within 1 km of the position given" in at.info[0].value
    at.button(key="fr_save").click().run()
    assert "about nothing yet (a lead)" in at.success[0].value
    (lead,) = reports.listing(db, leads_only=True)
    assert lead["text"] == "smoke over the hills"
    assert at.subheader[-1].value == "Reports (2)"
    assert [t.label for t in at.tabs] == ["All reports (2)", "Leads (1)"]
    assert "smoke over the hills" in [t.value for t in at.tabs[1].text]
    assert "new pits by the road" not in [t.value for t in at.tabs[1].text]


def test_uploaded_photos_show_their_gps_and_time_before_saving(db_path, tmp_path):
    """AppTest cannot upload files; the preview the page draws for each upload is run on
    real files instead (a GPS JPEG, one without GPS, and a file that is not a photo)."""
    import_file(connect(db_path), _detections(tmp_path))
    paths = [jpeg_with_gps(tmp_path / "gps.jpg", lon=-56.9846, lat=-4.998),
             jpeg_with_gps(tmp_path / "plain.jpg", taken=None, colour="blue"), tmp_path / "notes.jpg"]
    paths[2].write_text("not a photo at all")

    def preview(files):
        from types import SimpleNamespace

        from review.ui import common, field_reports

        # What st.file_uploader hands the page: a name and the bytes.
        uploads = [SimpleNamespace(name=name, getvalue=lambda data=data: data) for name, data in files]
        checked = field_reports._preview(uploads)
        field_reports._where_it_goes(common.connection(), None, None, checked)

    files = [(p.name, p.read_bytes()) for p in paths]
    at = AppTest.from_function(preview, args=(files,), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert [i.caption for e in at.get("image") for i in e.proto.imgs] == ["gps.jpg", "plain.jpg"]
    captions = [c.value for c in at.caption]
    assert captions[0].startswith("GPS -4.998000, -56.984600 · taken 2024-05-31 10:20:30 · 120×90 JPEG")
    assert captions[1].startswith("no GPS position in the photo · no capture time · 120×90 JPEG")
    assert [e.value for e in at.error] == ["notes.jpg: not a photo (photos must be JPEG, PNG or HEIC)"]
    assert at.info[0].value.startswith("From the photo's GPS (-4.99800, -56.98460) the report "
                                       "will be attached to detection #2 (")


# ------------------------------------------------------------------------- helpers


def test_helpers_for_the_pages(db, tmp_path):
    import_file(db, _detections(tmp_path))
    sites.build(db)
    photo = reports.read_photo(jpeg_with_gps(tmp_path / "a.jpg", lon=-56.9846, lat=-4.998))
    import io

    from PIL import Image

    with Image.open(io.BytesIO(reports.preview_png(photo, 60))) as small:
        assert (small.format, small.size) == ("PNG", (60, 45))
    near = reports.attachment(db, -56.9846, -4.998)
    assert near["detection"][0] == 2 and near["site"][0] == 2
    with pytest.raises(reports.ReportError, match="not a place on Earth"):
        reports.attachment(db, 200, 0)
    first = reports.add(db, "on the site", "Ana", site_id=2)
    second = reports.add(db, "on a detection of it", "Ben", detection_id=2,
                         photos=[jpeg_with_gps(tmp_path / "b.jpg", colour="green")])
    reports.add(db, "elsewhere", "Cy", detection_id=1)
    assert [r["id"] for r in reports.for_site(db, 2)] == [first["id"], second["id"]]
    (shown,) = reports.photos_for(db, 2)
    assert (shown["report_id"], shown["reporter"], shown["sha256"]) == (
        second["id"], "Ben", second["photos"][0]["sha256"])
    assert reports.photos_for(db, 3) == []


def test_a_site_view_lists_the_reports_on_the_site_and_its_detections(db_path, tmp_path):
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    sites.build(db)
    reports.add(db, HTML, "Ana", detection_id=2, photos=[jpeg_with_gps(tmp_path / "c.jpg")])
    at = AppTest.from_file(str(REPO / "app_pages" / "6_Sites.py"), default_timeout=TIMEOUT)
    at.query_params["site"] = "2"
    at.run()
    assert not at.exception, at.exception
    assert any(m.value == "**Field reports (1)**" for m in at.markdown)
    assert HTML in _texts(at) and "<img" not in _markdown(at)
    assert [i.caption for e in at.get("image") for i in e.proto.imgs][-1].startswith("sha256 ")


# ------------------------------------------------------------------ in a real browser



@needs_chromium
def test_in_a_browser_an_uploaded_gps_photo_shows_where_the_report_goes(streamlit_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    photo = jpeg_with_gps(tmp_path / "pits.jpg", lon=-56.9846, lat=-4.998)
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.goto(url + "/Field_reports")
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        expect(page.get_by_role("heading", name="New report")).to_be_visible()
        page.locator('input[type="file"]').set_input_files(str(photo))
        # Before saving: the photo's GPS and time, and the detection the report will go to.
        expect(page.get_by_text("GPS -4.998000, -56.984600 · taken 2024-05-31 10:20:30")).to_be_visible(
            timeout=30_000)
        expect(page.get_by_text("the report will be attached to detection #2")).to_be_visible()
        text = page.get_by_label("What did you see?")
        text.fill("<script>alert(1)</script> fresh pits")
        text.press("Control+Enter")                              # a text area commits so
        expect(page.get_by_text("Press Ctrl+Enter to apply")).to_have_count(0)
        page.get_by_role("button", name="Save report").click()
        expect(page.get_by_text("Report #1 saved with 1 photo(s), about detection #2")).to_be_visible()
        expect(page.get_by_text("<script>alert(1)</script> fresh pits")).to_be_visible()   # as text
        browser.close()
    (row,) = reports.listing(connect(db_path))
    assert (row["detection_id"], row["reporter"], row["position_from"]) == (2, "Ana", "photo")
    assert [p["lat"] for p in row["photos"]] == [pytest.approx(-4.998, abs=1e-6)]


@needs_chromium
def test_in_a_browser_the_site_map_asks_no_cdn(streamlit_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    sites.build(db)
    asked = []
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.on("request", lambda request: asked.append(request.url))
        page.goto(url + "/Sites?site=2")
        expect(page.get_by_role("heading", name="Site #2")).to_be_visible()
        expect(page.locator('[data-testid="stDeckGlJsonChart"] canvas').first).to_be_visible()
        expect(page.get_by_text("No stored imagery covers this site yet")).to_be_visible()
        browser.close()
    # The basemap's tiles (a closed local port in tests) are all the map asks for: no style
    # file or script from a CDN. (Streamlit itself asks Google for the page's icon.)
    outside = {u.split("/")[2] for u in asked if not u.startswith(("http://127.0.0.1", "data:", "blob:", "ws:"))}
    assert outside <= {"fonts.gstatic.com"}, outside


def test_with_accounts_the_reporter_is_the_signed_in_user(db_path, tmp_path, monkeypatch):
    from review.judging import users

    monkeypatch.setenv("REVIEW_SECRET_KEY", "test key")
    db = connect(db_path)
    import_file(db, _detections(tmp_path))
    users.add(db, "ana", "reviewer password", role="reviewer")
    at = AppTest.from_file(REPORTS, default_timeout=TIMEOUT).run()
    assert [t.value for t in at.title] == ["Sign in"]
    at.text_input(key="sign_in_name").input("ana")
    at.text_input(key="sign_in_password").input("reviewer password")
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Field reports"]
    assert "Reporter: ana" in _texts(at)
    at.text_area(key="fr_text_0").input("a new camp")
    at.radio(key="fr_about_0").set_value("detection").run()
    at.number_input(key="fr_detection_0").set_value(1)
    at.button(key="fr_save").click().run()
    assert not at.error, [e.value for e in at.error]
    (row,) = reports.listing(db)
    assert (row["reporter"], row["detection_id"]) == ("ana", 1)
