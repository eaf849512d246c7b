"""Files are written whole or not at all: a failed writer leaves the old file and no litter,
two writers of one file never clash, and staged files appear together or not at all."""
import threading

import pytest

from review import files


def _litter(folder):
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_a_writer_that_fails_midway_leaves_the_old_file_untouched_and_no_temporary(tmp_path):
    target = tmp_path / "detections.geojson"
    target.write_text("the good export")
    with pytest.raises(RuntimeError):
        with files.replacing(target) as partial:
            partial.write_text("half an exp")
            raise RuntimeError("disk full")
    assert target.read_text() == "the good export"
    assert _litter(tmp_path) == []


def test_the_temporary_file_sits_beside_the_target_and_keeps_its_suffix(tmp_path):
    with files.replacing(tmp_path / "out" / "tile.tif") as partial:
        assert partial.parent == tmp_path / "out" and partial.suffix == ".tif"
        partial.write_bytes(b"II*\x00")
    assert (tmp_path / "out" / "tile.tif").read_bytes() == b"II*\x00"


def test_two_writers_of_one_file_never_clash_and_the_file_is_always_one_whole_content(tmp_path):
    target = tmp_path / "key"
    contents = [bytes([n]) * 200_000 for n in range(8)]
    errors = []

    def write(content):
        try:
            for _ in range(5):
                files.write_bytes(target, content)
        except Exception as exc:           # a clash would show up as an error here
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_bytes() in contents
    assert _litter(tmp_path) == []


def test_write_once_keeps_the_first_writer_and_its_permissions(tmp_path):
    target = tmp_path / "data" / "secret_key"
    assert files.write_once(target, b"first", mode=0o600) is True
    assert files.write_once(target, b"second", mode=0o600) is False
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o600
    assert _litter(target.parent) == []


def test_staged_files_take_their_names_together_only_when_committed(tmp_path):
    out, raw = tmp_path / "out.geojson", tmp_path / "raw.geojson"
    out.write_text("previous")
    with pytest.raises(ValueError):
        with files.staged() as staged:
            staged.stage(out, "new candidates")
            staged.stage(raw, "new raw")
            raise ValueError("the database write failed")
    assert out.read_text() == "previous" and not raw.exists()
    assert _litter(tmp_path) == []

    with files.staged() as staged:
        staged.stage(out, "new candidates")
        staged.stage(raw, b"new raw")
        assert out.read_text() == "previous"          # nothing visible before the commit
        staged.commit()
    assert out.read_text() == "new candidates" and raw.read_text() == "new raw"
    assert _litter(tmp_path) == []


def test_an_error_names_the_file_the_user_asked_for_not_the_temporary(tmp_path):
    missing = tmp_path / "no such folder" / "evidence.png"
    with pytest.raises(FileNotFoundError) as raised:
        files.write_bytes(missing, b"png", make_folder=False)
    assert raised.value.filename == str(missing)
    with pytest.raises(FileNotFoundError) as raised:
        with files.staged() as staged:
            staged.stage(missing, "candidates")
    assert raised.value.filename == str(missing)


def test_write_once_works_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    target = tmp_path / "secret_key"
    assert files.write_once(target, b"first", mode=0o600) is True
    assert files.write_once(target, b"second", mode=0o600) is False
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o600
    assert _litter(tmp_path) == []
