"""The Map beyond what fits at once, in Chromium: with more detections than the map sends
footprints for, it draws dots and, zoomed in, asks for the footprints in view, and a click
inside a footprint (away from its dot) opens that detection; a browser without WebGL is told
so in a sentence, with the table still there."""
import re

import pytest

from review.store import connect

from tests.conftest import add_detections, local_browser, needs_chromium, run_streamlit


@pytest.fixture
def dots_only_server(tmp_path):
    """A server that sends no footprints with the columns (REVIEW_MAP_FOOTPRINTS=0)."""
    yield from run_streamlit(tmp_path, REVIEW_MAP_FOOTPRINTS="0")


def _open_map(page, url):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url + "/Map")
    page.wait_for_function("() => window.__reviewMap && window.__reviewMap.drawn() > 0",
                           timeout=120_000)


@needs_chromium
def test_zoomed_in_the_map_fetches_footprints_in_view_and_a_click_inside_one_opens_it(dots_only_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = dots_only_server
    ids = add_detections(connect(db_path), 30)          # 0.004° squares, 0.01° apart
    target = ids[12]                                      # west -56.88, south -5.0
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        _open_map(page, url)
        expect(page.get_by_text("Zoom in to see their footprints")).to_be_visible()
        page.evaluate("() => window.__reviewMap.setView({longitude: -56.878, latitude: -4.998, zoom: 15})")
        page.wait_for_function("() => window.__reviewMap.footprintsInView() > 0", timeout=60_000)
        # A point inside the square, well away from its dot at the centre.
        box = page.locator('[data-testid="detection-map"]').bounding_box()
        centre = page.evaluate(f"() => window.__reviewMap.screenOf({target})")
        inside = (centre[0] + 40, centre[1] - 40)        # the square is ~180 px wide at zoom 15
        local = (inside[0] - box["x"], inside[1] - box["y"])
        assert page.evaluate(f"() => window.__reviewMap.pick({local[0]}, {local[1]})") == target
        assert page.evaluate(f"() => window.__reviewMap.pick({local[0] + 200}, {local[1]})") is None
        page.mouse.click(*inside)
        page.wait_for_url(re.compile(r"/Review"), timeout=40_000)
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        expect(page.get_by_role("heading", name=re.compile(rf"Detection #{target}\b"))).to_be_visible(
            timeout=60_000)
        browser.close()


@needs_chromium
def test_a_browser_without_webgl_gets_a_sentence_and_the_table(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    add_detections(connect(db_path), 3)
    with sync_playwright() as playwright:
        browser, page = local_browser(playwright, ("--disable-webgl", "--disable-3d-apis"))
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url + "/Map")
        expect(page.get_by_text("This browser cannot draw the map: WebGL is turned off")).to_be_visible(
            timeout=120_000)
        expect(page.get_by_text("Table of the detections")).to_be_visible()
        browser.close()
