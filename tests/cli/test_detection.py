"""The detection wing's commands: detect (one tile, several looks), fetch, import, models."""
import json

import numpy as np
import pytest
import rasterio.shutil

from review.cli import main
from review.store import connect

from tests.cli import run_cli
from tests.conftest import (SLOVENIA, TINY_BANDS, mine_tile, needs_fixtures, random_reflectance,
                            write_tile)


@pytest.fixture
def tile_path(tmp_path):
    return mine_tile(tmp_path / "tile.tif",
                     tags={"PERIOD_START": "2024-01-01", "PERIOD_END": "2024-12-31"})


def test_detect_writes_candidates_raw_patches_and_the_database(tmp_path, tile_path,
                                                             tiny_model_path, capsys):
    out, raw, db = tmp_path / "out.geojson", tmp_path / "raw.geojson", tmp_path / "review.db"
    code = main(["detect", str(tile_path), "--model", str(tiny_model_path), "--out", str(out),
                 "--raw", str(raw), "--db", str(db), "--quiet"])
    assert code == 0
    said = capsys.readouterr().out
    assert "patches of tile.tif scored by tiny on CPU" in said or "on GPU" in said
    patches = json.loads(raw.read_text())["features"]
    assert len(patches) == 7 * 7
    scores = [f["properties"]["score"] for f in patches]
    found = json.loads(out.read_text())["features"]
    # The bright square (pixels 16-48) is one candidate: the 5x5 patches that overlap it by
    # a quarter or more score above t_main 0.5 and dissolve into pixels 8-56: 480 m square.
    assert len(found) == 1
    assert found[0]["properties"]["area_ha"] == pytest.approx(23.04)
    assert found[0]["properties"]["patches"] == 25
    assert all(f["properties"]["period_start"] == "2024-01-01" for f in found)
    store = connect(db)
    (run,) = list(store["runs"].rows)
    assert run["model_id"] == "tiny" and run["patches"] == 49 and run["device"] in said
    assert run["t_main"] == 0.5 and run["candidates"] == len(found)
    stored = list(store["detections"].rows)
    assert len(stored) == len(found)
    assert stored[0]["area_ha"] == pytest.approx(found[0]["properties"]["area_ha"], abs=1e-3)
    assert max(scores) >= max(d["score"] for d in stored)
    (scene,) = list(store["scenes"].rows)
    assert scene["name"] == "tile.tif" and scene["period_end"] == "2024-12-31"


def test_reflectance_as_fractions_scores_as_the_same_digital_numbers(tmp_path, tiny_model_path,
                                                                    capsys):
    """An export that divided by 10000 (floats 0-1) would reach the model as near-black
    pixels and score low without any error; it is read as digital numbers instead, and
    the run says so."""
    dn = mine_tile(tmp_path / "dn.tif")
    with rasterio.open(dn) as src:
        fractions = write_tile(tmp_path / "fractions.tif", src.read() / 10000.0, TINY_BANDS,
                               dtype="float32")
    scores = {}
    for path in (dn, fractions):
        out = tmp_path / f"{path.stem}.geojson"
        assert main(["detect", str(path), "--model", str(tiny_model_path), "--out", str(out),
                     "--raw", "--quiet"]) == 0
        scores[path.stem] = [f["properties"]["score"] for f in json.loads(out.read_text())["features"]]
    assert max(scores["dn"]) > 0.9
    assert scores["fractions"] == pytest.approx(scores["dn"], abs=1e-5)
    said = capsys.readouterr().out
    assert "fractions.tif holds reflectance as fractions (0-1), read as digital numbers" in said
    assert said.count("as fractions") == 1                      # not said of dn.tif


def test_raw_flag_alone_writes_patches_to_out(tmp_path, tile_path, tiny_model_path):
    out = tmp_path / "raw.geojson"
    assert main(["detect", str(tile_path), "--model", str(tiny_model_path), "--out", str(out),
                 "--raw", "--quiet"]) == 0
    features = json.loads(out.read_text())["features"]
    assert len(features) == 49 and "score" in features[0]["properties"]


def test_failed_run_changes_nothing_already_stored(tmp_path, tile_path, tiny_model_path, capsys):
    out, db = tmp_path / "out.geojson", tmp_path / "review.db"
    args = ["--model", str(tiny_model_path), "--out", str(out), "--db", str(db), "--quiet"]
    assert main(["detect", str(tile_path), *args]) == 0
    before_db = {t: connect(db)[t].count for t in ("scenes", "runs", "detections")}
    before_out = out.read_bytes()
    broken = tmp_path / "broken.tif"
    rasterio.shutil.copy(tile_path, broken, driver="COG")
    broken.write_bytes(broken.read_bytes()[:3000])
    assert main(["detect", str(broken), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert {t: connect(db)[t].count for t in before_db} == before_db
    assert out.read_bytes() == before_out


BAD_INPUTS = {
    "not a raster": (lambda tmp: _text_file(tmp), [], "not a raster"),
    "no georeferencing": (lambda tmp: write_tile(tmp / "plain.tif", random_reflectance(4, 32, 32),
                                                 TINY_BANDS, crs=None), [], "no georeferencing"),
    "8-bit": (lambda tmp: write_tile(tmp / "photo.tif", np.full((4, 32, 32), 120, "uint8"),
                                     TINY_BANDS), [], "8-bit"),
    "missing bands": (lambda tmp: write_tile(tmp / "rgb.tif", random_reflectance(3, 32, 32),
                                             ["B4", "B3", "B2"]), [], "needs bands B8"),
    "unnamed bands": (lambda tmp: write_tile(tmp / "anon.tif", random_reflectance(4, 32, 32)),
                      [], "have no names"),
    "too large": (lambda tmp: write_tile(tmp / "big.tif", random_reflectance(4, 64, 64),
                                         TINY_BANDS), ["--max-pixels", "1000"], "larger than the limit"),
    "bad mapping": (lambda tmp: write_tile(tmp / "anon.tif", random_reflectance(4, 32, 32)),
                    ["--bands", "B2,B3"], "gives 2 names but the file has 4"),
    "smaller than a patch": (lambda tmp: write_tile(tmp / "chip.tif", random_reflectance(4, 12, 40),
                                                    TINY_BANDS), [], "no 16-pixel patch"),
}


def _text_file(tmp):
    path = tmp / "report.tif"
    path.write_text("quarterly report")
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_line_and_a_nonzero_exit(case, tmp_path, tiny_model_path, capsys):
    make, extra, expected = BAD_INPUTS[case]
    out = tmp_path / "out.geojson"
    code = main(["detect", str(make(tmp_path)), "--model", str(tiny_model_path),
                 "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not out.exists()


def test_bad_model_file_gets_one_line(tmp_path, tile_path, capsys):
    fake = tmp_path / "weights.h5"
    fake.write_bytes(b"\x89HDF\r\n")
    assert main(["detect", str(tile_path), "--model", str(fake), "--out",
                 str(tmp_path / "o.geojson")]) == 2
    assert "not a published checkpoint" in capsys.readouterr().err


def test_cli_process_prints_no_traceback_and_no_tensorflow_noise(tmp_path, tiny_model_path):
    anon = write_tile(tmp_path / "anon.tif", random_reflectance(4, 32, 32))
    done = run_cli("detect", anon, "--model", tiny_model_path, "--out", tmp_path / "o.geojson")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


@needs_fixtures
def test_cli_on_a_real_scene_with_a_published_model(tmp_path, real_model_cache):
    out = tmp_path / "raw.geojson"
    done = run_cli("detect", SLOVENIA[0], "--model", "48px_v4.21", "--out", out, "--raw",
                   "--period", "2017-01-01/2017-12-31")
    assert done.returncode == 0, done.stderr
    features = json.loads(out.read_text())["features"]
    assert len(features) >= 4
    assert {f["properties"]["period_end"] for f in features} == {"2017-12-31"}
    assert "scored by 48px_v4.21 on" in done.stdout


def test_models_command_lists_the_cards(capsys):
    assert main(["models", "--json"]) == 0
    cards = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {c["id"] for c in cards} >= {"48px_v4.21", "48px_v3.2", "44px_v2.8",
                                        "44px_v2.6_rgb_ir", "48px_v3.2-3.7ensemble"}
    assert all(c["cached"] is False for c in cards)


@pytest.mark.parametrize("bad_db", ["not a database", "folder is a file"])
def test_a_bad_database_is_refused_before_anything_is_written(bad_db, tmp_path, tile_path,
                                                              tiny_model_path, capsys):
    if bad_db == "not a database":
        db = tmp_path / "notes.db"
        db.write_text("my field notes, not a database")
    else:
        (tmp_path / "plain-file").write_text("x")
        db = tmp_path / "plain-file" / "review.db"           # a folder that cannot exist
    out, raw = tmp_path / "out.geojson", tmp_path / "raw.geojson"
    args = ["detect", str(tile_path), "--model", str(tiny_model_path), "--out", str(out),
            "--raw", str(raw), "--db", str(db), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(db) in err
    assert not out.exists() and not raw.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tile.tif", "plain-file" if bad_db != "not a database" else "notes.db"])   # no .part left
    # An output file from an earlier run stays as it was.
    out.write_text("earlier candidates")
    assert main(args) == 2
    assert out.read_text() == "earlier candidates" and not raw.exists()


def test_a_new_database_is_made_only_when_the_run_succeeds(tmp_path, tiny_model_path, capsys):
    db = tmp_path / "new" / "review.db"
    anon = write_tile(tmp_path / "anon.tif", random_reflectance(4, 32, 32))
    assert main(["detect", str(anon), "--model", str(tiny_model_path), "--out",
                 str(tmp_path / "o.geojson"), "--db", str(db), "--quiet"]) == 2
    assert not db.exists() and not (tmp_path / "o.geojson").exists()
    good = mine_tile(tmp_path / "tile.tif")
    assert main(["detect", str(good), "--model", str(tiny_model_path), "--out",
                 str(tmp_path / "o.geojson"), "--db", str(db), "--quiet"]) == 0
    assert connect(db)["detections"].count == 1 and (tmp_path / "o.geojson").exists()


def test_the_cli_names_its_flags_where_the_domain_message_does_not(tmp_path, tiny_model_path, capsys):
    from review.analysis.trends import trend_table
    from review.detection.detect import check_compatible
    from review.detection.fetch import parse_bbox
    from review.detection.imagery import open_tile
    from review.detection.models import read_card_beside
    from review.errors import ReviewError

    anon = write_tile(tmp_path / "anon.tif", random_reflectance(4, 32, 32))
    twice = write_tile(tmp_path / "twice.tif", random_reflectance(4, 32, 32), ["B2", "B2", "B4", "B8"])
    domain = []
    for attempt in (lambda: parse_bbox("1,2,3"),
                    lambda: trend_table(connect(tmp_path / "r.db"), by="month"),
                    lambda: check_compatible(open_tile(anon), read_card_beside(tiny_model_path)),
                    lambda: open_tile(twice)):
        with pytest.raises(ReviewError) as raised:
            attempt()
        domain.append(str(raised.value))
    # What the dashboard shows: what is wrong and what to do, no command-line flag.
    assert all("--" not in message for message in domain), domain
    assert "W,S,E,N" in domain[0] and "year or quarter" in domain[1]
    assert "name the bands in file order" in domain[2] and "name the bands in file order" in domain[3]
    # What the command line shows: the same, with the flag to use.
    assert main(["detect", "--bbox", "1,2,3", "--start", "2024-01-01", "--end", "2024-02-01",
                 "--model", str(tiny_model_path), "--out", str(tmp_path / "o.geojson")]) == 2
    assert capsys.readouterr().err.startswith("error: --bbox: the area must be four numbers W,S,E,N")
    for path in (anon, twice):
        assert main(["detect", str(path), "--model", str(tiny_model_path),
                     "--out", str(tmp_path / "o.geojson")]) == 2
        err = capsys.readouterr().err.strip()
        assert "name the bands in file order" in err and err.endswith("(give them with --bands)")
    assert main(["detect", str(anon), "--model", str(tiny_model_path), "--bands", "B2,B3",
                 "--out", str(tmp_path / "o.geojson")]) == 2
    assert capsys.readouterr().err.startswith("error: --bands B2,B3: ")
