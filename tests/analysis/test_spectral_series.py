"""A site's spectral time series (review.analysis.spectral_series) against a loopback STAC
service serving real Sentinel-2 pixels (the fixture pairs, month by month over three years):
the values equal an independent computation from the same files, clouds are judged over the
footprint from SCL (a scene 78% cloudy elsewhere counts; one clear elsewhere but cloudy over
the site does not), every page of the search is read, a failing service leaves nothing half
stored and the next run resumes, the second time nothing is asked of the network, stored
scenes work offline, and bad input is one plain line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely

from review.analysis import onset, spectral_series
from review.cli import main
from review.detection.fetch import FetchError, Source
from review.detection.imagery import open_tile
from review.detection.runs import scene_record
from review.store import add_scene

from tests import stac_server
from tests.conftest import FIXTURES, needs_fixtures

pytestmark = needs_fixtures
PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
INDEX_BANDS = ("B02", "B03", "B04", "B08", "B11")


@pytest.fixture(scope="module")
def bracketed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bracketed")
    return (folder / "files", *stac_server.scenario_scenes("bracketed", PAIRS, folder / "files"))


@pytest.fixture
def server(bracketed):
    folder, items, _ = bracketed
    running = stac_server.StacServer(folder, items)
    running.page_size = 10            # 36 scenes: four pages
    yield running
    running.stop()


@pytest.fixture
def site(db, bracketed):
    return stac_server.site_over_patch(db, bracketed[2])


def independent(info: dict, item_id: str, inner=100.0, outer=500.0, scl=True) -> dict:
    """The observation computed straight from the item's files with numpy and shapely: every
    pixel of the scene, footprint and ring by their centres, clear by SCL (or, without it,
    wherever every band has data), reflectance DN minus the item's offset."""
    paths = info["files"][item_id]
    with rasterio.open(paths["scl"]) as src:
        classes, transform = src.read(1), src.transform
    bands = {}
    for band in INDEX_BANDS:
        with rasterio.open(paths[band]) as src:
            bands[band] = src.read(1).astype(np.float64)
    rows, cols = np.mgrid[0:classes.shape[0], 0:classes.shape[1]]
    x, y = transform.c + (cols + 0.5) * 10, transform.f - (rows + 0.5) * 10
    patch = info["patch_utm"]
    inside = shapely.contains_xy(patch, x, y)
    distance = shapely.distance(patch, shapely.points(x, y))
    ring = (distance > inner) & (distance <= outer)
    usable = np.all([b > 0 for b in bands.values()], axis=0)
    if scl:
        usable &= np.isin(classes, (4, 5, 6, 7, 11))
    r = {band: values + info["offsets"][item_id] for band, values in bands.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        index = {"ndvi": (r["B08"] - r["B04"]) / (r["B08"] + r["B04"]),
                 "bsi": ((r["B11"] + r["B04"]) - (r["B08"] + r["B02"]))
                 / ((r["B11"] + r["B04"]) + (r["B08"] + r["B02"])),
                 "mndwi": (r["B03"] - r["B11"]) / (r["B03"] + r["B11"])}
    out = {"footprint_pixels": int(inside.sum()), "ring_pixels": int(ring.sum())}
    for prefix, mask in (("", inside), ("ring_", ring)):
        out[prefix + "clear_share"] = (mask & usable).sum() / mask.sum()
        for name, values in index.items():
            chosen = values[mask & usable]
            out[prefix + name] = float(np.median(chosen)) if chosen.size else None
    return out


def assert_same(row: dict, expected: dict, ring=True) -> None:
    for key, value in expected.items():
        if key.startswith("ring_") and key != "ring_clear_share" and not ring:
            continue
        if value is None or row[key] is None:
            assert value is row[key] is None, (key, row[key], value)
        else:
            assert row[key] == pytest.approx(value, abs=1e-9), (row["acquired"], key)


# --------------------------------------------------------------------------- values


def test_the_series_equals_an_independent_computation_and_clouds_are_judged_over_the_site(
        db, site, server, bracketed, cache):
    _, items, info = bracketed
    steps = []
    summary = spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url),
                                    progress=lambda done, total, what: steps.append((done, total)))
    assert steps[0] == (0, 36) and steps[-1] == (36, 36)            # the progress bar's steps
    # The default window: two years before the site's first period (2022) to the end of it.
    assert (summary.start, summary.end) == ("2020-01-01", "2022-12-31")
    rows = {r["item_id"]: r for r in spectral_series.stored(db, spectral_series.site_place(site))}
    # Every page of the search was read: 36 scenes, 35 observations and one outside the swath.
    assert sum(r.startswith(("POST /search", "GET /search")) for r in server.requests) == 4
    assert summary.found == 36 and len(rows) == 35
    assert summary.lines()[1:] == ["1 scene left out: no data over the place (it lies outside "
                                   "the scene's swath)"]
    by_date = {r["acquired"]: r for r in rows.values()}
    assert "2020-08-15" not in by_date
    for item_id, row in rows.items():
        expected = independent(info, item_id)
        assert_same(row, expected, ring=row["clear_share"] > 0)
    # 78% cloud over the scene, none over the site: clear, and it is the change's bracket.
    assert by_date["2021-06-15"]["scene_cloud_cover"] == 78 and by_date["2021-06-15"]["clear"]
    # A small cloud, cirrus or a shadow over the site: not clear, whatever the scene's cover.
    for day in ("2020-03-15", "2020-11-15", "2021-02-15", "2022-05-15"):
        assert by_date[day]["clear_share"] == 0 and not by_date[day]["clear"], day
    assert by_date["2020-10-15"]["clear_share"] == pytest.approx(0.6) and by_date["2020-10-15"]["clear"]
    # The patch is forest, then bare; the ring stays forest; no jump at baseline 04.00 (2022).
    assert by_date["2021-05-15"]["ndvi"] > 0.8 and by_date["2021-07-15"]["ndvi"] < 0.2
    assert by_date["2021-07-15"]["bsi"] > by_date["2021-05-15"]["bsi"] + 0.2
    assert min(r["ring_ndvi"] for r in rows.values() if r["clear"]) > 0.8
    assert abs(by_date["2022-01-15"]["ndvi"] - by_date["2021-12-15"]["ndvi"]) < 0.05


def test_the_second_time_the_series_is_read_from_the_database_without_any_request(
        db, site, server, cache):
    place = spectral_series.site_place(site)
    spectral_series.fetch(db, place, source=Source(url=server.url))
    first = spectral_series.stored(db, place)
    server.requests.clear()
    again = spectral_series.fetch(db, place, source=Source(url=server.url))
    assert server.requests == []
    assert again.cached and again.observations == 35 and "nothing fetched" in again.lines()[0]
    assert spectral_series.stored(db, place) == first
    # A narrower window inside the stored one is stored too.
    spectral_series.fetch(db, place, "2021-01-01", "2021-12-31", source=Source(url=server.url))
    assert server.requests == []


def test_a_service_failing_halfway_stores_nothing_and_the_next_run_resumes(
        db, site, server, cache):
    place = spectral_series.site_place(site)
    server.fail_after = 150
    with pytest.raises(FetchError) as failed:
        spectral_series.fetch(db, place, source=Source(url=server.url))
    message = str(failed.value)
    assert "\n" not in message and "nothing was stored" in message and "resume" in message
    assert spectral_series.stored(db, place) == []
    for table in ("series_observations", "series_windows", "series_failures"):
        assert db.execute(f"select count(*) from {table}").fetchone()[0] == 0
    assert onset.for_site(db, site).status == "not_enough"      # no half series to read
    staged = {p.stem for p in (cache / "series").rglob("*.json")}
    assert 0 < len(staged) < 36

    server.fail_after, server.requests = None, []
    summary = spectral_series.fetch(db, place, source=Source(url=server.url))
    assert summary.resumed == len(staged) and summary.read + summary.resumed == 36
    asked = {r.split("/files/")[1] for r in server.requests if "/files/" in r}
    assert not any(name.startswith(item_id + "_") for name in asked for item_id in staged)
    assert len(spectral_series.stored(db, place)) == 35
    assert spectral_series.windows(db, place)[0]["items"] == 35
    assert not list((cache / "series").rglob("*.json"))         # staging cleared once stored
    assert onset.for_site(db, site).status == "found"


def test_a_site_with_no_clear_observation_is_one_line_and_nothing_is_stored(
        db, tmp_path, cache, capsys):
    dates = stac_server.monthly("2021-01", "2021-06")
    items, info = stac_server.forest_to_bare_scenes(PAIRS, tmp_path / "files", dates, "2030-01-01",
                                                    {d: "site" for d in dates})
    server = stac_server.StacServer(tmp_path / "files", items)
    try:
        site = stac_server.site_over_patch(db, info)
        path = db.conn.execute("pragma database_list").fetchone()[2]
        code = main(["timeseries", str(site), "--start", "2021-01-01", "--end", "2021-06-30",
                     "--stac-url", server.url, "--quiet", "--db", path])
    finally:
        server.stop()
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: no clear observation of site {site} between 2021-01-01 and 2021-06-30: all 6 "
        "scenes were cloudy over it (judged by their scene classification); nothing was stored"]
    assert db.execute("select count(*) from series_observations").fetchone()[0] == 0


def test_offline_the_stored_scenes_give_the_series_and_it_says_what_was_not_fetched(
        db, site, bracketed, tmp_path, cache, capsys):
    _, items, info = bracketed
    # Two scenes stored on this machine: one acquisition and one year's composite, without SCL.
    ids = {i["properties"]["datetime"][:10]: i["id"] for i in items}
    for day, period in (("2021-09-15", ("2021-09-15", "2021-09-15")),
                        ("2020-06-15", ("2020-01-01", "2020-12-31"))):
        paths = info["files"][ids[day]]
        stack = []
        for band in stac_server.SERIES_BANDS:
            with rasterio.open(paths[band]) as src:
                stack.append(src.read(1))
                profile = src.profile
        path = tmp_path / f"stored_{day}.tif"
        profile.update(driver="GTiff", count=6)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.stack(stack))
            dst.descriptions = stac_server.SERIES_BANDS
            dst.update_tags(PERIOD_START=period[0], PERIOD_END=period[1])
        add_scene(db, scene_record(open_tile(path)))
    path = db.conn.execute("pragma database_list").fetchone()[2]
    code = main(["timeseries", str(site), "--stac-url", "http://127.0.0.1:9/", "--quiet",
                 "--format", "json", "--db", path])
    out, err = capsys.readouterr()
    assert code == 0
    assert "not fetched: could not reach the Sentinel-2 catalogue" in err
    printed = json.loads(out)
    rows = {r["acquired"]: r for r in printed["observations"]}
    assert set(rows) == {"2021-09-15", "2020-07-01"}            # the composite at its middle
    assert rows["2020-07-01"]["kind"] == "composite" and "2020-01-01 to 2020-12-31" in rows["2020-07-01"]["source"]
    stored = {r["acquired"]: r for r in spectral_series.stored(db, spectral_series.site_place(site))}
    assert_same(stored["2021-09-15"], independent(info, ids["2021-09-15"], scl=False))
    assert stored["2021-09-15"]["source"].startswith("stored scene stored_2021-09-15")
    assert spectral_series.windows(db, spectral_series.site_place(site)) == []   # not whole yet


# --------------------------------------------------------------------------- the command


def test_the_command_prints_the_series_and_the_onset(db, site, server, cache, capsys):
    path = db.conn.execute("pragma database_list").fetchone()[2]
    assert main(["timeseries", str(site), "--stac-url", server.url, "--quiet", "--db", path]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("acquired,clear,item_id,source,kind,scene_cloud_cover,clear_share")
    assert len(lines) == 36
    assert "Onset 2021-06" in err and "between 2021-06-15 and 2021-07-15" in err
    server.requests.clear()
    assert main(["timeseries", str(site), "--format", "json", "--db", path]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert server.requests == []
    assert printed["onset"]["status"] == "found" and printed["onset"]["month"] == "2021-06"
    assert (printed["onset"]["last_before"], printed["onset"]["first_after"]) == ("2021-06-15", "2021-07-15")
    assert len(printed["observations"]) == 35
    # A detection's own series (here the site's one detection: the same ground).
    detection = db.execute("select max(id) from detections").fetchone()[0]
    assert main(["timeseries", "--detection", str(detection), "--stac-url", server.url, "--quiet",
                 "--db", path]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 36


@pytest.mark.parametrize("argv, words", [
    (["timeseries", "99"], "error: there is no site 99"),
    (["timeseries", "--detection", "99"], "error: there is no detection 99"),
    (["timeseries"], "error: give a SITE_ID or --detection ID (one of them)"),
    (["timeseries", "{site}", "--start", "2021-13-01"], "error: the start must be a date YYYY-MM-DD"),
    (["timeseries", "{site}", "--start", "2022-01-01", "--end", "2021-01-01"],
     "error: the window 2022-01-01 to 2021-01-01 is empty"),
    (["timeseries", "{site}", "--ring", "500,100"], "error: the ring must lie from 0 to"),
    (["timeseries", "{site}", "--stored"], "error: no time series of site {site} is stored"),
    (["timeseries", "{site}", "--stac-url", "http://127.0.0.1:9/"],
     "error: could not reach the Sentinel-2 catalogue"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_stored(db, site, cache, capsys, argv, words):
    path = db.conn.execute("pragma database_list").fetchone()[2]
    code = main([a.format(site=site) for a in argv] + ["--quiet", "--db", path])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith(words.format(site=site)), err
    assert db.execute("select count(*) from series_observations").fetchone()[0] == 0


def test_before_sites_are_built_the_message_says_so(db, cache):
    with pytest.raises(spectral_series.SeriesError, match="sites have not been built yet"):
        spectral_series.fetch(db, spectral_series.site_place(1))


# --------------------------------------------------------------------------- the chart


def test_the_chart_draws_clear_observations_footprint_against_ring_with_periods_and_verdicts(
        db, site, server, cache):
    from review.judging import verdicts

    place = spectral_series.site_place(site)
    spectral_series.fetch(db, place, source=Source(url=server.url))
    detection = db.execute("select max(id) from detections").fetchone()[0]
    verdicts.record(db, detection, "ana", "verified")
    rows = spectral_series.stored(db, place)
    periods, marked = spectral_series.marks(db, place)
    assert periods == [{"period": "2022", "start": "2022-01-01", "end": "2022-12-31", "state": "new"}]
    assert marked == [{"date": "2022-12-31", "label": f"verified, detection {detection}",
                       "verdict": "verified"}]
    chart = spectral_series.figure(rows, periods, marked, onset=onset.for_site(db, site))
    traces = {t.name: t for t in chart.data}
    assert set(traces) == {"NDVI, footprint", "NDVI, ring", "bare-soil index, footprint",
                           "bare-soil index, ring", "MNDWI (water), footprint",
                           "MNDWI (water), ring", "verdicts"}
    clear_days = [r["acquired"] for r in rows if r["clear"]]
    assert list(traces["NDVI, footprint"].x) == clear_days and len(clear_days) == 31
    assert "2020-03-15" not in traces["NDVI, ring"].x          # cloudy over the site: left out
    shapes = {(s.x0, s.x1) for s in chart.layout.shapes}
    assert ("2022-01-01", "2022-12-31") in shapes                  # the detection period
    assert ("2021-06-15", "2021-07-15") in shapes                  # the onset's bracket
    assert list(traces["verdicts"].text) == [f"verified, detection {detection}"]


def test_a_site_whose_footprint_grew_is_read_again_for_its_new_ground(db, site, server, bracketed, cache):
    from pyproj import Transformer
    from shapely import affinity
    from shapely.ops import transform as reproject

    from review.analysis import sites

    place = spectral_series.site_place(site)
    spectral_series.fetch(db, place, source=Source(url=server.url))
    before = {r["acquired"]: r for r in spectral_series.stored(db, place)}
    # A detection of 2022 just east of the patch joins the site: its footprint is larger now.
    info = bracketed[2]
    east = affinity.translate(info["patch_utm"], xoff=100.0)
    lonlat = reproject(Transformer.from_crs(info["crs"], "EPSG:4326", always_xy=True).transform, east)
    west, south, east_lon, north = lonlat.bounds
    db["detections"].insert({"source": "series", "external_id": "east", "geometry": shapely.to_geojson(lonlat),
                             "lon": lonlat.centroid.x, "lat": lonlat.centroid.y, "west": west,
                             "south": south, "east": east_lon, "north": north, "score": 0.9,
                             "period_start": "2022-01-01", "period_end": "2022-12-31"})
    sites.build(db)
    server.requests.clear()
    summary = spectral_series.fetch(db, place, source=Source(url=server.url))
    assert not summary.cached and summary.read == 36 and server.requests
    after = {r["acquired"]: r for r in spectral_series.stored(db, place)}
    assert set(after) == set(before) and len(spectral_series.windows(db, place)) == 1
    assert after["2021-05-15"]["footprint_pixels"] == 2 * before["2021-05-15"]["footprint_pixels"]
