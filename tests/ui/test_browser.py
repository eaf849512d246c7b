"""One real-browser test: Debian's Chromium, driven by Playwright, against `streamlit run`.

The suite starts Streamlit on 127.0.0.1 and stops it; the browser is told not to reach
anything else (and the basemap points at a closed local port).
"""
import re
import time

from review.detection.importers import import_file
from review.judging import users
from review.store import connect

from tests.conftest import FIXTURES, local_browser, needs_chromium, needs_fixtures


def _current(page):
    """Elements of the latest run: while a rerun is on its way Streamlit keeps the previous
    run's elements on screen, marked stale."""
    return page.locator('[data-testid="stElementContainer"][data-stale="false"]')


def _current_heading(page):
    return _current(page).get_by_role("heading", name="Detection #")


def _wait_until_idle(page) -> None:
    """Streamlit marks the app element while a script run is in progress."""
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000)
    expect(_current(page).get_by_role("button", name="Verified")).to_be_enabled()


@needs_fixtures
@needs_chromium
def test_verdict_by_keyboard_survives_a_reload(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    report = import_file(db, FIXTURES / "detections" / "earthrise" /
                         "amazon_1_48px_v3.7_0.50_2023-01-01_2023-12-31.geojson")
    assert report.added == 1809
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.goto(url + "/Review")
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        heading = _current_heading(page)
        expect(heading).to_be_visible()
        first = heading.inner_text().split(" · ")[0]          # "Detection #1261"
        _wait_until_idle(page)
        _current(page).get_by_text("False positive, with its reason").click()   # focus leaves the text box
        page.keyboard.press("v")
        expect(_current_heading(page)).not_to_have_text(
            re.compile(re.escape(first) + r"\b"), timeout=60_000)
        first_id = int(first.split("#")[1])

        page.reload()
        # The name was given once: it is remembered across the reload.
        expect(page.get_by_label("Your name (recorded with every verdict)")).to_have_value("Ana")
        expect(_current_heading(page)).to_be_visible()
        assert _current_heading(page).inner_text().split(" · ")[0] != first

        page.goto(url + "/")
        expect(page.get_by_text("Verdicts")).to_be_visible()
        metric = page.locator('[data-testid="stMetric"]', has_text="Verdicts")
        expect(metric).to_contain_text("1")
        browser.close()
    (verdict,) = list(connect(db_path)["verdicts"].rows)
    assert (verdict["detection_id"], verdict["reviewer"], verdict["verdict"]) == (first_id, "Ana", "verified")
    assert connect(db_path)["detections"].get(first_id)["status"] == "verified"


@needs_fixtures
@needs_chromium
def test_a_signed_in_reviewer_stays_signed_in_and_sees_no_editor_actions(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    import_file(db, FIXTURES / "detections" / "earthrise" / "mining_202300_simplified.geojson")
    users.add(db, "ana", "correct horse battery", role="reviewer")
    users.add(db, "eda", "editor password", role="editor")
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.goto(url + "/Review")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("User name").fill("ana")
        page.get_by_label("Password", exact=True).fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
        page.get_by_label("Password", exact=True).fill("correct horse battery")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as ana (reviewer)")).to_be_visible()
        heading = _current_heading(page)
        expect(heading).to_be_visible()
        first = heading.inner_text().split(" · ")[0]
        _wait_until_idle(page)
        _current(page).get_by_text("False positive, with its reason").click()
        page.keyboard.press("v")
        expect(_current_heading(page)).not_to_have_text(
            re.compile(re.escape(first) + r"\b"), timeout=60_000)

        page.reload()
        expect(page.get_by_text("Signed in as ana (reviewer)")).to_be_visible()
        expect(_current_heading(page)).to_be_visible()
        expect(page.get_by_role("heading", name="Sign in")).to_have_count(0)
        # An editor's page is neither in the sidebar nor usable by its address.
        nav = page.locator('[data-testid="stSidebarNav"]')
        expect(nav.get_by_text("Review")).to_be_visible()
        expect(nav.get_by_text("Detect")).to_have_count(0)
        page.goto(url + "/Detect")
        expect(page.get_by_text("Detect is for editors")).to_be_visible()
        expect(page.get_by_role("button", name="Run detector")).to_have_count(0)
        page.goto(url + "/")
        expect(page.get_by_text("Import detections from a file")).to_have_count(0)
        browser.close()
    (verdict,) = list(connect(db_path)["verdicts"].rows)
    assert (verdict["reviewer"], verdict["verdict"], verdict["via"]) == ("ana", "verified", "dashboard")
    assert int(first.split("#")[1]) == verdict["detection_id"]


def _store_fixture_chips(db, detection_ids):
    """Prepared chips for these detections, rendered from a real fixture before/after pair."""
    import shapely

    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.review_imagery import chip_cache, chips

    pair = FIXTURES / "imagery" / "amazon_change_pairs_val"
    tiles = [open_tile(pair / f"mining_1003_t{n}.tif") for n in (0, 1)]
    west, south, east, north = tiles[1].lonlat_bounds()
    middle = shapely.box(west + (east - west) / 3, south + (north - south) / 3,
                         east - (east - west) / 3, north - (north - south) / 3)
    before, after = chips.render_pair([{**scene_record(t), "label": "Sentinel-2 test pair"} for t in tiles],
                                      middle, margin=0.0)
    for detection_id in detection_ids:
        chip_cache.cache_for(db).store(db["detections"].get(detection_id), "sentinel-2", before, after)


def _name_cookie_written(page, name: str, timeout_s: float = 30.0) -> None:
    """Wait until this browser holds the remembered name (a script the page runs writes it)."""
    from urllib.parse import quote

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(c["name"] == "review_name" and c["value"] == quote(name)
               for c in page.context.cookies()):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the name {name!r} was never remembered in the browser")


def _heading(page) -> str:
    from playwright.sync_api import expect

    heading = _current_heading(page)
    expect(heading).to_be_visible()
    return heading.inner_text().split(" · ")[0]


def _press(page, key) -> None:
    """Press a verdict key and wait until the next detection is on screen."""
    from playwright.sync_api import expect

    before = _heading(page)
    _current(page).get_by_text("False positive, with its reason").click()     # focus off the note box
    page.keyboard.press(key)
    expect(_current_heading(page)).not_to_have_text(
        re.compile(re.escape(before) + r"\b"), timeout=60_000)


def _dot_centre(page, colour, tolerance=14):
    """Page coordinates of a pixel of this colour inside the map whose neighbours share it
    (the middle of a drawn detection), or None."""
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:        # a loaded machine may be busy drawing: try again on the next round
        box = page.locator('[data-testid="detection-map"]').bounding_box(timeout=30_000)
        shot = page.screenshot(clip=box, timeout=30_000)
    except PlaywrightTimeout:
        return None
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    match = np.abs(image - colour).max(axis=2) < tolerance
    core = match[1:-1, 1:-1] & match[:-2, 1:-1] & match[2:, 1:-1] & match[1:-1, :-2] & match[1:-1, 2:]
    rows, cols = np.nonzero(core[40:-40, 40:-40])        # away from the zoom buttons and edges
    if len(rows) == 0:
        return None
    middle = len(rows) // 2
    scale = image.shape[1] / box["width"]
    return box["x"] + (cols[middle] + 41) / scale, box["y"] + (rows[middle] + 41) / scale


@needs_fixtures
@needs_chromium
def test_verdicts_by_key_are_found_after_a_reload_with_their_imagery(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    import_file(db, FIXTURES / "detections" / "earthrise" / "mining_202400_simplified.geojson")
    first_ids = [r[0] for r in db.execute("select id from detections order by score is null, "
                                          "score desc, id limit 2")]
    _store_fixture_chips(db, first_ids)                  # the third detection has no imagery
    judged = []
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.goto(url + "/Review")
        page.get_by_label("Your name (recorded with every verdict)").fill("Ana")
        page.keyboard.press("Enter")
        for key in ("v", "1", "u"):
            current = _heading(page)
            if len(judged) < 2:       # prepared chips are on screen without any click
                expect(page.locator('[data-testid="stMain"] img')).to_have_count(2)
                expect(page.get_by_text("Before: Sentinel-2 test pair (true colour)")).to_be_visible()
            else:
                expect(page.get_by_text("No imagery of this place could be prepared")).to_be_visible()
            judged.append(int(current.split("#")[1]))
            _press(page, key)
        page.reload()
        for detection_id, word in zip(judged, ("verified", "false positive", "unsure")):
            page.goto(f"{url}/Review?detection={detection_id}")
            assert _heading(page) == f"Detection #{detection_id}"
            expect(page.get_by_text(f"Status: {word}")).to_be_visible()
            expect(page.get_by_text(re.compile(f"last verdict: {word}.*by Ana"))).to_be_visible()
            expect(_current(page).get_by_role("button", name="Verified")).to_be_disabled()   # changing is explicit
        page.screenshot(path=str(db_path.parent / "after_reload.png"))
        browser.close()
    rows = {r["detection_id"]: r for r in connect(db_path)["verdicts"].rows}
    assert sorted(rows) == sorted(judged)
    assert [rows[i]["verdict"] for i in judged] == ["verified", "false_positive", "unsure"]
    for detection_id in judged[:2]:
        assert rows[detection_id]["before_source"] == "Sentinel-2 test pair (true colour)"
        assert rows[detection_id]["after_start"] == "2021-01-01"
    assert rows[judged[2]]["before_source"] == rows[judged[2]]["after_source"] == "no imagery was shown"


@needs_fixtures
@needs_chromium
def test_three_reviewers_and_two_tabs_never_share_a_detection(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    import_file(db, FIXTURES / "detections" / "earthrise" / "mining_202300_simplified.geojson")
    presses = 0
    with sync_playwright() as playwright:
        browser, first = local_browser(playwright)
        first.close()
        anas = browser.new_context()                 # one browser, two tabs under one name
        pages = {}
        for name in ("Ana", "Ana (second tab)", "Ben", "Dee"):
            # Everyone else: their own cookies, another person.
            page = (anas if name.startswith("Ana") else browser.new_context()).new_page()
            page.set_default_timeout(60_000)
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else route.abort())
            pages[name] = page
        for name, page in pages.items():
            page.goto(url + "/Review")
            field = page.get_by_label("Your name (recorded with every verdict)")
            if name == "Ana (second tab)":
                expect(field).to_have_value("Ana")        # remembered in this browser
            else:
                field.fill(name)
                field.press("Enter")
                _name_cookie_written(page, name)   # the browser writes it: wait, then navigate
            _heading(page)

        def on_screen():
            return {name: _heading(page) for name, page in pages.items() if name != "Dee"}

        shown = on_screen()
        assert len(set(shown.values())) == 3, shown            # two tabs under one name included
        ana = pages["Ana"]
        # Dee opens, by its link, the detection Ana holds: read-only, with who and since when.
        held = int(shown["Ana"].split("#")[1])
        dee = pages["Dee"]
        dee.goto(f"{url}/Review?detection={held}")
        assert _heading(dee) == f"Detection #{held}"
        expect(dee.get_by_text(re.compile(r"Being reviewed by Ana since \d\d:\d\d"))).to_be_visible()
        expect(_current(dee).get_by_role("button", name="Verified")).to_be_disabled()
        _current(dee).get_by_text("False positive, with its reason").click()
        dee.keyboard.press("v")                                  # a key on a read-only detection
        time.sleep(1)
        assert connect(db_path)["verdicts"].count == 0
        _current(dee).get_by_role("button", name="Review anyway").click()
        expect(_current(dee).get_by_role("button", name="Verified")).to_be_enabled()
        # Ana, whose page still shows it, presses a key: nothing is recorded, she is told.
        _current(ana).get_by_text("False positive, with its reason").click()
        ana.keyboard.press("v")
        expect(ana.get_by_text(re.compile("taken over by Dee"))).to_be_visible()
        assert connect(db_path)["verdicts"].count == 0
        _press(dee, "v")
        presses += 1
        _current(ana).get_by_role("button", name="Skip").click()
        expect(_current_heading(ana)).not_to_have_text(
            re.compile(re.escape(shown["Ana"]) + r"\b"))
        for _ in range(3):
            for name in ("Ana", "Ana (second tab)", "Ben"):
                _press(pages[name], "v")
                presses += 1
                shown = on_screen()
                assert len(set(shown.values())) == 3, shown
        browser.close()
    rows = list(connect(db_path).execute("select detection_id, reviewer, override from verdicts"))
    assert len(rows) == presses == 10                            # one verdict per recorded key
    assert len({r[0] for r in rows}) == 10                       # none on the same detection twice
    (override,) = [r for r in rows if r[2]]
    assert override[0] == held and override[1] == "Dee" and "while Ana held it" in override[2]


@needs_fixtures
@needs_chromium
def test_the_map_draws_every_detection_offline_and_a_click_opens_it_in_review(streamlit_server):
    """Offline, the map draws every detection (binary columns, deck.gl served by the app), a
    click on a drawn dot opens that detection in Review, and after a verdict there the Map
    shows its new colour without the columns travelling again: only the change does."""
    from playwright.sync_api import expect, sync_playwright

    from review.analysis.map_layers import STATUS_COLOURS

    url, db_path = streamlit_server
    db = connect(db_path)
    added = sum(import_file(db, FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson").added
                for year in (2023, 2024))
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)        # nothing beyond 127.0.0.1: offline
        page.set_viewport_size({"width": 1400, "height": 1000})
        received = []                                    # sizes of what the server sent, in order
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda frame: received.append(len(frame) if frame else 0)))
        page.goto(url + "/Map")
        expect(page.get_by_text(f"{added:,} detections match, every one drawn")).to_be_visible(timeout=120_000)
        legend = page.get_by_test_id("map-legend")
        expect(legend).to_contain_text(f"pending ({added:,})", timeout=60_000)
        # The basemap cannot load: the page says so in plain words, and still draws.
        expect(page.get_by_text("The basemap (Esri World Imagery) could not be loaded")).to_be_visible(
            timeout=60_000)
        page.wait_for_function("() => window.__reviewMap && window.__reviewMap.drawn() > 0",
                               timeout=120_000)
        assert max(received) > 200_000                   # the columns came, in one binary message
        # Offline, Natural Earth's borders, rivers and places (served by the app) stand in.
        page.wait_for_function("() => window.__reviewMap.basemap() === 'natural-earth'",
                               timeout=60_000)
        # ... and are drawn: lines and place names, not an empty canvas.
        page.wait_for_function("() => window.__reviewMap.underlayPainted() > 2000", timeout=60_000)
        deadline = time.time() + 180
        spot = None
        while spot is None and time.time() < deadline:
            spot = _dot_centre(page, STATUS_COLOURS["pending"])
            time.sleep(0.5)
        assert spot is not None, "no detection was drawn on the map"
        page.mouse.move(*spot)
        tooltip = page.locator(".map-tooltip")
        expect(tooltip).to_contain_text(re.compile(r"#\d+ · pending · mining_202[34]00_simplified"),
                                        timeout=30_000)
        detection = int(re.search(r"#(\d+)", tooltip.inner_text()).group(1))
        page.mouse.click(*spot)
        page.wait_for_url(re.compile(r"/Review"), timeout=40_000)
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        expect(_current_heading(page)).to_contain_text(
            re.compile(rf"Detection #{detection}\b"), timeout=60_000)
        _press(page, "v")
        assert [r["detection_id"] for r in connect(db_path)["verdicts"].rows] == [detection]
        token = page.evaluate("() => window.__reviewMap.token()")
        received.clear()
        page.get_by_role("link", name="Map").click()
        page.wait_for_function(f"() => window.__reviewMap.statusOf({detection}) === 'verified'",
                               timeout=60_000)
        expect(legend).to_contain_text(f"verified (1)", timeout=60_000)
        assert page.evaluate("() => window.__reviewMap.token()") == token
        spot = None                                      # and it is drawn in its new colour
        while spot is None and time.time() < deadline + 120:
            spot = _dot_centre(page, STATUS_COLOURS["verified"])
            time.sleep(0.5)
        assert spot is not None, "the verified detection is not drawn in red"
        assert max(received) < 100_000, received          # only the change travelled
        browser.close()


def _open_site_from_the_sidebar(page, site_id: int) -> None:
    """Sites by the sidebar (no page load), then one site by its id: the page keeps the
    Map's scripts, as a reviewer's tab does."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Sites").click()
    page.get_by_label("Site id").fill(str(site_id))
    page.get_by_label("Site id").press("Enter")
    page.get_by_test_id("stBaseButton-secondary").filter(has_text=re.compile(r"^Open$")).click()
    chart = page.get_by_test_id("stDeckGlJsonChart")
    expect(chart.locator("canvas").first).to_be_attached(timeout=60_000)


@needs_fixtures
@needs_chromium
def test_the_map_and_a_sites_map_live_in_one_tab_in_either_order(streamlit_server):
    """The Map's deck.gl (served by the app) and the site view's (Streamlit's own chart, of
    another version) each start, whichever the tab met first: neither says "multiple
    versions detected", and the Map still draws after a site was open."""
    from playwright.sync_api import expect, sync_playwright

    from review.cli import main

    url, db_path = streamlit_server
    import_file(connect(db_path), FIXTURES / "detections" / "earthrise" / "mining_202300_simplified.geojson")
    assert main(["sites", "build", "--db", str(db_path), "--format", "json"]) == 0
    errors = []
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/Map")                           # the Map first, then a site
        page.wait_for_function("() => window.__reviewMap && window.__reviewMap.drawn() > 0",
                               timeout=120_000)
        _open_site_from_the_sidebar(page, 1)
        page.get_by_role("link", name="Map").click()
        page.wait_for_function("() => window.__reviewMap.drawn() > 0", timeout=60_000)
        page.goto(url + "/Sites")                         # a new tab's order: a site first
        expect(page.get_by_label("Site id")).to_be_visible(timeout=60_000)
        _open_site_from_the_sidebar(page, 1)
        page.get_by_role("link", name="Map").click()
        page.wait_for_function("() => window.__reviewMap && window.__reviewMap.drawn() > 0",
                               timeout=120_000)
        expect(page.get_by_text("multiple versions")).to_have_count(0)
        expect(page.get_by_text("could not be loaded (")).to_have_count(0)
        _open_site_from_the_sidebar(page, 1)
        expect(page.get_by_text("multiple versions")).to_have_count(0)
        browser.close()
    assert not [e for e in errors if "multiple versions" in e or "not a constructor" in e], errors
