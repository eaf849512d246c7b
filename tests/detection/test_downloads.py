"""Downloads: atomic, checksummed, with progress; failures keep nothing and say why."""
import hashlib

import numpy as np
import pytest

from review.detection.downloads import DownloadFailed, fetch


def test_a_download_arrives_whole_with_progress_to_the_end(tmp_path, file_server):
    served = tmp_path / "served"
    served.mkdir()
    payload = np.random.default_rng(2).bytes(200_000)
    (served / "layer.geojson").write_bytes(payload)
    seen = []
    path = fetch(file_server(served) + "layer.geojson", tmp_path / "out" / "layer.geojson",
                 sha256=hashlib.sha256(payload).hexdigest(),
                 progress=lambda done, total, what: seen.append((done, total, what)))
    assert path.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload), "layer.geojson")
    assert [p.name for p in path.parent.iterdir()] == ["layer.geojson"]     # no .part left


def test_a_checksum_mismatch_keeps_nothing_and_leaves_an_old_copy_alone(tmp_path, file_server):
    served = tmp_path / "served"
    served.mkdir()
    (served / "layer.geojson").write_bytes(b"tampered")
    destination = tmp_path / "out" / "layer.geojson"
    destination.parent.mkdir()
    destination.write_bytes(b"the good copy")
    with pytest.raises(DownloadFailed, match="was not kept"):
        fetch(file_server(served) + "layer.geojson", destination, sha256="0" * 64)
    assert destination.read_bytes() == b"the good copy"
    assert [p.name for p in destination.parent.iterdir()] == ["layer.geojson"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/nothing-listens-here", "missing.geojson"])
def test_an_unreachable_or_missing_file_is_one_clear_error(tmp_path, file_server, url):
    if not url.startswith("http"):
        url = file_server(tmp_path) + url                   # the server answers 404
    with pytest.raises(DownloadFailed, match="could not reach 127.0.0.1|did not send x.geojson"):
        fetch(url, tmp_path / "out" / "x.geojson")
    assert list((tmp_path / "out").iterdir()) == []
