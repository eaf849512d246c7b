"""Imagery prepared ahead: `prepare-imagery`, the chip cache, failures kept and retried."""
import numpy as np
import pytest
from PIL import Image

from review import cli
from review.detection.importers import import_file
from review.review_imagery import chip_cache, chips, preparation
from review.store import connect

from tests.conftest import needs_fixtures
from tests.review_imagery.conftest import detections_file


@needs_fixtures
def test_prepare_imagery_makes_before_and_after_chips_and_resumes(tmp_path, stac, capsys):
    db_path = tmp_path / "review.db"
    import_file(connect(db_path), detections_file(tmp_path))
    assert cli.main(["prepare-imagery", "--db", str(db_path), "--quiet"]) == 0
    assert "2 detections: 1 prepared, 0 already in the cache, 1 without imagery" in capsys.readouterr().out
    site, elsewhere = sorted(connect(db_path)["detections"].rows, key=lambda d: -d["score"])
    cache = chip_cache.cache_for(connect(db_path))
    prepared = cache.lookup(site)
    assert prepared.source == "sentinel-2"
    assert (prepared.before.imagery.start, prepared.after.imagery.start) == ("2020-01-01", "2021-01-01")
    # Plain captions: what it is, how many scenes, no cache names.
    assert prepared.after.imagery.source == "Sentinel-2 L2A median of 1 scene (clouds masked)"
    assert prepared.after.shown("false").source.endswith("(false colour (SWIR, NIR, red))")
    for side in (prepared.before, prepared.after):
        true, false = (Image.open(side.path(v)) for v in ("true", "false"))
        assert true.width >= 300 and true.size == false.size
        assert not np.array_equal(np.asarray(true), np.asarray(false))
    before, after = (np.asarray(Image.open(s.path()), dtype=float) for s in (prepared.before, prepared.after))
    assert np.abs(before - after).mean() > 5            # two different years, not one picture twice
    dehazed = prepared.after.path("true", dehazed=True)
    assert dehazed.exists() and Image.open(dehazed).size == Image.open(prepared.after.path()).size
    # Only the bands the two views need were read: five bands and the cloud mask per scene.
    read = {r.split("/")[-1] for r in stac.requests if r.startswith("GET") and r.endswith(".tif")}
    assert len(read) == 2 * 6 and not any("B05" in r or "nir08" in r for r in read)
    # Outside any imagery: nothing prepared, the reason kept and said in plain words.
    assert cache.lookup(elsewhere) is None
    assert "no sentinel-2-l2a scenes" in cache.failure(elsewhere, "sentinel-2")["reason"]
    message = preparation.unavailable(cache, elsewhere)
    assert "it is tried again later" in message and "Sentinel-2 composites: no sentinel-2-l2a scenes" in message
    # A second run takes what is cached and does not ask the catalogue again for it.
    asked = len(stac.requests)
    assert cli.main(["prepare-imagery", "--db", str(db_path), "--quiet"]) == 0
    assert "0 prepared, 1 already in the cache, 1 without imagery" in capsys.readouterr().out
    assert len(stac.requests) == asked                  # the failure waits for its retry time
    assert cli.main(["prepare-imagery", "--db", str(db_path), "--quiet", "--retry"]) == 0
    assert len(stac.requests) > asked
    assert cache.failure(elsewhere, "sentinel-2")["attempts"] == 2


@needs_fixtures
def test_a_half_written_set_is_never_read_and_a_catalogue_down_is_a_reason(tmp_path, stac, monkeypatch):
    db = connect(tmp_path / "review.db")
    import_file(db, detections_file(tmp_path))
    site = next(d for d in db["detections"].rows if d["score"] > 0.92)
    # A preparer killed while writing leaves only a temporary folder: it does not count.
    cache = chip_cache.cache_for(db)
    stray = cache.folder / str(site["id"]) / ".tmp-deadbeef"
    stray.mkdir(parents=True)
    (stray / "after_true.jpg").write_bytes(b"half")
    assert cache.lookup(site) is None
    monkeypatch.setenv("REVIEW_STAC_URL", "http://127.0.0.1:9/")
    assert preparation.prepare(db, site) is None
    assert "could not reach the Sentinel-2 catalogue" in chip_cache.cache_for(db).failure(site, "sentinel-2")["reason"]
    monkeypatch.setenv("REVIEW_STAC_URL", stac.url)
    assert preparation.prepare(db, site) is None          # not due again yet
    prepared = preparation.prepare(db, site, retry_seconds=0)
    assert prepared.source == "sentinel-2" and chip_cache.cache_for(db).failure(site, "sentinel-2") is None


def test_dehazing_lifts_a_veil_and_keeps_a_clear_picture():
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 120, (120, 120, 3)).astype(np.float32)
    veiled = Image.fromarray((scene * 0.4 + 0.6 * 230).astype(np.uint8))
    assert chips.haze(veiled) > chip_cache.HAZY
    clear = np.asarray(chips.dehaze(veiled), dtype=float)
    assert clear.std() > 2 * np.asarray(veiled, dtype=float).std()     # contrast comes back
    assert chips.haze(Image.fromarray(scene.astype(np.uint8))) < chip_cache.HAZY


def test_cache_prefixes_are_left_out_of_names():
    assert chips.plain_name("4aefff1db7bcbf36_mining_128_t0.tif") == "mining_128_t0.tif"
    assert chips.plain_name("mining_128_t0.tif") == "mining_128_t0.tif"


@needs_fixtures
@pytest.mark.parametrize("fault", ["slow", "garbage"])
def test_a_slow_or_garbled_catalogue_is_a_reason_not_a_hang(tmp_path, stac, fault):
    import time

    from review.detection.fetch import Source

    db = connect(tmp_path / "review.db")
    import_file(db, detections_file(tmp_path))
    site = next(d for d in db["detections"].rows if d["score"] > 0.92)
    if fault == "slow":
        stac.search_delay = 5
    else:
        stac.garbage = True
    started = time.monotonic()
    assert preparation.prepare(db, site, source=Source(url=stac.url, timeout=1)) is None
    assert time.monotonic() - started < 15
    reason = chip_cache.cache_for(db).failure(site, "sentinel-2")["reason"]
    assert ("did not answer properly" if fault == "slow" else "not a STAC catalogue") in reason
    assert "it is tried again later" in preparation.unavailable(chip_cache.cache_for(db), site)


def _chip(colour: str, year: str):
    from review.judging.verdicts import Imagery

    return chips.Chip(image=Image.new("RGB", (16, 16), colour), imagery=Imagery("test", year, year))


def test_a_new_databases_detection_1_never_gets_an_old_databases_chips(tmp_path):
    """Someone starts over (a new database, --db, the same data/chips folder): ids start at 1
    again, at other places. The old #1's chips are neither shown nor recorded as evidence."""
    from tests.conftest import add_detections

    old = connect(tmp_path / "old.db")
    add_detections(old, 1)
    chip_cache.cache_for(old).store(old["detections"].get(1), "sentinel-2", _chip("red", "2020"),
                                    _chip("blue", "2021"))
    chip_cache.cache_for(old).record_failure(old["detections"].get(1), "wayback", "offline")
    assert chip_cache.cache_for(old).lookup(old["detections"].get(1)).after is not None
    new = connect(tmp_path / "new.db")
    add_detections(new, 1)                      # detection #1 again, even the same footprint
    fresh = chip_cache.cache_for(new)
    assert fresh.lookup(new["detections"].get(1)) is None
    assert fresh.failure(new["detections"].get(1), "wayback") is None
    assert preparation.prepare(new, new["detections"].get(1), sources=("scenes",)) is None


def test_a_restored_backup_never_shows_chips_of_a_detection_it_never_had(tmp_path):
    """A backup keeps its database's identity; after restoring it, the next detection takes
    an id that, in the abandoned copy, belonged to another place: its chips stay unseen."""
    from review.store import backup

    from tests.conftest import add_detections

    db = connect(tmp_path / "review.db")
    add_detections(db, 1)
    backup(db, tmp_path / "backup.db")
    add_detections(db, 1, source="later")               # detection #2, somewhere
    cache = chip_cache.cache_for(db)
    cache.store(db["detections"].get(2), "sentinel-2", _chip("red", "2020"), _chip("blue", "2021"))
    restored = connect(tmp_path / "backup.db")
    import shapely

    elsewhere = shapely.box(-60.0, -3.0, -59.99, -2.99)
    restored["detections"].insert({"source": "other", "external_id": "x", "west": -60.0,
                                   "south": -3.0, "east": -59.99, "north": -2.99,
                                   "geometry": shapely.to_geojson(elsewhere)})   # #2, elsewhere
    assert chip_cache.cache_for(restored).folder == cache.folder          # the same database
    assert db["detections"].get(2)["geometry"] != restored["detections"].get(2)["geometry"]
    assert chip_cache.cache_for(restored).lookup(restored["detections"].get(2)) is None
    assert cache.lookup(db["detections"].get(2)) is not None


def test_a_scene_missing_a_sliver_of_the_footprint_still_shows_it(db):
    """Reprojection leaves slivers at a chip's edge: a scene covering 99.96% of a
    detection's box is imagery of that place; one missing a tenth of it is not."""
    import shapely

    box = shapely.box(-57.0, -5.0, -56.99, -4.99)
    db["detections"].insert({"source": "s", "external_id": "1", "geometry": shapely.to_geojson(box),
                             "west": -57.0, "south": -5.0, "east": -56.99, "north": -4.99})
    detection = db["detections"].get(1)
    for name, east in (("sliver", -56.990004), ("tenth", -56.991)):
        db["scenes"].insert({"path": __file__, "name": name, "west": -57.1, "south": -5.1,
                             "east": east, "north": -4.9})
    assert [s["name"] for s in chips.scenes_covering(db, detection)] == ["sliver"]


def test_no_imagery_anywhere_is_one_plain_sentence(db, monkeypatch):
    """Offline, with no stored scene: one sentence that says why, no errno, no library text."""
    from tests.conftest import add_detections, assert_plain

    monkeypatch.setenv("REVIEW_STAC_URL", "http://nonexistent.invalid/")
    monkeypatch.setenv("REVIEW_WAYBACK_CONFIG_URL", "http://nonexistent.invalid/wayback.json")
    (detection_id,) = add_detections(db, 1)
    detection = db["detections"].get(detection_id)
    assert preparation.prepare(db, detection) is None
    message = preparation.unavailable(chip_cache.cache_for(db), detection)
    assert_plain(message)
    assert message.count(". ") == 0 and message.endswith("know.")
    assert "no stored scene covers it" in message and "cannot be reached from this machine" in message
