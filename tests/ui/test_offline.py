"""Offline (issue 28): every page, opened in Debian's Chromium with every request beyond
127.0.0.1 recorded and aborted, asks for nothing beyond the app.

What used to go out: the favicon of every page (Streamlit's frontend fetches a `:material/...:`
page icon as an SVG from fonts.gstatic.com; the sidebar's icons themselves come from the
Material Symbols font Streamlit bundles), and the Detect page's maps (folium's Leaflet,
Leaflet.draw, jQuery and Bootstrap from CDNs: a blank map offline). The maps' code is now
served by the app from static/; only basemap tiles come from elsewhere, and here they point
at a closed local port, as in every test.
"""
import tomllib

from review.judging import verdicts
from review.ui import common, detect

from tests.conftest import CHROMIUM, REPO, add_detections, assert_plain, needs_chromium, run_streamlit

LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")
PAGES = ["home", *(title.replace(" ", "_") for _, title, _, _ in common.PAGES)]
FOLIUM_FRAME = 'iframe[title="streamlit_folium.st_folium"]'


def test_the_maps_code_is_served_by_the_app_with_its_licences():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableStaticServing"] is True
    for folder, files in ((detect.LEAFLET, ("leaflet.js", "leaflet.css", "images/layers.png")),
                          (detect.LEAFLET_DRAW, ("leaflet.draw.js", "leaflet.draw.css",
                                                 "images/spritesheet.svg"))):
        for name in ("LICENSE", *files):
            assert (detect.STATIC / folder / name).is_file(), f"static/{folder}/{name}"


def test_without_the_apps_static_files_the_detect_page_says_so_in_place_of_a_blank_map(
        tmp_path, monkeypatch):
    """Started elsewhere than its folder, Streamlit reads no .streamlit/config.toml and
    serves no static/: Leaflet could not load, so a sentence stands where the map would."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    served = config.get_option("server.enableStaticServing")
    config.set_option("server.enableStaticServing", False)
    try:
        at = AppTest.from_file(str(REPO / "app_pages" / "1_Detect.py"), default_timeout=120).run()
    finally:
        config.set_option("server.enableStaticServing", served)
    assert not at.exception, at.exception
    (note,) = [i.value for i in at.info if i.value.startswith("The map cannot be shown")]
    assert note.endswith("Type the area as W,S,E,N above instead.")
    assert_plain(note)


def _idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000)


def _draw_a_rectangle(page) -> None:
    """Draw on the Detect page's map (Leaflet.draw's rectangle tool, served by the app)."""
    from playwright.sync_api import expect

    page.get_by_text("…or fetch Sentinel-2 for an area and period").click()
    frame = page.frame_locator(FOLIUM_FRAME)
    frame.locator(".leaflet-draw-draw-rectangle").click()
    # The basemap's tiles cannot load (a closed local port): the map says so, in a sentence.
    expect(frame.locator(".basemap-note")).to_contain_text("could not be loaded")
    box = page.locator(FOLIUM_FRAME).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 60, y - 40)
    page.mouse.down()
    page.mouse.move(x, y, steps=4)
    page.mouse.move(x + 60, y + 40, steps=4)
    page.mouse.up()
    expect(page.get_by_text("Drawn area (W,S,E,N): ")).to_be_visible()


@needs_chromium
def test_every_page_asks_for_nothing_beyond_the_app(tmp_path):
    from playwright.sync_api import Error, expect, sync_playwright

    server = run_streamlit(tmp_path)
    url, db_path = next(server)
    from review.store import connect

    db = connect(db_path)
    ids = add_detections(db, 12)
    for detection_id, verdict in zip(ids, ("verified", "verified", "false_positive", "unsure")):
        verdicts.record(db, detection_id, "Ana", verdict,
                        reason="other" if verdict == "false_positive" else None)
    outside: list[tuple[str, str]] = []
    current = {"page": ""}
    drawn = None

    def record_and_abort(route):
        address = route.request.url
        if address.startswith(LOCAL):
            route.continue_()
        else:
            outside.append((current["page"], address))
            route.abort()

    try:
        with sync_playwright() as playwright:
            expect.set_options(timeout=30_000)
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.add_cookies([{"name": common.NAME_COOKIE, "value": "Ana", "url": url}])
            context.route("**/*", record_and_abort)       # pages, frames and workers alike
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.on("websocket", lambda ws: None if ws.url.startswith(LOCAL)
                    else outside.append((current["page"], ws.url)))
            for name in PAGES:
                current["page"] = name
                page.goto(f"{url}/{name}")
                _idle(page)
                if name == "Detect":
                    try:
                        _draw_a_rectangle(page)
                        drawn = True
                    except (AssertionError, Error) as exc:     # said after what went out
                        drawn = exc
                # Favicons, components and map frames load after the script run has ended.
                page.wait_for_timeout(1000)
            browser.close()
    finally:
        next(server, None)
    # Streamlit's usage statistics are off in .streamlit/config.toml (and on the command
    # line): nothing is allowed out, not even from Streamlit's own frontend.
    assert outside == []
    assert drawn is True, f"the Detect page's map did not draw a rectangle: {drawn}"
