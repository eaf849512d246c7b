"""Region runs on a Dask LocalCluster against the loopback STAC server; resume after a stop."""
import os
import subprocess
import sys
import time

import numpy as np
import shapely

from review.detect import score_tile
from review.fetch import Request, Source, composite
from review.imagery import open_tile
from review.models import load
from review.region import plan_tiles, run_region
from review.store import connect

from .conftest import ON_GRID, REPO, needs_fixtures
from .stac_server import inner_bbox

TILE_PX = 32          # 320 m tiles over a 1 km scene: several tiles


def _aoi():
    return shapely.box(*inner_bbox(ON_GRID, 100, 101, inset=120))


def _source(server):
    return Source(url=server.url, collection="sentinel-2-l1c")


def _threshold(server, tiny_model_path):
    """A t_main that keeps about a third of the region's patches, from a direct run."""
    from review.models import read_card_beside

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
from review.fetch import Source
from review.region import run_region
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
    import json

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
