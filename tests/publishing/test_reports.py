"""Field reports with photos: EXIF, attachment, storage, exports, bad input."""
from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from review.cli import main
from review.errors import ReviewError
from review.judging import verdicts
from review.judging.queue import Filters
from review.publishing import reports
from review.publishing.export import evidence_png, export
from review.publishing.reports import ReportError

from tests.conftest import add_detections, detections_with_imagery, jpeg_with_gps


def _db_path(db) -> str:
    return db.execute("pragma database_list").fetchone()[2]


def _stored_files():
    folder = reports.photos_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _nothing_stored(db):
    assert db["field_reports"].count == 0 and db["photos"].count == 0
    assert _stored_files() == []


# --------------------------------------------------------------------- the main path


def test_report_with_gps_photo_attaches_to_nearest_detection_and_is_exported(db, tmp_path, capsys):
    ids = add_detections(db, 5)           # 0.004° squares every 0.01° along lat -5
    verdicts.record(db, ids[2], "ana", "verified")
    # 30 m east of detection 3's footprint (which ends at lon -56.976), 700 m from the next
    photo = jpeg_with_gps(tmp_path / "IMG_0001.jpg", lon=-56.9757, lat=-4.998)
    code = main(["report", "add", "--text", "fresh pits, two excavators", "--photo", str(photo),
                 "--reporter", "field team 2", "--seen", "2024-05-31", "--db", _db_path(db)])
    assert code == 0
    added = json.loads(capsys.readouterr().out)
    assert added["detection_id"] == ids[2] and not added["lead"]
    assert added["position_from"] == "photo" and 0 < added["distance_m"] < 60
    (stored,) = reports.listing(db, detection_id=ids[2])
    assert stored["reporter"] == "field team 2" and stored["seen"] == "2024-05-31"
    (meta,) = stored["photos"]
    sha = meta["sha256"]
    assert meta["taken_at"] == "2024-05-31T10:20:30"
    assert meta["lon"] == pytest.approx(-56.9757, abs=1e-6) and meta["lat"] == pytest.approx(-4.998, abs=1e-6)
    import hashlib
    assert sha == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert _stored_files() == [f"{sha}.jpg"]
    assert reports.photo_path(sha).read_bytes() == photo.read_bytes()
    assert reports.thumbnail(sha, 64).size == (64, 48)

    out = tmp_path / "verified.geojson"
    assert export(db, out, Filters(status="verified")) == 1
    (feature,) = json.loads(out.read_text())["features"]
    (field_report,) = feature["properties"]["field_reports"]
    assert field_report["text"] == "fresh pits, two excavators"
    assert field_report["reporter"] == "field team 2" and field_report["seen"] == "2024-05-31"
    assert field_report["photos"] == [{"sha256": sha, "taken_at": "2024-05-31T10:20:30",
                                       "lon": meta["lon"], "lat": meta["lat"]}]

    # the same photo in a second report is stored once
    reports.add(db, "still active", "ana", detection_id=ids[2], photos=[("again.jpg", photo.read_bytes())])
    assert db["photos"].count == 1 and _stored_files() == [f"{sha}.jpg"]


def test_position_with_nothing_near_is_a_lead_and_reporter_defaults_to_os_user(db, tmp_path, capsys,
                                                                               monkeypatch):
    add_detections(db, 3)
    monkeypatch.setattr("getpass.getuser", lambda: "fieldlaptop")
    assert main(["report", "add", "--lon", "-56.5", "--lat", "-5.2", "--text", "smoke seen",
                 "--db", _db_path(db)]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["lead"] and added["detection_id"] is None and added["position_from"] == "given"
    assert main(["report", "list", "--leads", "--db", _db_path(db)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["reporter"] == "fieldlaptop" and json.loads(line)["text"] == "smoke seen"


def test_report_attaches_to_a_site_when_the_database_has_sites(db):
    from review.analysis import sites

    ids = add_detections(db, 2)
    sites.build(db)
    site_id = db.execute("select site_id from site_members where detection_id = ?", [ids[1]]).fetchone()[0]
    added = reports.add(db, "tailings pond", "ana", lon=-56.988, lat=-4.998)     # on detection 2
    assert (added["site_id"], added["detection_id"]) == (site_id, ids[1]) and not added["lead"]
    assert [r["id"] for r in reports.listing(db, site_id=site_id)] == [added["id"]]


# ------------------------------------------------------------------------ bad input


def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_stored(db, tmp_path, capsys):
    (ids := add_detections(db, 1))
    good = jpeg_with_gps(tmp_path / "good.jpg")
    fake = tmp_path / "notes.jpg"
    fake.write_text("just some text, not a photo")
    code = main(["report", "add", "--detection", str(ids[0]), "--text", "pits",
                 "--photo", str(good), "--photo", str(fake), "--db", _db_path(db)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: notes.jpg: not a photo") and err.count("\n") == 1 and "--" not in err
    _nothing_stored(db)
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (8, 8)).save(gif)
    with pytest.raises(ReportError, match="a GIF image; photos must be JPEG, PNG"):
        reports.add(db, "pits", "ana", detection_id=ids[0], photos=[gif])
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ReportError, match="cut.jpg: the image is damaged or cut short"):
        reports.read_photo(truncated)
    _nothing_stored(db)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header) with no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused(db, tmp_path):
    ids = add_detections(db, 1)
    assert Image.MAX_IMAGE_PIXELS is not None          # Pillow's limit stays on
    for side in (20_000, 60_000):                       # over the warning and over the error limit
        bomb = tmp_path / f"bomb{side}.png"
        bomb.write_bytes(_png_header(side, side))
        with pytest.raises(ReportError, match=f"bomb{side}.png: the image is too large to open safely"):
            reports.add(db, "pits", "ana", detection_id=ids[0], photos=[bomb])
    _nothing_stored(db)


def test_garbage_or_absent_gps_leaves_the_position_empty(db, tmp_path):
    ids = add_detections(db, 1)
    garbage = jpeg_with_gps(tmp_path / "garbage.jpg", taken="yesterday at noon", gps={
        ExifTags.GPS.GPSLatitudeRef: "Q", ExifTags.GPS.GPSLatitude: (IFDRational(5, 0), 1.0, 2.0),
        ExifTags.GPS.GPSLongitude: (1.0,)})
    noise = tmp_path / "noise.jpg"                       # an EXIF block of random bytes
    Image.new("RGB", (40, 30), "red").save(noise, "JPEG", exif=b"Exif\x00\x00" + bytes(
        np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8)))
    zero = jpeg_with_gps(tmp_path / "zero.jpg", gps={ExifTags.GPS.GPSLatitude: (0.0, 0.0, 0.0),
                                             ExifTags.GPS.GPSLongitude: (0.0, 0.0, 0.0)})
    plain = tmp_path / "plain.png"
    Image.new("RGB", (30, 20), "blue").save(plain)
    for path in (garbage, noise, zero, plain):
        photo = reports.read_photo(path)
        assert (photo.lon, photo.lat) == (None, None)
    assert reports.read_photo(garbage).taken_at is None
    # no id, no position and no GPS: the report is refused, not filed as a lead at 0, 0
    with pytest.raises(ReportError, match="a report needs what it is about"):
        reports.add(db, "pits", "ana", photos=[garbage, plain])
    _nothing_stored(db)
    added = reports.add(db, "pits", "ana", detection_id=ids[0], photos=[garbage, plain])
    assert added["lon"] is None and len(added["photos"]) == 2


def test_a_100_mb_photo_is_refused_before_it_is_read(db, tmp_path):
    ids = add_detections(db, 1)
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as handle:                     # sparse: takes no disk space
        handle.truncate(100 * 2**20)
    with pytest.raises(ReportError, match="huge.jpg: 100 MB is over the 25 MB limit"):
        reports.add(db, "pits", "ana", detection_id=ids[0], photos=[huge])
    with pytest.raises(ReportError, match="over the 25 MB limit"):
        reports.read_photo(("upload.jpg", b"\xff" * (reports.MAX_PHOTO_BYTES + 1)))
    _nothing_stored(db)


def test_a_position_outside_lon_lat_range_is_one_plain_sentence(db, capsys):
    add_detections(db, 1)
    assert main(["report", "add", "--lon", "200", "--lat", "10", "--text", "pits",
                 "--db", _db_path(db)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: 200.0, 10.0 is not a place on Earth: the longitude must be between "
                   "-180 and 180 and the latitude between -90 and 90\n")
    with pytest.raises(ReportError, match="not a place on Earth"):
        reports.add(db, "pits", "ana", lon=10, lat=float("nan"))
    with pytest.raises(ReportError, match="the date seen must look like 2024-05-31"):
        reports.add(db, "pits", "ana", lon=10, lat=10, seen="31/05/2024")
    _nothing_stored(db)


def test_a_failed_report_leaves_no_photo_file_behind(db, tmp_path):
    photo = jpeg_with_gps(tmp_path / "p.jpg", lon=-56.9757, lat=-4.998)
    with pytest.raises(ReportError, match="no detection with id 42"):
        reports.add(db, "pits", "ana", detection_id=42, photos=[photo])
    _nothing_stored(db)


# ------------------------------------------------------------------ Google Earth, evidence



def test_evidence_picture_shows_the_first_field_photo(db, tmp_path):
    ids = detections_with_imagery(db, tmp_path, n=1)
    without = Image.open(io.BytesIO(evidence_png(db, ids[0])))
    reports.add(db, "pits", "ana", detection_id=ids[0], photos=[jpeg_with_gps(tmp_path / "f.jpg", colour="#00ff00")])
    picture = Image.open(io.BytesIO(evidence_png(db, ids[0]))).convert("RGB")
    assert picture.width > without.width                            # a third panel
    pixels = np.asarray(picture)
    panel = pixels[:, without.width:].astype(int)
    green = (panel[..., 1] > 200) & (panel[..., 0] < 60) & (panel[..., 2] < 60)
    assert green.sum() > 1000                                       # the green photo


def test_unknown_export_format_still_refused(db, tmp_path):
    with pytest.raises(ReviewError, match=r"\.kml or \.kmz"):
        export(db, tmp_path / "x.shp", Filters())


def test_heic_photos_from_phones_are_accepted(db, tmp_path):
    pytest.importorskip("pillow_heif")
    ids = add_detections(db, 1)
    heic = tmp_path / "IMG_0002.HEIC"
    Image.new("RGB", (64, 48), "red").save(heic, format="HEIF")
    added = reports.add(db, "pits", "ana", detection_id=ids[0], photos=[heic])
    (photo,) = added["photos"]
    assert _stored_files() == [f"{photo['sha256']}.heic"]
    assert reports.thumbnail(photo["sha256"], 32).size == (32, 24)
