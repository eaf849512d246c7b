"""Region runs on a Dask LocalCluster against the loopback STAC server; resume after a stop."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import shapely

from review.detection.detect import score_tile
from review.detection.fetch import Request, Source, composite
from review.detection.imagery import open_tile
from review.detection.models import load
from review.detection.region import plan_tiles, run_region
from review.store import connect

from tests.conftest import ON_GRID, REPO, needs_fixtures
from tests.stac_server import inner_bbox

TILE_PX = 32          # 320 m tiles over a 1 km scene: several tiles


def _aoi():
    return shapely.box(*inner_bbox(ON_GRID, 100, 101, inset=120))


def _source(server):
    return Source(url=server.url, collection="sentinel-2-l1c")


def _threshold(server, tiny_model_path):
    """A t_main that keeps about a third of the region's patches, from a direct run."""
    from review.detection.models import read_card_beside

    model = load(read_card_beside(tiny_model_path), tiny_model_path)
    path = composite(_source(server), Request(bbox=_aoi().bounds, start="2017-06-01", end="2017-06-30",
                                              bands=("B2", "B3", "B4", "B8")))
    scores = score_tile(open_tile(path), model).scores
    return float(np.quantile(scores, 0.66))


def _patches(db, region_id):
    return sorted(db.execute("select x, y, round(score, 6) from region_patches where region_run_id = ?",
                             [region_id]).fetchall())


def _candidates(db, run_id):
    return sorted((round(r[0], 3), round(r[1], 5)) for r in db.execute(
        "select area_ha, score from detections where run_id = ?", [run_id]))


def test_tiles_sit_on_one_grid():
    aoi = shapely.box(14.55, 45.86, 14.57, 45.875)
    tiles = plan_tiles(aoi, tile_px=64)
    assert len(tiles) >= 4 and len({t.crs for t in tiles}) == 1
    assert all(t.left % 640 == 0 and t.top % 640 == 0 for t in tiles)


@needs_fixtures
def test_region_on_a_local_cluster_equals_a_single_process_run(tmp_path, cache, l1c_server,
                                                              tiny_model_path):
    t_main = _threshold(l1c_server, tiny_model_path)
    single_db = connect(tmp_path / "single.db")
    single = run_region(single_db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                        scheduler=None, tile_px=100_000, source=_source(l1c_server),
                        t_main=t_main, t_iso=t_main)
    assert single.tiles == 1
    cluster_db = connect(tmp_path / "cluster.db")
    tiled = run_region(cluster_db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                       scheduler="local", tile_px=TILE_PX, source=_source(l1c_server),
                       t_main=t_main, t_iso=t_main)
    assert tiled.tiles >= 4 and tiled.tiles_scored == tiled.tiles
    assert tiled.patches == single.patches > 20
    assert _patches(cluster_db, tiled.region_run_id) == _patches(single_db, single.region_run_id)
    assert tiled.candidates == single.candidates >= 1
    assert _candidates(cluster_db, tiled.run_id) == _candidates(single_db, single.run_id)
    (run,) = list(cluster_db["runs"].rows)
    assert run["notes"].startswith(f"region run {tiled.region_run_id}") and run["device"]


RUN = """
import sys, shapely
from review.detection.fetch import Source
from review.detection.region import run_region
from review.store import connect
run_region(connect(sys.argv[1]), shapely.from_wkt(sys.argv[2]), "2017-06-01", "2017-06-30", sys.argv[3],
           scheduler="local", tile_px=int(sys.argv[5]),
           source=Source(url=sys.argv[4], collection="sentinel-2-l1c"), t_main=0.0, t_iso=0.0)
"""


@needs_fixtures
def test_a_stopped_region_run_resumes_without_duplicates(tmp_path, cache, l1c_server, tiny_model_path):
    db_path = tmp_path / "region.db"
    connect(db_path)
    l1c_server.asset_delay = 0.15
    env = {**os.environ, "PYTHONPATH": str(REPO), "REVIEW_TILE_CACHE": str(cache)}
    process = subprocess.Popen([sys.executable, "-c", RUN, str(db_path), shapely.to_wkt(_aoi(), rounding_precision=-1),
                                str(tiny_model_path), l1c_server.url, str(TILE_PX)], env=env, cwd=REPO)
    db = connect(db_path)
    deadline = time.time() + 180
    done_before = 0
    while time.time() < deadline and process.poll() is None:
        done_before = db.execute("select count(*) from region_tiles where status = 'done'").fetchone()[0]
        if done_before >= 2:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    done_before = db.execute("select count(*) from region_tiles where status = 'done'").fetchone()[0]
    assert done_before >= 2, "the run should have stored some tiles before it was stopped"
    assert db["detections"].count == 0               # candidates only once every tile is done
    l1c_server.asset_delay = 0
    report = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                        scheduler="local", tile_px=TILE_PX, source=_source(l1c_server),
                        t_main=0.0, t_iso=0.0)
    assert done_before < report.tiles
    assert report.tiles_scored == report.tiles - done_before      # only what was missing
    distinct = db.execute("select count(distinct x || ',' || y) from region_patches").fetchone()[0]
    assert distinct == report.patches == db["region_patches"].count
    # The same run again adds nothing at all.
    again = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                       scheduler="local", tile_px=TILE_PX, source=_source(l1c_server),
                       t_main=0.0, t_iso=0.0)
    assert again.tiles_scored == 0 and again.run_id == report.run_id
    assert db["detections"].count == report.candidates


@needs_fixtures
def test_region_from_the_command_line(tmp_path, cache, l1c_server, tiny_model_path, capsys):
    from review.cli import main

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "slovenia"}, "geometry": json.loads(shapely.to_geojson(_aoi()))}]}))
    out, db = tmp_path / "region.geojson", tmp_path / "review.db"
    args = ["detect", "--region", str(aoi), "--start", "2017-06-01", "--end", "2017-06-30",
            "--stac-url", l1c_server.url, "--collection", "sentinel-2-l1c", "--model", str(tiny_model_path),
            "--scheduler", "none", "--tile-px", "64", "--t-main", "0", "--t-iso", "0",
            "--db", str(db), "--out", str(out), "--quiet"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "region run 1:" in said and "candidates stored as run 1" in said
    features = json.loads(out.read_text())["features"]
    assert features and all(f["properties"]["source"] == "region:1" for f in features)
    assert main(args) == 0                                      # again: nothing new
    assert "(0 scored now)" in capsys.readouterr().out
    assert connect(db)["detections"].count == len(features)


def _wider_aoi():
    """The scene's area and as much again to the east, where the catalogue has nothing."""
    west, south, east, north = inner_bbox(ON_GRID, 100, 101, inset=120)
    return shapely.box(west, south, east + 1.2 * (east - west), north)


def _write_aoi(path, geometry):
    import json

    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(geometry))}]}))
    return path


def _searches(server):
    return sum(1 for r in server.requests if r.endswith(" /search"))


@needs_fixtures
def test_tiles_without_imagery_are_a_result_not_a_failure(tmp_path, cache, l1c_server, tiny_model_path):
    db = connect(tmp_path / "region.db")
    report = run_region(db, _wider_aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                        scheduler="local", tile_px=64, source=_source(l1c_server),
                        t_main=0.0, t_iso=0.0)
    statuses = dict(db.execute("select tile, status from region_tiles").fetchall())
    empty = sorted(t for t, s in statuses.items() if s == "no_imagery")
    assert empty and len(empty) < len(statuses) == report.tiles
    assert set(statuses.values()) == {"done", "no_imagery"}
    # The run finished: candidates of the covered tiles are stored, inside the scene.
    assert report.run_id is not None and report.candidates >= 1 and report.patches > 20
    west, south, east, north = inner_bbox(ON_GRID, 100, 101, inset=0)
    for row in db["detections"].rows_where("run_id = ?", [report.run_id]):
        assert west - 1e-3 <= row["lon"] <= east + 1e-3 and south - 1e-3 <= row["lat"] <= north + 1e-3
    # Each tile without imagery keeps its reason; the summary names them.
    reasons = [r[0] for r in db.execute("select error from region_tiles where status = 'no_imagery'")]
    assert all("no sentinel-2-l1c scenes over" in r for r in reasons)
    assert [t for t, _ in report.no_imagery] == empty
    assert f"{len(empty)} tiles without imagery" in report.summary() and empty[0] in report.summary()
    # Run again: nothing is searched again and nothing is stored twice.
    searches = _searches(l1c_server)
    again = run_region(db, _wider_aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                       scheduler="local", tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0)
    assert again.tiles_scored == 0 and _searches(l1c_server) == searches
    assert again.run_id == report.run_id and db["detections"].count == report.candidates
    # Asked to, it tries exactly those tiles again (still nothing there: nothing changes).
    retried = run_region(db, _wider_aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path),
                         scheduler=None, tile_px=64, source=_source(l1c_server), t_main=0.0,
                         t_iso=0.0, retry_empty=True)
    assert retried.tiles_scored == 0 and retried.tiles_tried == len(empty)
    assert _searches(l1c_server) == searches + len(empty)
    assert f"0 scored now, {len(empty)} found without imagery now" in retried.summary()
    assert retried.run_id == report.run_id and db["detections"].count == report.candidates


@needs_fixtures
def test_imagery_that_appears_later_adds_its_candidates_once(tmp_path, cache, l1c_server, tiny_model_path):
    """A tile empty at first (its scene not yet in the catalogue) and scored on a retry."""
    db = connect(tmp_path / "region.db")
    item = l1c_server.items[0]
    l1c_server.items = []
    first = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler=None,
                       tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0)
    assert first.candidates == 0 and len(first.no_imagery) == first.tiles
    l1c_server.items = [item]
    second = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler=None,
                        tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0)
    assert second.tiles_scored == 0 and second.candidates == 0      # not asked: not retried
    third = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler=None,
                       tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0, retry_empty=True)
    assert third.no_imagery == [] and third.tiles_scored == third.tiles
    assert third.candidates >= 1 and third.run_id != first.run_id
    assert db["detections"].count == third.candidates
    fourth = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler=None,
                        tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0, retry_empty=True)
    assert fourth.tiles_scored == 0 and db["detections"].count == third.candidates


@needs_fixtures
def test_failed_tiles_stop_the_run_in_one_line_and_resume(tmp_path, cache, l1c_server, tiny_model_path):
    from review.errors import ReviewError

    db = connect(tmp_path / "region.db")
    l1c_server.failing_assets = {p.name for p in l1c_server.folder.iterdir() if p.name.endswith("_B04.tif")}
    with pytest.raises(ReviewError) as raised:
        run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler="local",
                   tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0, retries=0)
    message = str(raised.value)
    assert "\n" not in message and "tiles failed" in message and "again to retry" in message
    assert db["detections"].count == 0
    assert {r[0] for r in db.execute("select status from region_tiles")} == {"failed"}
    l1c_server.failing_assets = set()
    report = run_region(db, _aoi(), "2017-06-01", "2017-06-30", str(tiny_model_path), scheduler=None,
                        tile_px=64, source=_source(l1c_server), t_main=0.0, t_iso=0.0)
    assert report.tiles_scored == report.tiles and report.candidates >= 1


@needs_fixtures
def test_region_command_with_tiles_without_imagery_as_a_user_runs_it(tmp_path, cache, l1c_server,
                                                                    tiny_model_path):
    aoi = _write_aoi(tmp_path / "aoi.geojson", _wider_aoi())
    out, db_path = tmp_path / "region.geojson", tmp_path / "review.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "REVIEW_TILE_CACHE": str(cache)}
    command = [sys.executable, "-m", "review", "detect", "--region", str(aoi), "--start", "2017-06-01",
               "--end", "2017-06-30", "--stac-url", l1c_server.url, "--collection", "sentinel-2-l1c",
               "--model", str(tiny_model_path), "--scheduler", "local", "--tile-px", "64",
               "--t-main", "0", "--t-iso", "0", "--db", str(db_path), "--out", str(out), "--quiet"]
    import socket

    # Dask's usual port taken (another cluster, someone's notebook): still nothing to say.
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
    except OSError:
        pass                                       # already held by someone else: as good
    try:
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        holder.close()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""                       # no worker log, no warning, no traceback
    db = connect(db_path)
    empty = [r[0] for r in db.execute("select tile from region_tiles where status = 'no_imagery' order by tile")]
    assert empty and "tiles without imagery" in done.stdout and empty[0] in done.stdout
    assert "--retry-empty" in done.stdout
    features = json.loads(out.read_text())["features"]
    assert features and db["detections"].count == len(features)
    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stderr == "" and "(0 scored now)" in again.stdout
    retried = subprocess.run(command + ["--retry-empty"], env=env, cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert retried.returncode == 0 and f"{len(empty)} found without imagery now" in retried.stdout
