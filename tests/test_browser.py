"""One real-browser test: Debian's Chromium, driven by Playwright, against `streamlit run`.

The suite starts Streamlit on 127.0.0.1 and stops it; the browser is told not to reach
anything else (and the basemap points at a closed local port).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from review import users
from review.importers import import_file
from review.store import connect

from .conftest import FIXTURES, REPO, needs_fixtures

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="Debian's chromium is not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def streamlit_server(tmp_path):
    port = _free_port()
    db = tmp_path / "review.db"
    env = {**os.environ, "REVIEW_DB": str(db), "REVIEW_DATA_DIR": str(tmp_path / "data"),
           "REVIEW_BASEMAP_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start: " + process.stdout.read().decode()[-2000:])
    yield url, db
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _local_browser(playwright):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page()
    page.set_default_timeout(60_000)

    def local_only(route):
        # Map components ask CDNs for Leaflet; tests reach nothing beyond 127.0.0.1.
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", local_only)
    return browser, page


def _wait_until_idle(page) -> None:
    """Streamlit marks the app element while a script run is in progress."""
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000)
    expect(page.get_by_role("button", name="Verified")).to_be_enabled()


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
        browser, page = _local_browser(playwright)
        page.goto(url + "/Review")
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        heading = page.get_by_role("heading", name="Detection #")
        expect(heading).to_be_visible()
        first = heading.inner_text().split(" · ")[0]          # "Detection #1261"
        _wait_until_idle(page)
        page.get_by_text("False positive, with its reason").click()   # focus leaves the text box
        page.keyboard.press("v")
        expect(page.get_by_role("heading", name="Detection #")).not_to_have_text(
            re.compile(re.escape(first) + r"\b"), timeout=60_000)
        first_id = int(first.split("#")[1])

        page.reload()
        # The name was given once: it is remembered across the reload.
        expect(page.get_by_label("Your name (recorded with every verdict)")).to_have_value("Ana")
        expect(page.get_by_role("heading", name="Detection #")).to_be_visible()
        assert page.get_by_role("heading", name="Detection #").inner_text().split(" · ")[0] != first

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
        browser, page = _local_browser(playwright)
        page.goto(url + "/Review")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("User name").fill("ana")
        page.get_by_label("Password", exact=True).fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
        page.get_by_label("Password", exact=True).fill("correct horse battery")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as ana (reviewer)")).to_be_visible()
        heading = page.get_by_role("heading", name="Detection #")
        expect(heading).to_be_visible()
        first = heading.inner_text().split(" · ")[0]
        _wait_until_idle(page)
        page.get_by_text("False positive, with its reason").click()
        page.keyboard.press("v")
        expect(page.get_by_role("heading", name="Detection #")).not_to_have_text(
            re.compile(re.escape(first) + r"\b"), timeout=60_000)

        page.reload()
        expect(page.get_by_text("Signed in as ana (reviewer)")).to_be_visible()
        expect(page.get_by_role("heading", name="Detection #")).to_be_visible()
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


def _dot_centre(page, colour, tolerance=14):
    """Page coordinates of a pixel of this colour inside the map whose neighbours share it
    (the middle of a drawn detection), or None."""
    import io

    import numpy as np
    from PIL import Image

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:        # a loaded machine may be busy drawing: try again on the next round
        box = page.locator('[data-testid="stDeckGlJsonChart"]').bounding_box(timeout=30_000)
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
def test_the_map_draws_every_detection_offline_and_a_click_opens_it_in_review(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    from review.map_layers import STATUS_COLOURS

    url, db_path = streamlit_server
    db = connect(db_path)
    added = sum(import_file(db, FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson").added
                for year in (2023, 2024))
    with sync_playwright() as playwright:
        browser, page = _local_browser(playwright)        # nothing beyond 127.0.0.1: offline
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url + "/Map")
        expect(page.get_by_text(f"{added:,} detections match, every one drawn")).to_be_visible(timeout=120_000)
        legend = page.get_by_test_id("map-legend")
        expect(legend).to_contain_text(f"pending ({added:,})", timeout=60_000)
        # The basemap cannot load: the page says so in plain words, and still draws.
        expect(page.get_by_text("The basemap (Esri World Imagery) could not be loaded")).to_be_visible(
            timeout=60_000)
        deadline = time.time() + 180
        spot = None
        while spot is None and time.time() < deadline:
            spot = _dot_centre(page, STATUS_COLOURS["pending"])
            time.sleep(0.5)
        assert spot is not None, "no detection was drawn on the map"
        page.mouse.move(*spot)
        tooltip = page.locator(".deck-tooltip")
        expect(tooltip).to_contain_text(re.compile(r"#\d+ · pending · mining_202[34]00_simplified"),
                                        timeout=30_000)
        detection = int(re.search(r"#(\d+)", tooltip.inner_text()).group(1))
        page.mouse.click(*spot)
        page.wait_for_url(re.compile(r"/Review"), timeout=120_000)
        name = page.get_by_label("Your name (recorded with every verdict)")
        name.fill("Ana")
        name.press("Enter")
        expect(page.get_by_role("heading", name="Detection #")).to_contain_text(
            re.compile(rf"Detection #{detection}\b"), timeout=60_000)
        browser.close()
