"""Area assessment in a real browser: Debian's Chromium, driven by Playwright, labels an
assessment's sample points by key on the Review page of `streamlit run`.

The database (detections of 2024, two stored synthetic scenes of 2023 and 2024 covering
the region, and a design of ten points) is made before Streamlit starts; the browser
reaches nothing beyond 127.0.0.1 and the page prepares imagery from the stored scenes only.
"""
import io
import re
import urllib.request

import numpy as np
import shapely
from pyproj import Transformer

from review.analysis import assessment
from review.detection.imagery import open_tile
from review.detection.runs import scene_record
from review.store import add_scene, connect

from tests.conftest import add_detections, local_browser, needs_chromium, run_streamlit, write_tile

REGION = shapely.box(-57.02, -5.02, -56.94, -4.97)
NAME_FIELD = "Your name (recorded with every verdict)"
ORDER_LABEL = "assessment points: pará 2024 (2024)"
QUESTION = "Is the ground at the crosshair mined?"
# What the map said must not reach the page: no stratum, score or detection.
FORBIDDEN = re.compile(r"\b(detected|near|rest|stratum|strata|score|outline)\b|Detection #|#\d",
                       re.IGNORECASE)
YELLOW = (255, 214, 0)            # review.review_imagery.chips.OUTLINE: crosshair and outlines


def _ground(rows: int, cols: int, year: int) -> np.ndarray:
    """Forest (B2, B3, B4, B8 reflectance, a little noise); in 2024 grey bare-soil clearings.
    No pixel of it looks yellow, so any yellow on a chip is the product's own marking."""
    rng = np.random.default_rng(year)
    forest = np.array([400, 700, 350, 3000], dtype=float)[:, None, None]
    data = forest + rng.normal(0, 40, (4, rows, cols))
    if year == 2024:
        for _ in range(30):
            row, col = rng.integers(0, rows - 20), rng.integers(0, cols - 20)
            data[:3, row:row + 15, col:col + 15] = 1500
    return data.astype("uint16")


def _scenes(db, folder) -> None:
    """Two 4-band tiles (B2, B3, B4, B8; 30 m, UTM 21S) of 2023 and 2024 covering the region
    with room for every point's chip."""
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True)
    xs, ys = to_utm.transform([-57.035, -56.925], [-5.035, -4.955])
    pixel = 30.0
    cols = int((max(xs) - min(xs)) / pixel) + 1
    rows = int((max(ys) - min(ys)) / pixel) + 1
    for year in (2023, 2024):
        path = write_tile(folder / f"s2_{year}.tif", _ground(rows, cols, year),
                          ["B2", "B3", "B4", "B8"], crs="EPSG:32721", origin=(min(xs), max(ys)),
                          pixel=pixel, tags={"PERIOD_START": f"{year}-01-01",
                                             "PERIOD_END": f"{year}-12-31"})
        add_scene(db, scene_record(open_tile(path)))


def _design(tmp_path) -> list[dict]:
    db = connect(tmp_path / "review.db")
    add_detections(db, 6)
    db.execute("update detections set period_start = '2024-01-01', period_end = '2024-12-31'")
    db.conn.commit()
    _scenes(db, tmp_path)
    strata = assessment.make_strata(db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    design = assessment.create(db, "pará 2024", strata, [3, 3, 4], "Sizes as given.", seed=5)
    units = assessment.units(db, design)
    assert [u["stratum"] for u in units[:3]] == ["detected", "near", "rest"]
    return units


def _idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000)


def _current(page):
    return page.locator('[data-testid="stElementContainer"][data-stale="false"]')


def _caption(page):
    """The current point's caption: how many wait, and the point's coordinates."""
    return _current(page).get_by_text(re.compile(r"points? waiting for you in this assessment"))


def _place(unit: dict) -> str:
    return f"{unit['lat']:.5f}, {unit['lon']:.5f}"


def _shows(page, unit: dict) -> None:
    """Wait until this unit is on screen, its chips loaded and the script finished."""
    from playwright.sync_api import expect

    expect(_caption(page)).to_contain_text(_place(unit), timeout=60_000)
    _idle(page)
    expect(_caption(page)).to_contain_text(_place(unit))
    images = page.locator('[data-testid="stMain"] img')
    expect(images).to_have_count(2)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMain"] img')]
                              .every(i => i.complete && i.naturalWidth > 0)""")
    for image in images.all():
        _only_a_crosshair(image.get_attribute("src"))


def _check_text(page, units: list[dict]) -> None:
    """Nothing of the map on screen: no stratum name, score, outline or unit id."""
    main = page.locator('[data-testid="stMain"]').inner_text()
    body = page.locator("body").inner_text()
    assert QUESTION in main
    for text in (main, body):
        found = FORBIDDEN.search(text)
        assert found is None, f"{found.group(0)!r} on the page: {text!r}"
    # Left once the count, coordinates, dates and scene names are out, no number may name a unit.
    rest = re.sub(r"[\d,]+ points? waiting|-?\d+\.\d+|\d{4}-\d\d-\d\d|s2_20\d\d\.tif", " ", main)
    ids = {str(u["unit_id"]) for u in units}
    assert not ids & set(re.findall(r"\d+", rest)), rest
    assert not re.search(r"unit", main, re.IGNORECASE), main
    assert "unit" not in page.url and not re.search(r"[?&]\w*=\d", page.url), page.url


def _only_a_crosshair(src: str) -> None:
    """The chip marks its point with a crosshair: yellow only in a small cross at the middle,
    never a polygon's outline."""
    from PIL import Image

    assert src.startswith("http://127.0.0.1:"), src
    with urllib.request.urlopen(src, timeout=30) as response:
        image = np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB")).astype(int)
    yellow = np.abs(image - YELLOW).max(axis=2) < 30
    rows, cols = np.nonzero(yellow)
    assert len(rows) > 20, "no crosshair on the chip"
    height, width = yellow.shape
    # Arms of 18 px after a 7 px gap (chips.CROSSHAIR_*): the mark spans about 50 px.
    assert rows.max() - rows.min() < 70 and cols.max() - cols.min() < 70, (rows.min(), rows.max(),
                                                                           cols.min(), cols.max())
    assert abs((rows.max() + rows.min()) / 2 - height / 2) < height * 0.1
    assert abs((cols.max() + cols.min()) / 2 - width / 2) < width * 0.1
    centre = yellow[(rows.max() + rows.min()) // 2 - 4:(rows.max() + rows.min()) // 2 + 5,
                    (cols.max() + cols.min()) // 2 - 4:(cols.max() + cols.min()) // 2 + 5]
    assert not centre.any(), "the crosshair's centre must stay open"


def _press(page, key: str, db_path, recorded: int) -> None:
    """Press a label key (focus away from the note box first); wait until it is recorded."""
    _current(page).get_by_role("heading", name=QUESTION).click()
    page.keyboard.press(key)
    for _ in range(600):
        if connect(db_path)["verdicts"].count >= recorded:
            break
        page.wait_for_timeout(100)
    assert connect(db_path)["verdicts"].count == recorded, f"{key!r} was not recorded"


@needs_chromium
def test_points_are_labelled_by_key_in_a_browser_with_nothing_of_the_map_shown(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    units = _design(tmp_path)
    first, second, third, fourth = units[:4]
    server = run_streamlit(tmp_path, REVIEW_CHIP_SOURCES="scenes")
    url, db_path = next(server)
    try:
        with sync_playwright() as playwright:
            browser, page = local_browser(playwright)
            page.goto(url + "/Review")
            name = page.get_by_label(NAME_FIELD)
            name.fill("Ana")
            name.press("Enter")
            _idle(page)
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
                has_text="Order").click()
            page.get_by_role("option", name=ORDER_LABEL).click()
            expect(_current(page).get_by_role("heading", name=QUESTION)).to_be_visible()
            _shows(page, first)
            for caption in (r"^Before: s2_2023\.tif .*2023-01-01 to 2023-12-31$",
                            r"^After: s2_2024\.tif .*2024-01-01 to 2024-12-31$"):
                expect(_current(page).get_by_text(re.compile(caption))).to_be_visible()
            _check_text(page, units)

            for key, after, count in (("m", second, 1), ("n", third, 2), ("u", fourth, 3),
                                      ("z", third, 4), ("n", fourth, 5)):
                _press(page, key, db_path, count)
                _shows(page, after)
                _check_text(page, units)
            expect(_current(page).get_by_role("button", name="Undo last")).to_be_enabled()
            browser.close()
    finally:
        next(server, None)

    rows = [(r["unit_id"], r["detection_id"], r["reviewer"], r["verdict"])
            for r in connect(db_path)["verdicts"].rows_where(order_by="id")]
    ids = [u["unit_id"] for u in (first, second, third)]
    assert rows == [(ids[0], None, "Ana", "mining"), (ids[1], None, "Ana", "not_mining"),
                    (ids[2], None, "Ana", "unsure"), (ids[2], None, "Ana", "undo"),
                    (ids[2], None, "Ana", "not_mining")]
    labels = list(connect(db_path)["verdicts"].rows_where("verdict != 'undo'", order_by="id"))
    for label in labels:                # what was on screen is what each label records
        assert label["before_source"].startswith("s2_2023.tif"), label["before_source"]
        assert label["after_source"].startswith("s2_2024.tif"), label["after_source"]
        assert (label["before_start"], label["after_end"]) == ("2023-01-01", "2024-12-31")
    statuses = {u["unit_id"]: u["status"] for u in assessment.units(
        connect(db_path), assessment.get(connect(db_path), "pará 2024"))}
    assert [statuses[i] for i in ids] == ["mining", "not_mining", "not_mining"]
    assert statuses[fourth["unit_id"]] == "pending"
