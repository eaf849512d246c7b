"""Search -> composite -> detect against a STAC API and file server on 127.0.0.1."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from review.detection.detect import score_tile
from review.detection.fetch import FetchError, Request, Source, composite, parse_bbox, search
from review.detection.imagery import open_tile
from review.detection.models import load_model

from tests.conftest import FIXTURES, ON_GRID, REPO, SLOVENIA, needs_fixtures
from tests.stac_server import L2A_KEYS, StacServer, inner_bbox, make_item, split_bands, write_scl

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
L2A_BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")


@needs_fixtures
def test_search_composite_detect_end_to_end(tmp_path, cache, l1c_server, real_model_cache):
    source = Source(url=l1c_server.url, collection="sentinel-2-l1c")
    request = Request(bbox=inner_bbox(ON_GRID, 100, 101), start="2017-06-01", end="2017-06-30",
                      bands=("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"))
    items = search(source, request)
    assert [i.id for i in items] == ["S2A_L1C_20170614"]
    path = composite(source, request)
    assert path.parent == cache and path.exists()
    tile = open_tile(path)
    assert tile.band_names[:3] == ("B1", "B2", "B3") and tile.pixel_size == (10.0, 10.0)
    assert (tile.period_start, tile.period_end) == ("2017-06-01", "2017-06-30")
    assert tile.product == "S2 L1C median composite"
    # The composite of one clear scene is that scene, pixel for pixel, on the shared grid.
    with rasterio.open(SLOVENIA[0]) as src:
        scene = src.read()
    with rasterio.open(path) as comp:
        pixels = comp.read()
        col0 = int(round((comp.transform.c - ON_GRID.c) / 10))
        row0 = int(round((ON_GRID.f - comp.transform.f) / 10))
    assert col0 >= 0 and row0 >= 0
    # Both files hold B1..B12 in the same order (the scene's B8 before B8A, as requested).
    window = scene[:, row0:row0 + pixels.shape[1], col0:col0 + pixels.shape[2]]
    inside = pixels[0] > 0
    assert inside.mean() > 0.9
    assert np.array_equal(pixels[:, inside], window[:, inside])
    # And the detector scores it exactly as it scores the scene itself.
    regridded = tmp_path / "scene0_on_grid.tif"
    with rasterio.open(SLOVENIA[0]) as src:
        profile = {**src.profile, "transform": ON_GRID}
        with rasterio.open(regridded, "w", **profile) as dst:
            dst.write(src.read())
            for i, d in enumerate(src.descriptions, start=1):
                dst.set_band_description(i, d)
    model = load_model("48px_v4.21")
    on_composite = score_tile(tile, model, max_nodata_fraction=0.0)
    on_scene = score_tile(open_tile(regridded), model)
    assert len(on_composite) >= 1
    scene_scores = dict(zip(zip(on_scene.rows.tolist(), on_scene.cols.tolist()), on_scene.scores))
    for r, c, score in zip(on_composite.rows, on_composite.cols, on_composite.scores):
        assert score == pytest.approx(scene_scores[(int(r) + row0, int(c) + col0)], abs=1e-5)


@needs_fixtures
def test_cloudy_pixels_are_taken_from_the_clear_scene(tmp_path, cache):
    files = tmp_path / "files"
    scene = PAIRS / "mining_1003_t1.tif"
    with rasterio.open(scene) as src:
        original = {d: src.read(i) for i, d in enumerate(src.descriptions, start=1)}
    cloudy = {d: a.copy() for d, a in original.items()}
    for band in cloudy.values():
        band[10:30, 10:30] = 9000                              # a bright cloud
    classes = np.full((48, 48), 4)
    classes[10:30, 10:30] = 9                                  # flagged in SCL as cloud
    a = split_bands(scene, files, "cloudy", keys=L2A_KEYS, overrides=cloudy)
    a["scl"] = write_scl(files / "cloudy_scl.tif", scene, classes)
    b = split_bands(scene, files, "clear", keys=L2A_KEYS)
    b["scl"] = write_scl(files / "clear_scl.tif", scene, np.full((48, 48), 4))
    server = StacServer(files, [make_item("cloudy", "2021-03-01", a, cloud_cover=30),
                                make_item("clear", "2021-08-01", b, cloud_cover=2)])
    try:
        with rasterio.open(scene) as src:
            bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        request = Request(bbox=bbox, start="2021-01-01", end="2021-12-31", bands=L2A_BANDS)
        path = composite(Source(url=server.url), request)
    finally:
        server.stop()
    with rasterio.open(path) as comp, rasterio.open(scene) as src:
        assert comp.crs == src.crs
        col0 = int(round((src.transform.c - comp.transform.c) / 10))
        row0 = int(round((comp.transform.f - src.transform.f) / 10))
        red = comp.read(3)[row0:row0 + 48, col0:col0 + 48]
        assert comp.tags()["STAC_ITEMS"].split(",") == ["clear", "cloudy"]
    masked = red[10:30, 10:30]
    assert masked.max() < 9000
    assert np.array_equal(masked, original["B04"][10:30, 10:30])   # the clear scene's pixels
    assert np.array_equal(red, original["B04"])                     # elsewhere both agree


@needs_fixtures
def test_second_request_reads_the_cache(cache, l1c_server):
    source = Source(url=l1c_server.url, collection="sentinel-2-l1c")
    request = Request(bbox=inner_bbox(ON_GRID, 100, 101), start="2017-06-01", end="2017-06-30",
                      bands=("B2", "B3", "B4"))
    first = composite(source, request)
    l1c_server.requests.clear()
    assert composite(source, request) == first
    assert l1c_server.requests == []
    other = composite(source, Request(bbox=request.bbox, start="2017-06-01", end="2017-06-30",
                                      bands=("B2", "B3", "B8")))
    assert other != first and any("/files/" in r for r in l1c_server.requests)


FETCH_SCRIPT = """
import sys
from review.detection.fetch import Request, Source, composite
bbox = tuple(float(v) for v in sys.argv[2].split(","))
composite(Source(url=sys.argv[1], collection="sentinel-2-l1c"),
          Request(bbox=bbox, start="2017-06-01", end="2017-06-30",
                  bands=("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")))
"""


@needs_fixtures
def test_a_killed_download_leaves_a_consistent_cache_and_the_retry_resumes(cache, l1c_server):
    l1c_server.asset_delay = 0.4
    bbox = inner_bbox(ON_GRID, 100, 101)
    env = {**os.environ, "PYTHONPATH": str(REPO), "REVIEW_TILE_CACHE": str(cache)}
    process = subprocess.Popen([sys.executable, "-c", FETCH_SCRIPT, l1c_server.url,
                                ",".join(map(str, bbox))], env=env, cwd=REPO)
    parts = cache / "parts"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [p for p in parts.rglob("*.npy") if not p.name.endswith(".part.npy")] if parts.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert not list(cache.glob("*.tif")), "a composite must not appear before it is complete"
    finished = {p.name for p in parts.rglob("*.npy") if not p.name.endswith(".part.npy")}
    assert 2 <= len(finished) < 8
    for part in parts.rglob("*.npy"):
        if not part.name.endswith(".part.npy"):
            assert np.load(part).ndim == 2          # every finished window is whole
    l1c_server.asset_delay = 0
    l1c_server.requests.clear()
    path = composite(Source(url=l1c_server.url, collection="sentinel-2-l1c"),
                     Request(bbox=bbox, start="2017-06-01", end="2017-06-30",
                             bands=("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")))
    assert path.exists()
    fetched_again = {r.split("/files/")[1] for r in l1c_server.requests if "/files/" in r}
    for name in finished:          # e.g. S2A_L1C_20170614__B2.npy: its asset is scene0_B02.tif
        band = name.split("__")[1][:-len(".npy")]
        asset = f"scene0_B{int(band[1:]):02d}.tif"
        assert asset not in fetched_again, f"{asset} was downloaded again"
    assert fetched_again          # the missing bands were fetched


@needs_fixtures
def test_an_asset_that_fails_halfway_is_a_clear_error_and_a_retry_resumes(cache, l1c_server):
    source = Source(url=l1c_server.url, collection="sentinel-2-l1c")
    request = Request(bbox=inner_bbox(ON_GRID, 100, 101), start="2017-06-01", end="2017-06-30",
                      bands=("B2", "B3", "B4"))
    l1c_server.failing_assets = {"scene0_B04.tif"}
    with pytest.raises(FetchError, match="run the same request again to resume"):
        composite(source, request)
    assert not list(cache.glob("*.tif"))
    l1c_server.failing_assets = set()
    l1c_server.requests.clear()
    assert composite(source, request).exists()
    files = [r for r in l1c_server.requests if "/files/" in r]
    assert files and all("scene0_B04.tif" in r for r in files)        # only the missing band


def test_catalogue_that_times_out_or_answers_garbage(tmp_path, cache):
    server = StacServer(tmp_path, [])
    request = Request(bbox=(10, 45, 10.1, 45.1), start="2020-01-01", end="2020-12-31")
    try:
        with pytest.raises(FetchError, match="no sentinel-2-l2a scenes"):
            search(Source(url=server.url), request)
        server.garbage = True
        with pytest.raises(FetchError, match=f"catalogue at {server.url}"):
            search(Source(url=server.url), request)
        server.garbage = False
        server.search_delay = 3
        with pytest.raises(FetchError, match="did not answer"):
            search(Source(url=server.url, timeout=0.5), request)
    finally:
        server.stop()
    with pytest.raises(FetchError, match="could not reach the Sentinel-2 catalogue"):
        search(Source(url="http://127.0.0.1:9/", timeout=2), request)


def test_bad_boxes_and_periods_are_refused():
    with pytest.raises(FetchError, match="W,S,E,N"):
        parse_bbox("1,2,3")
    with pytest.raises(FetchError, match="W < E"):
        Request(bbox=(10, 45, 9, 46), start="2020-01-01", end="2020-12-31")
    with pytest.raises(FetchError, match="period"):
        Request(bbox=(9, 45, 10, 46), start="2021-01-01", end="2020-12-31")


@needs_fixtures
def test_cli_fetch_then_detect_by_area_flags_the_product(tmp_path, cache, real_model_cache, capsys):
    from review.cli import main

    files = tmp_path / "files"
    scene = PAIRS / "mining_1003_t1.tif"
    assets = split_bands(scene, files, "t1", keys=L2A_KEYS)
    assets["scl"] = write_scl(files / "t1_scl.tif", scene, np.full((48, 48), 4))
    server = StacServer(files, [make_item("t1", "2021-08-01", assets)])
    try:
        with rasterio.open(scene) as src:
            w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        bbox = f"{w},{s},{e},{n}"
        out = tmp_path / "composite.tif"
        assert main(["fetch", f"--bbox={bbox}", "--start", "2021-01-01", "--end", "2021-12-31",
                     "--stac-url", server.url, "--bands", "B2,B3,B4,B8", "--out", str(out), "--quiet"]) == 0
        assert "written to" in capsys.readouterr().out
        assert open_tile(out).band_names == ("B2", "B3", "B4", "B8")
        # The 4-band model runs on the fetched area; the L1C-trained model is flagged on L2A.
        db = tmp_path / "review.db"
        code = main(["detect", f"--bbox={bbox}", "--start", "2021-01-01", "--end", "2021-12-31",
                     "--stac-url", server.url, "--model", "44px_v2.6_rgb_ir", "--out",
                     str(tmp_path / "c.geojson"), "--raw", "--db", str(db), "--quiet"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "warning: model 44px_v2.6_rgb_ir was trained on Sentinel-2 L1C imagery; this tile is L2A" in captured.err
        from review.store import connect

        (run,) = list(connect(db)["runs"].rows)
        assert "L2A" in run["notes"]
        assert main(["fetch", "--bbox", "1,2,3", "--start", "2021-01-01", "--end", "2021-12-31"]) == 2
        assert "W,S,E,N" in capsys.readouterr().err
    finally:
        server.stop()


def test_a_fetch_asks_for_every_band_the_collection_has():
    from review.detection.fetch import ALL_BANDS, default_bands

    assert default_bands("sentinel-2-l2a") == tuple(b for b in ALL_BANDS if b != "B10")
    assert default_bands("sentinel-2-l1c") == ALL_BANDS and "B10" in ALL_BANDS
