"""Before/after imagery for review: Sentinel-2 fetched on demand, and dated Wayback releases."""
import json

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform_bounds
from streamlit.testing.v1 import AppTest

from review.detection import fetch
from review.detection.importers import import_file
from review.errors import ReviewError
from review.review_imagery import preparation, wayback
from review.store import connect

from tests.conftest import FIXTURES, REPO, add_detections, needs_fixtures
from tests.review_imagery.conftest import COLOURS
from tests.stac_server import (L2A_KEYS, StacServer, make_item, pair_as_l2a_server, split_bands,
                               write_scl)

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"


SITE = shapely.box(-56.2497, -6.7720, -56.2481, -6.7704)


def _detection_file(tmp_path, period="2021-01-01_2021-12-31"):
    path = tmp_path / f"site_{period}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": 0.93}, "geometry": json.loads(shapely.to_geojson(SITE))}]}))
    return path


def test_review_page_shows_dated_wayback_views_and_records_them(tmp_path, monkeypatch, wayback_server):
    db_path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(db_path))
    import_file(connect(db_path), _detection_file(tmp_path))
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Review.py"), default_timeout=120).run()
    at.text_input(key="reviewer").input("Ana").run()
    at.radio(key="imagery_kind").set_value("Esri Wayback (dated, high resolution)").run()
    assert not at.exception
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert captions == ["Before: Esri World Imagery Wayback release 2020-11-18, 2020-11-18 to 2020-11-18",
                        "After: Esri World Imagery Wayback release 2024-03-14, 2024-03-14 to 2024-03-14"]
    at.button(key="verdict_verified").click().run()
    (verdict,) = list(connect(db_path)["verdicts"].rows)
    assert (verdict["before_start"], verdict["after_start"]) == ("2020-11-18", "2024-03-14")
    assert verdict["before_source"].startswith("Esri World Imagery Wayback")


def test_review_periods():
    assert preparation.review_periods({"id": 1, "period_start": "2021-01-01", "period_end": "2021-12-31"}) == \
        (("2020-01-01", "2020-12-31"), ("2021-01-01", "2021-12-31"))
    assert preparation.review_periods({"id": 1, "period_start": "2013-03-27", "period_end": "2013-03-27"}) == \
        (("2012-01-01", "2012-12-31"), ("2013-01-01", "2013-12-31"))
    with pytest.raises(fetch.FetchError, match="has no period"):
        preparation.review_periods({"id": 7, "period_start": None, "period_end": None})


@needs_fixtures
def test_prepared_imagery_is_shown_without_a_click_and_recorded(tmp_path, monkeypatch):
    """`prepare-imagery` against a STAC API on 127.0.0.1 (real fixture pixels); the Review
    page then shows before and after at once; a detection outside any imagery says so in
    a plain sentence, and its verdict records that nothing was shown."""
    from review import cli

    server = pair_as_l2a_server(PAIRS, tmp_path / "files")
    db_path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(db_path))
    monkeypatch.setenv("REVIEW_TILE_CACHE", str(tmp_path / "tiles"))
    monkeypatch.setenv("REVIEW_STAC_URL", server.url)
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes,sentinel-2")
    path = _detection_file(tmp_path)
    collection = json.loads(path.read_text())
    far = json.loads(shapely.to_geojson(shapely.box(10.0, 10.0, 10.002, 10.002)))
    collection["features"].append({"type": "Feature", "properties": {"pred": 0.5}, "geometry": far})
    path.write_text(json.dumps(collection))
    import_file(connect(db_path), path)
    try:
        assert cli.main(["prepare-imagery", "--quiet"]) == 0
    finally:
        server.stop()
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Review.py"), default_timeout=120).run()
    at.text_input(key="reviewer").input("Ana").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert captions == [
        "Before: Sentinel-2 L2A median of 1 scene (clouds masked) (true colour), 2020-01-01 to 2020-12-31",
        "After: Sentinel-2 L2A median of 1 scene (clouds masked) (true colour), 2021-01-01 to 2021-12-31"]
    at.radio(key="chip_view").set_value("false").run()
    assert "(false colour (SWIR, NIR, red))" in at.get("image")[1].proto.imgs[0].caption
    at.button(key="verdict_verified").click().run()
    # The detection outside any imagery: a plain sentence, and the reviewer can decide.
    assert not at.get("image")
    assert any("No imagery of this place could be prepared" in i.value and
               "tried again later" in i.value for i in at.info)
    at.button(key="verdict_unsure").click().run()
    first, second = connect(db_path)["verdicts"].rows
    assert first["before_source"] == "Sentinel-2 L2A median of 1 scene (clouds masked) (false colour (SWIR, NIR, red))"
    assert first["after_source"].endswith("(false colour (SWIR, NIR, red))")
    assert (first["before_start"], first["after_end"]) == ("2020-01-01", "2021-12-31")
    assert (second["before_source"], second["after_source"]) == ("no imagery was shown",) * 2
    assert second["after_start"] is None


@needs_fixtures
def test_the_detectors_tile_is_the_after_view_and_the_earlier_tile_the_before(tmp_path):
    """The Detect page's bug: a period typed for the run dates the tile, even when the tile
    was registered before without dates; the earlier tile is the before view."""
    from review.detection.imagery import open_tile
    from review.detection.runs import scene_record
    from review.store import record_run

    db = connect(tmp_path / "review.db")
    preparation.add_tile(db, PAIRS / "mining_1003_t0.tif")        # the 'before' upload
    after_tile = open_tile(PAIRS / "mining_1003_t1.tif", period=("2023-01-01", "2023-12-31"))
    db["scenes"].insert({**scene_record(after_tile), "period_start": None, "period_end": None})
    record_run(db, scene_record(after_tile), {"model_id": "m"}, [{
        "source": "run:m", "geometry": shapely.to_geojson(SITE), "lon": -56.2489, "lat": -6.7712,
        "west": SITE.bounds[0], "south": SITE.bounds[1], "east": SITE.bounds[2], "north": SITE.bounds[3],
        "score": 0.9, "period_start": "2023-01-01", "period_end": "2023-12-31"}])
    (detection,) = list(db["detections"].rows)
    assert db["scenes"].get(detection["scene_id"])["period_start"] == "2023-01-01"   # dated now
    before, after = preparation.scene_views(db, detection)
    assert after.caption.startswith("mining_1003_t1.tif") and after.imagery.start == "2023-01-01"
    assert before.caption.startswith("mining_1003_t0.tif") and before.imagery.start == "2019-01-01"


@needs_fixtures
def test_detect_page_fetches_an_area_and_refuses_a_huge_one(tmp_path, monkeypatch, real_model_cache):
    files = tmp_path / "files"
    scene = PAIRS / "mining_1003_t1.tif"
    assets = split_bands(scene, files, "t1", keys=L2A_KEYS)
    assets["scl"] = write_scl(files / "t1_scl.tif", scene, np.full((48, 48), 4))
    server = StacServer(files, [make_item("t1", "2021-06-01", assets)])
    db_path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(db_path))
    monkeypatch.setenv("REVIEW_TILE_CACHE", str(tmp_path / "tiles"))
    monkeypatch.setenv("REVIEW_STAC_URL", server.url)
    with rasterio.open(scene) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    try:
        at = AppTest.from_file(str(REPO / "app_pages" / "1_Detect.py"), default_timeout=120).run()
        at.selectbox[1].select("44px_v2.6_rgb_ir")
        at.text_input(key="area_bbox").input("-60,-10,-50,0")
        at.date_input(key="area_start").set_value(__import__("datetime").date(2021, 1, 1))
        at.date_input(key="area_end").set_value(__import__("datetime").date(2021, 12, 31))
        at.button[0].click().run()
        assert "run this area from the command line" in at.error[0].value
        assert "--" not in at.error[0].value                 # the command is in the details
        assert [x for x in at.expander if x.label == "Details"]
        at.text_input(key="area_bbox").input(f"{w},{s},{e},{n}")
        at.button[0].click().run()
    finally:
        server.stop()
    assert not at.exception and not at.error, [x.value for x in at.error]
    assert "scored by 44px_v2.6_rgb_ir" in at.success[0].value
    assert any("trained on Sentinel-2 L1C" in x.value for x in at.warning)
    # The fetched 50 px tile holds no patch on the CRS grid; it is scored as one patch.
    assert "1 patches of" in at.success[0].value
    assert not any("fits in it" in x.value for x in at.warning)
    (run,) = list(connect(db_path)["runs"].rows)
    assert "L2A" in run["notes"]


@needs_fixtures
def test_stored_scenes_are_registered_and_shown_before_and_after(tmp_path):
    db = connect(tmp_path / "review.db")
    import_file(db, _detection_file(tmp_path))
    (detection,) = list(db["detections"].rows)
    assert preparation.scene_views(db, detection) == []                 # nothing stored yet
    tile = preparation.add_tile(db, PAIRS / "mining_1003_t1.tif")
    assert tile.period_start == "2021-01-01" and db["scenes"].count == 1
    (after,) = preparation.scene_views(db, detection)
    assert after.caption.startswith("mining_1003_t1.tif") and after.imagery.start == "2021-01-01"
    preparation.add_tile(db, PAIRS / "mining_1003_t0.tif")
    preparation.add_tile(db, PAIRS / "mining_1003_t0.tif")               # once per path and content
    assert db["scenes"].count == 2
    before, after = preparation.scene_views(db, detection)
    assert (before.imagery.start, after.imagery.start) == ("2019-01-01", "2021-01-01")
    assert before.image.size == after.image.size
    assert not np.array_equal(np.asarray(before.image), np.asarray(after.image))
    assert (np.asarray(after.image) == [255, 214, 0]).all(axis=-1).sum() > 50    # footprint outlined
    elsewhere = {**detection, "west": 10.0, "east": 10.01, "south": 10.0, "north": 10.01}
    assert preparation.scene_views(db, elsewhere) == []


def test_a_tile_that_is_not_a_raster_is_not_registered(tmp_path):
    db = connect(tmp_path / "review.db")
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    with pytest.raises(ReviewError, match="not a raster"):
        preparation.add_tile(db, bad)
    assert db["scenes"].count == 0


def test_wayback_views_pick_the_release_before_the_period_and_the_latest(wayback_server):
    found = wayback.releases()
    detection = {"id": 1, "geometry": shapely.to_geojson(SITE), "period_start": "2021-01-01"}
    pictures, note = preparation.wayback_views(found, detection)
    assert note is None
    assert [p.imagery.start for p in pictures] == ["2020-11-18", "2024-03-14"]
    assert (np.asarray(pictures[0].image) == COLOURS["22"]).all(axis=-1).mean() > 0.5
    pictures, note = preparation.wayback_views(found, {**detection, "period_start": "2019-01-01"})
    assert [p.imagery.start for p in pictures] == ["2024-03-14"]
    assert note == "No Wayback release predates this detection's period."
    pictures, note = preparation.wayback_views(found[:1], {**detection, "period_start": "2025-01-01"})
    assert [p.imagery.start for p in pictures] == ["2019-05-02"] and note is None   # one release only


def test_preparing_the_queue_counts_cached_prepared_and_failed_in_queue_order(db, monkeypatch):
    from types import SimpleNamespace

    from review.judging.queue import Filters
    from review.review_imagery import chip_cache

    ids = add_detections(db, 4)                        # scores 0.3 .. 0.51: the queue is ids reversed
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes,sentinel-2")
    cached = {ids[3]: SimpleNamespace(source="scenes")}
    made = {ids[3]: "scenes", ids[2]: "sentinel-2", ids[1]: None, ids[0]: "scenes"}
    asked = []

    def fake_prepare(db, detection, sources=None, retry_seconds=None, cache=None):
        asked.append((detection["id"], sources, retry_seconds))
        source = made[detection["id"]]
        return None if source is None else SimpleNamespace(source=source)

    monkeypatch.setattr(chip_cache.Cache, "lookup", lambda self, detection, sources: cached.get(detection["id"]))
    monkeypatch.setattr(preparation, "prepare", fake_prepare)
    steps = []
    done = preparation.prepare_queue(db, Filters(), limit=3, retry=True,
                                     progress=lambda n, total, what: steps.append((n, total)))
    assert (done.total, done.cached, done.prepared, done.failed) == (3, 1, 1, 1)
    assert asked == [(i, ("scenes", "sentinel-2"), 0) for i in (ids[3], ids[2], ids[1])]
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert done.summary() == ("3 detections: 1 prepared, 1 already in the cache, 1 without imagery "
                              "(noted with the reason; tried again on a later run)")
    asked.clear()
    everything = preparation.prepare_queue(db, Filters())         # no limit; failures wait their turn
    assert everything.total == 4 and [a[2] for a in asked] == [None] * 4
    assert preparation.prepare_queue(db, Filters(status="verified")).summary().startswith("0 detections: 0 prepared")
