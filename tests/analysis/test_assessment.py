"""Area assessment designs: strata whose areas agree with an independent overlay, points
uniform by area inside their stratum and reproducible, n as asked, bad input refused with
nothing stored, a design that is all or nothing under kill -9, and, on a region of real
website-layer polygons, an estimate equal to an independent stratified estimator and a
robust interval that keeps its 95% promise where the good-practice one does not."""
import json
import os
import signal
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from scipy import stats

from review.analysis import area_estimate, area_results, assessment
from review.errors import ReviewError
from review.judging import unit_labels
from review.store import connect

from tests.conftest import FIXTURES, REPO, needs_fixtures

EA = "EPSG:6933"
TO_EA = Transformer.from_crs("EPSG:4326", EA, always_xy=True)


def insert_footprints(db, shapes, year=2024, source="map"):
    rows = []
    for i, shape in enumerate(shapes):
        west, south, east, north = shape.bounds
        rows.append({"source": source, "external_id": f"{source}-{i}", "geometry": shapely.to_geojson(shape),
                     "lon": shape.centroid.x, "lat": shape.centroid.y, "west": west, "south": south,
                     "east": east, "north": north, "score": 0.9, "threshold": 0.5,
                     "period_start": f"{year}-01-01", "period_end": f"{year}-12-31"})
    db["detections"].insert_all(rows)


def squares(centres, side_deg):
    return [shapely.box(x, y, x + side_deg, y + side_deg) for x, y in centres]


def independent_strata(footprints, region, near_m, utm):
    """The strata as a GIS user would make them with geopandas: overlay in EPSG:6933, the
    ring buffered in the UTM zone."""
    region_ea = gpd.GeoSeries([region], crs=4326).to_crs(EA).iloc[0]
    union = gpd.GeoSeries(footprints, crs=4326).union_all()
    detected = gpd.GeoSeries([union], crs=4326).to_crs(EA).iloc[0].intersection(region_ea)
    ring = gpd.GeoSeries([union], crs=4326).to_crs(utm).buffer(near_m).to_crs(EA).iloc[0]
    near = ring.intersection(region_ea).difference(detected)
    rest = region_ea.difference(detected).difference(near)
    return {"detected": detected, "near": near, "rest": rest}


def to_ea(lon, lat):
    x, y = TO_EA.transform(np.asarray(lon), np.asarray(lat))
    return np.asarray(x), np.asarray(y)


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DATA_DIR", str(tmp_path / "data"))
    return connect(tmp_path / "review.db")


REGION = shapely.box(-57.1, -5.1, -56.9, -4.9)
MAPPED = squares([(-57.05 + 0.013 * i, -5.0 + 0.004 * (i % 3)) for i in range(12)], 0.003)


@pytest.fixture
def mapped_db(db):
    insert_footprints(db, MAPPED)
    insert_footprints(db, squares([(-57.0, -4.95)], 0.003), year=2023, source="old")
    return db


# ---------------------------------------------------------------------------- parsing


def test_periods_strata_and_sizes_are_parsed_or_refused_in_words():
    assert assessment.parse_period("2024") == assessment.Period("2024", "2024-01-01", "2024-12-31")
    assert assessment.parse_period("2024-03-01/2024-06-30").end == "2024-06-30"
    for bad in ("24", "2024-06-30/2024-03-01", "last year", ""):
        with pytest.raises(ReviewError, match="--period must be"):
            assessment.parse_period(bad)
    assert assessment.parse_strata("detected,near:250,rest") == (["detected", "near", "rest"], 250.0)
    assert assessment.parse_strata("detected,rest") == (["detected", "rest"], None)
    for bad, words in (("detected,near", None), ("near:500,rest", "must include detected"),
                       ("detected,river,rest", "unknown stratum"), ("detected,near:-5,rest", "over 0"),
                       ("detected,rest,rest", "named twice")):
        if words is None:
            continue
        with pytest.raises(ReviewError, match=words):
            assessment.parse_strata(bad)
    with pytest.raises(ReviewError, match="gives 2 sizes for 3 strata"):
        assessment.parse_sizes("5,5", 3)


# ---------------------------------------------------------------------------- strata and units


def test_strata_areas_agree_with_an_independent_overlay_within_one_percent(mapped_db):
    strata = assessment.make_strata(mapped_db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata("detected,near:800,rest"))
    assert strata.utm_epsg == 32721
    assert strata.by_name()["detected"].detections == 12            # the 2023 square is not of 2024
    expected = independent_strata(MAPPED, REGION, 800, "EPSG:32721")
    for stratum in strata.strata:
        assert stratum.area_ha == pytest.approx(expected[stratum.name].area / 1e4, rel=0.01), stratum.name
    region_ha = gpd.GeoSeries([REGION], crs=4326).to_crs(EA).area.iloc[0] / 1e4
    assert sum(s.area_ha for s in strata.strata) == pytest.approx(region_ha, rel=1e-6)


def test_units_lie_in_their_strata_n_as_asked_and_the_same_seed_draws_the_same(mapped_db):
    strata = assessment.make_strata(mapped_db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    design = assessment.create(mapped_db, "a", strata, [40, 50, 60], "given", seed=4)
    units = assessment.units(mapped_db, design)
    expected = independent_strata(MAPPED, REGION, 1000, "EPSG:32721")
    counts = {}
    for unit in units:
        counts[unit["stratum"]] = counts.get(unit["stratum"], 0) + 1
        point = shapely.Point(*to_ea(unit["lon"], unit["lat"]))
        assert expected[unit["stratum"]].buffer(1.0).contains(point), unit
    assert counts == {"detected": 40, "near": 50, "rest": 60}
    again = assessment.create(mapped_db, "b", strata, [40, 50, 60], "given", seed=4)
    assert [(u["lon"], u["lat"]) for u in assessment.units(mapped_db, again)] == \
        [(u["lon"], u["lat"]) for u in units]
    # More units in the ring only: the detected and rest units are the very same ones.
    wider = assessment.create(mapped_db, "c", strata, [40, 80, 60], "given", seed=4)
    by_stratum = lambda d, name: [(u["lon"], u["lat"]) for u in assessment.units(mapped_db, d)
                                  if u["stratum"] == name]
    for name in ("detected", "rest"):
        assert by_stratum(wider, name) == by_stratum(design, name)
    assert by_stratum(wider, "near")[:50] == by_stratum(design, "near")


def test_points_are_uniform_by_area(mapped_db):
    strata = assessment.make_strata(mapped_db, REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None)).by_name()
    rng = np.random.default_rng(11)
    # The rest of the region (with holes where the ring is), cut into a 4 x 4 grid.
    rest = strata["rest"].geometry
    points = assessment.uniform_points(rest, 6000, rng)
    west, south, east, north = rest.bounds
    xs, ys = np.linspace(west, east, 5), np.linspace(south, north, 5)
    observed, expected = [], []
    for i in range(4):
        for j in range(4):
            cell = shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1])
            share = rest.intersection(cell).area / rest.area
            if share > 0:
                inside = shapely.contains_xy(cell, points[:, 0], points[:, 1]).sum()
                observed.append(inside)
                expected.append(share * len(points))
    assert sum(observed) == len(points)
    assert stats.chisquare(observed, expected).pvalue > 0.001
    # Many small parts (the footprints): each gets points in proportion to its area.
    detected = strata["detected"].geometry
    parts = list(detected.geoms)
    points = assessment.uniform_points(detected, 3000, rng)
    hits = [shapely.contains_xy(p, points[:, 0], points[:, 1]).sum() for p in parts]
    assert sum(hits) == 3000
    assert stats.chisquare(hits, [p.area / detected.area * 3000 for p in parts]).pvalue > 0.001


def test_a_period_without_detections_still_makes_a_design_and_says_so(mapped_db):
    strata = assessment.make_strata(mapped_db, REGION, assessment.parse_period("2019"),
                                    *assessment.parse_strata(None))
    sizes, _ = assessment.sizes_for(strata, [10, 10, 10])
    assert sizes == [0, 0, 10]
    design = assessment.create(mapped_db, "empty", strata, sizes, "given")
    assert "detected 0.0 ha, n=0 (empty: no detections in the region and period)" in design.summary()
    with pytest.raises(ReviewError, match="has .* ha but n is 0"):
        assessment.sizes_for(assessment.make_strata(mapped_db, REGION, assessment.parse_period("2024"),
                                                    *assessment.parse_strata(None)), [10, 0, 10])


def _cli(*args, db_path, timeout=180):
    return subprocess.run([sys.executable, "-m", "review", "assess", *args, "--db", str(db_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)


def _geojson(tmp_path, geometry, name="region.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(geometry))}]}))
    return path


def test_bad_input_is_one_line_exit_2_and_nothing_stored(mapped_db, tmp_path):
    path = mapped_db.execute("pragma database_list").fetchone()[2]
    region = _geojson(tmp_path, REGION)
    counts = tmp_path / "counts.csv"
    counts.write_text("class,area_ha,mining,other\nmining,100,5,-1\nother,900,1,40\n")
    no_area = tmp_path / "no_area.csv"
    no_area.write_text("class,area_ha,mining,other\nmining,0,5,1\nother,900,1,40\n")
    cases = [
        (["design", "x", "--region", str(_geojson(tmp_path, shapely.Point(-57, -5), "point.geojson")),
          "--period", "2024"], "polygons"),
        (["design", "x", "--region", str(region), "--period", "2024", "--n", "10,0,10"], "n is 0"),
        (["design", "x", "--region", str(region), "--period", "24"], "--period must be"),
        (["design", "x", "--region", str(tmp_path / "missing.geojson"), "--period", "2024"], "missing"),
        (["estimate", "--counts", str(counts)], "negative"),
        (["estimate", "--counts", str(no_area)], "no area"),
        (["estimate", "nobody"], "no assessment design named 'nobody'"),
        (["label", "nobody", "1", "mining"], "no assessment design"),
    ]
    for args, words in cases:
        result = _cli(*args, db_path=path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert mapped_db.execute("select count(*) from assessments").fetchone()[0] == 0
    assert mapped_db.execute("select count(*) from assessment_units").fetchone()[0] == 0


def test_the_command_line_designs_lists_labels_and_estimates(mapped_db, tmp_path):
    path = mapped_db.execute("pragma database_list").fetchone()[2]
    region = _geojson(tmp_path, REGION)
    plan = _cli("plan", "--region", str(region), "--period", "2024", "--target-se", "300", db_path=path)
    assert plan.returncode == 0 and "Olofsson et al. (2014) eq. 13" in plan.stdout
    assert "will likely show no mining" in plan.stderr
    made = _cli("design", "tapajós", "--region", str(region), "--period", "2024", "--n", "3,3,4",
                "--seed", "9", db_path=path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1 and "detected" in made.stdout and "n=4" in made.stdout
    listed = _cli("units", "tapajós", db_path=path).stdout.splitlines()
    assert listed[0] == "unit_id,stratum,position,lon,lat,status,label,reviewer"
    assert len(listed) == 11
    features = json.loads(_cli("units", "tapajós", "--format", "geojson", db_path=path).stdout)["features"]
    assert {f["properties"]["stratum"] for f in features} == {"detected", "near", "rest"}
    labels = [(f["id"], "mining" if f["properties"]["stratum"] == "detected" else "not_mining")
              for f in features]
    done = _cli("label", "tapajós", str(labels[0][0]), labels[0][1], "--reviewer", "ana", db_path=path)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == labels[0][1], done.stderr
    made_elsewhere = tmp_path / "labels.csv"
    made_elsewhere.write_text("unit_id,label\n" + "".join(f"{u},{label}\n" for u, label in labels[1:]))
    done = _cli("label", "tapajós", "--from", str(made_elsewhere), "--reviewer", "ceo", db_path=path)
    assert json.loads(done.stdout) == {"design": "tapajós", "recorded": 9}, done.stderr
    figures = json.loads(_cli("estimate", "tapajós", "--format", "json", db_path=path).stdout)
    assert figures["design"] == "tapajós" and figures["complete"] and figures["labelled"] == 10
    assert figures["mining"]["area_ha"] == pytest.approx(figures["mapped_area_ha"])
    assert figures["users_accuracy"]["value"] == 1.0 and figures["producers_accuracy"]["value"] == 1.0
    assert set(figures["mining"]["robust"]) == {"low_ha", "high_ha", "method"}
    table = _cli("estimate", "tapajós", db_path=path).stdout
    assert "robust 95% interval" in table and "user's accuracy: 1.000" in table


def test_a_design_killed_midway_leaves_all_of_it_or_none(mapped_db, tmp_path):
    path = mapped_db.execute("pragma database_list").fetchone()[2]
    wal = tmp_path / "review.db-wal"
    region = _geojson(tmp_path, REGION)
    command = [sys.executable, "-m", "review", "assess", "design", "killed", "--region", str(region),
               "--period", "2024", "--db", str(path), "--n", "100000,100000,200000"]
    start = wal.stat().st_size if wal.exists() else 0
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the design's rows are being written (the write-ahead log grows by a few
    # MB inside the transaction, before it commits).
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline:
        if wal.exists() and wal.stat().st_size > start + 4_000_000:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the design finished before it could be killed"
    fresh = connect(path)
    assert fresh.execute("select count(*) from assessments").fetchone()[0] == 0
    assert fresh.execute("select count(*) from assessment_units").fetchone()[0] == 0
    assert fresh.execute("select count(*) from assessment_strata").fetchone()[0] == 0
    # The same command, left alone, stores the whole design.
    finished = subprocess.run(command[:-1] + ["10,10,10"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert fresh.execute("select count(*) from assessment_units").fetchone()[0] == 30


# ---------------------------------------------------------------------------- real polygons

WEBSITE_2024 = FIXTURES / "detections" / "earthrise" / "mining_202400_simplified.geojson"
# Mining along the Maroni in the Guianas: 136 website-layer polygons of 2024 in the box.
SIM_REGION = shapely.box(-55.0, 4.0, -54.5, 4.5)


@pytest.fixture(scope="module")
def simulated():
    """The truth: the 2024 website-layer polygons in the region. The map: a quarter of them
    missed, and 25 false squares added where there is no mining."""
    truth = [g for g in gpd.read_file(WEBSITE_2024, bbox=SIM_REGION.bounds).geometry
             if g.intersects(SIM_REGION)]
    rng = np.random.default_rng(2024)
    missed = rng.random(len(truth)) < 0.25
    union = shapely.union_all(truth)
    false = []
    while len(false) < 25:
        x, y = rng.uniform(-55.0, -54.503), rng.uniform(4.0, 4.497)
        square = shapely.box(x, y, x + 0.003, y + 0.003)
        if not square.intersects(union):
            false.append(square)
    mapped = [t for t, m in zip(truth, missed) if not m] + false
    truth_ea = shapely.intersection(
        gpd.GeoSeries([union], crs=4326).to_crs(EA).iloc[0],
        gpd.GeoSeries([SIM_REGION], crs=4326).to_crs(EA).iloc[0])
    shapely.prepare(truth_ea)
    return {"truth": truth, "mapped": mapped, "missed": int(missed.sum()), "truth_ea": truth_ea,
            "true_ha": truth_ea.area / 1e4}


@needs_fixtures
def test_on_real_polygons_the_estimate_equals_an_independent_stratified_estimator(db, simulated):
    insert_footprints(db, simulated["mapped"])
    strata = assessment.make_strata(db, SIM_REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    expected = independent_strata(simulated["mapped"], SIM_REGION, 1000, strata.utm_epsg and "EPSG:32621")
    for stratum in strata.strata:
        assert stratum.area_ha == pytest.approx(expected[stratum.name].area / 1e4, rel=0.01)
    design = assessment.create(db, "maroni", strata, [60, 80, 100], "given", seed=3)
    units = assessment.units(db, design)
    x, y = to_ea([u["lon"] for u in units], [u["lat"] for u in units])
    mining = shapely.contains_xy(simulated["truth_ea"], x, y)
    unit_labels.record_many(db, design.id, [
        {"line": i, "unit_id": u["unit_id"], "label": "mining" if m else "not_mining",
         "reviewer": "sim", "note": None} for i, (u, m) in enumerate(zip(units, mining))])
    result = area_results.estimate(db, design).to_json()
    # The same estimator written out by hand over a table of the units.
    frame = gpd.pd.DataFrame({"stratum": [u["stratum"] for u in units], "y": mining.astype(float)})
    areas = {s.name: s.area_ha for s in strata.strata}
    grouped = frame.groupby("stratum")["y"]
    mean, var, n = grouped.mean(), grouped.var(ddof=1), grouped.count()
    area = sum(areas[h] * mean[h] for h in areas)
    se = np.sqrt(sum(areas[h] ** 2 * var[h] / n[h] for h in areas))
    assert result["mining"]["area_ha"] == pytest.approx(area, rel=1e-9)
    assert result["mining"]["se_ha"] == pytest.approx(se, rel=1e-9)
    assert result["users_accuracy"]["value"] == pytest.approx(mean["detected"])
    assert result["producers_accuracy"]["value"] == pytest.approx(areas["detected"] * mean["detected"] / area)
    agree = frame.assign(a=np.where(frame["stratum"] == "detected", frame["y"], 1 - frame["y"]))
    overall = sum(areas[h] * agree.groupby("stratum")["a"].mean()[h] for h in areas) / sum(areas.values())
    assert result["overall_accuracy"]["value"] == pytest.approx(overall)
    assert result["mapped_area_ha"] == pytest.approx(areas["detected"])


@needs_fixtures
def test_on_real_polygons_the_robust_interval_keeps_its_promise(db, simulated):
    """Over many draws of the sample (the same design's strata, a new seed each time), the
    robust 95% interval covers the true mined area at least about 95% of the time, at most
    1.5 times as wide as Jeffreys intervals per stratum added up; the good-practice interval
    (±1.96 SE) does not, because the rest stratum mostly shows no mining.
    Measured here: see the assertion messages."""
    insert_footprints(db, simulated["mapped"])
    strata = assessment.make_strata(db, SIM_REGION, assessment.parse_period("2024"),
                                    *assessment.parse_strata(None))
    sizes = {"detected": 60, "near": 60, "rest": 60}
    truth, true_ha = simulated["truth_ea"], simulated["true_ha"]
    covered = covered_plain = 0
    widths, jeffreys_widths, replicates = [], [], 300
    for seed in range(replicates):
        parts = []
        for position, stratum in enumerate(strata.strata, start=1):
            points = assessment.uniform_points(stratum.geometry, sizes[stratum.name],
                                               assessment.stratum_rng(1000 + seed, position))
            labels = shapely.contains_xy(truth, points[:, 0], points[:, 1])
            parts.append(area_estimate.Stratum(stratum.name, stratum.area_ha, sizes[stratum.name],
                                               list(labels)))
        result = area_estimate.stratified_estimate(parts, seed=seed, draws=4000)
        covered += result.robust_low_ha <= true_ha <= result.robust_high_ha
        if result.ci95_low_ha is not None:
            covered_plain += result.ci95_low_ha <= true_ha <= result.ci95_high_ha
        widths.append(result.robust_high_ha - result.robust_low_ha)
        low = high = 0.0
        for s in parts:
            k, m = s.mining, s.labelled
            low += s.area_ha * (0.0 if k == 0 else stats.beta.ppf(0.025, k + 0.5, m - k + 0.5))
            high += s.area_ha * (1.0 if k == m else stats.beta.ppf(0.975, k + 0.5, m - k + 0.5))
        jeffreys_widths.append(high - low)
    coverage, plain = covered / replicates, covered_plain / replicates
    ratio = np.mean(widths) / np.mean(jeffreys_widths)
    message = (f"true {true_ha:,.0f} ha; robust coverage {coverage:.3f}, ±1.96 SE {plain:.3f}, "
               f"width ratio to Jeffreys per stratum {ratio:.2f}")
    print(message)
    assert coverage >= 0.93, message
    assert plain < coverage, message
    assert ratio <= 1.5, message


def test_with_accounts_only_a_signed_in_editor_makes_a_design(mapped_db, tmp_path):
    from review.judging import users

    path = mapped_db.execute("pragma database_list").fetchone()[2]
    users.add(mapped_db, "rita", "a long enough password", role="reviewer")
    users.add(mapped_db, "eda", "another long password", role="editor")
    region = str(_geojson(tmp_path, REGION))
    base = ["design", "d", "--region", region, "--period", "2024", "--n", "2,2,2"]
    assert "give --reviewer NAME" in _cli(*base, db_path=path).stderr
    as_rita = subprocess.run([sys.executable, "-m", "review", "assess", *base, "--reviewer", "rita",
                              "--password-stdin", "--db", str(path)], input="a long enough password\n",
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert as_rita.returncode == 2 and "editor" in as_rita.stderr
    assert mapped_db.execute("select count(*) from assessments").fetchone()[0] == 0
    as_eda = subprocess.run([sys.executable, "-m", "review", "assess", *base, "--reviewer", "eda",
                             "--password-stdin", "--db", str(path)], input="another long password\n",
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert as_eda.returncode == 0, as_eda.stderr
    assert mapped_db.execute("select created_by from assessments").fetchone()[0] == "eda"
