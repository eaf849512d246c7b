"""Uploaded files: kept once per content under the data folder, or held briefly."""
import hashlib

from review.detection import uploads


def test_a_scene_is_kept_once_per_content_under_data_scenes(tmp_path):
    content = b"II*\x00 a tile"
    first = uploads.save_scene(content, "upload.tif")
    digest = hashlib.sha256(content).hexdigest()[:16]
    assert first == tmp_path / "data" / "scenes" / f"{digest}_upload.tif"
    assert first.read_bytes() == content
    mtime = first.stat().st_mtime_ns
    assert uploads.save_scene(content, "upload.tif") == first
    assert first.stat().st_mtime_ns == mtime                          # not written again
    other = uploads.save_scene(b"another tile", "upload.tif")
    assert other != first and other.read_bytes() == b"another tile"
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, other.name])  # no .part left


def test_an_uploaded_layer_keeps_its_name_in_a_folder_named_by_content(tmp_path):
    path = uploads.save_import(b'{"type": "FeatureCollection"}', "detections_2023-01-01_2023-12-31.geojson")
    assert path.name == "detections_2023-01-01_2023-12-31.geojson"       # source name and period
    assert path.parent.parent == tmp_path / "data" / "imports"
    assert path.parent.name == uploads.digest(b'{"type": "FeatureCollection"}')
    assert uploads.save_import(b"changed", path.name).parent != path.parent


def test_an_upload_cannot_name_a_folder_outside_the_data_folder(tmp_path):
    path = uploads.save_scene(b"x", "../../etc/passwd")
    assert path.parent == tmp_path / "data" / "scenes" and path.name.endswith("_passwd")
    assert uploads.save_import(b"x", "..\\evil.geojson").name == "evil.geojson"


def test_a_temporary_copy_is_removed_afterwards():
    with uploads.temporary_copy(b"polygons", "regions.geojson") as path:
        assert path.name == "regions.geojson" and path.read_bytes() == b"polygons"
    assert not path.exists() and not path.parent.exists()
