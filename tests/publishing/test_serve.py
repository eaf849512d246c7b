"""The live OGC API - Features service, read as a GIS client reads it (OWSLib), on 127.0.0.1."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import shapely

from review.judging import verdicts
from review.publishing.serve import ReviewProvider, config

from tests.conftest import REPO, add_detections

pytest.importorskip("pygeoapi")
Features = pytest.importorskip("owslib.ogcapi.features").Features


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(db_path, *extra):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "review", "serve", "--db", str(db_path),
                                "--port", str(port), *extra], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/conformance?f=json", timeout=2):
                return process, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    process.kill()
    pytest.fail("serve did not answer within 60 s")


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def reviewed(db):
    ids = add_detections(db, 10)
    verdicts.record(db, ids[0], "ana <b>", "verified", note="secret <script>alert(1)</script>", via="cli")
    verdicts.record(db, ids[1], "ben", "verified", via="cli")
    verdicts.record(db, ids[2], "ben", "false_positive", reason="riverbank", via="cli")
    verdicts.record(db, ids[3], "ana", "verified", via="cli")
    verdicts.undo(db, ids[3], "ana", via="cli")
    return db, ids


@pytest.fixture
def service(reviewed):
    db, ids = reviewed
    path = db.execute("pragma database_list").fetchone()[2]
    process, url = _start(path)
    yield db, ids, url
    _stop(process)


def _request(url, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=body,
                                     headers={"Content-Type": "application/geo+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _ids(items) -> set[int]:
    return {f["id"] for f in items["features"]}


def test_collections_counts_filters_and_live_verdicts(service):
    db, ids, url = service
    client = Features(url)
    listed = {c["id"] for c in client.collections()["collections"]}
    assert listed == {"verified", "detections"}            # no sites built in this database

    everything = client.collection_items("detections", limit=1000)
    assert everything["numberMatched"] == db["detections"].count == len(everything["features"])
    verified = client.collection_items("verified", limit=1000)
    in_db = {r[0] for r in db.execute("select id from detections where status = 'verified'")}
    assert _ids(verified) == in_db == {ids[0], ids[1]}
    feature = next(f for f in verified["features"] if f["id"] == ids[0])
    props = feature["properties"]
    assert props["status"] == "verified" and props["score"] == 0.3 and props["verdict_count"] == 1
    assert props["period_start"] == "2018-01-01" and props["last_verdict_at"]
    assert shapely.geometry.shape(feature["geometry"]).equals(
        shapely.from_geojson(db["detections"].get(ids[0])["geometry"]))
    # Reviewer names and notes are not published unless the service is told to.
    assert not {"last_reviewer", "last_note"} & set(props)
    assert "secret" not in json.dumps(everything) and "ana" not in json.dumps(everything)

    # bbox, status and datetime filters return what the database returns
    west, south, east, north = -56.985, -5.01, -56.935, -4.99
    in_box = {r[0] for r in db.execute("select id from detections where east >= ? and west <= ? "
                                       "and north >= ? and south <= ?", [west, east, south, north])}
    boxed = client.collection_items("detections", bbox=[west, south, east, north], limit=1000)
    assert _ids(boxed) == in_box and boxed["numberMatched"] == len(in_box) == 5
    pending = client.collection_items("detections", status="pending", limit=1000)
    assert _ids(pending) == {r[0] for r in db.execute(
        "select id from detections where status = 'pending'")}
    both = client.collection_items("detections", status="pending",
                                   bbox=[west, south, east, north], limit=1000)
    assert _ids(both) == _ids(pending) & in_box
    in_2019 = client.collection_items("detections", datetime_="2019-01-01/2019-12-31", limit=1000)
    assert _ids(in_2019) == {r[0] for r in db.execute(
        "select id from detections where period_start <= '2019-12-31' and period_end >= '2019-01-01'")}

    # paging: pages of 4 cover everything once, with a next link while more remain
    seen, offset = [], 0
    while True:
        page = client.collection_items("detections", limit=4, offset=offset)
        seen += [f["id"] for f in page["features"]]
        if "next" not in {link["rel"] for link in page["links"]}:
            break
        offset += 4
    assert sorted(seen) == sorted(ids)

    # a verdict recorded while the service runs shows up within 10 s, without a restart
    verdicts.record(db, ids[5], "cho", "verified", via="cli")
    deadline = time.monotonic() + 10
    while ids[5] not in _ids(client.collection_items("verified", limit=1000)):
        assert time.monotonic() < deadline, "the new verdict did not appear within 10 s"
        time.sleep(0.5)
    item = client.collection_item("detections", str(ids[5]))
    assert item["properties"]["status"] == "verified" and item["properties"]["verdict_count"] == 1


def test_writes_and_unknown_collections_are_refused(service):
    db, ids, url = service
    feature = json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
                          "properties": {"status": "verified"}}).encode()
    for method, path in (("POST", "/collections/detections/items"),
                         ("PUT", f"/collections/detections/items/{ids[4]}"),
                         ("DELETE", f"/collections/verified/items/{ids[0]}"),
                         ("PATCH", f"/collections/detections/items/{ids[4]}")):
        status, body = _request(url + path, method, None if method == "DELETE" else feature)
        assert status == 405, (method, status)
        assert json.loads(body)["code"] == "MethodNotAllowed"
    assert db["detections"].count == 10 and db["detections"].get(ids[4])["status"] == "pending"
    with pytest.raises(RuntimeError):
        Features(url).collection_item_create("detections", feature.decode())

    for path in ("/collections/nowhere?f=json", "/collections/nowhere/items?f=json",
                 "/collections/detections/items/999999?f=json"):
        status, body = _request(url + path)
        assert status == 404 and json.loads(body)["code"] == "NotFound"


def test_reviewer_names_only_when_asked(reviewed):
    db, ids = reviewed
    path = db.execute("pragma database_list").fetchone()[2]
    process, url = _start(path, "--publish-reviewers")
    try:
        item = Features(url).collection_item("detections", str(ids[0]))
        assert item["properties"]["last_reviewer"] == "ana <b>"
        assert item["properties"]["last_note"] == "secret <script>alert(1)</script>"
        status, page = _request(f"{url}/collections/detections/items/{ids[0]}?f=html")
        assert status == 200 and b"<script>alert(1)" not in page    # escaped in HTML
    finally:
        _stop(process)


def test_sites_collection_once_sites_are_built(db, tmp_path):
    from review.analysis import sites as site_groups

    path = db.execute("pragma database_list").fetchone()[2]
    add_detections(db, 4)                      # 0.01 degrees apart: four sites
    assert set(config(path)["resources"]) == {"verified", "detections"}
    site_groups.build(db)
    cfg = config(path)
    assert set(cfg["resources"]) == {"verified", "detections", "sites"}
    assert cfg["server"]["bind"] == {"host": "127.0.0.1", "port": 5000}
    sites = ReviewProvider(cfg["resources"]["sites"]["providers"][0])
    found = sites.query(bbox=[-57.001, -5.001, -56.985, -4.99])        # the first two
    assert found["numberMatched"] == 2
    assert {f["properties"]["detections"] for f in found["features"]} == {1}
    assert sites.query(bbox=[10, 10, 11, 11])["numberMatched"] == 0


def test_serve_binds_to_localhost_by_default():
    from review.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.publish_reviewers) == ("127.0.0.1", 5000, False)


def test_serve_on_a_busy_port_says_so(reviewed, tmp_path):
    db, _ = reviewed
    path = db.execute("pragma database_list").fetchone()[2]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "review", "serve", "--db", path, "--port", str(port)],
                              cwd=REPO, capture_output=True, text=True, timeout=60,
                              env={**os.environ})
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot listen on 127.0.0.1:")


def test_a_detection_waiting_for_a_blind_second_opinion_publishes_no_trace_of_the_first(db):
    """Served without --publish-reviewers, a waiting detection says neither who decided nor
    what (a false positive's reason would tell), and the raw bytes hold no name or note."""
    ids = add_detections(db, 3)
    verdicts.set_second_opinion(db, "all")
    verdicts.record(db, ids[0], "Anaximandra", "false_positive", reason="riverbank",
                    note="NOTE-XYZZY", via="cli")
    verdicts.record(db, ids[1], "ben", "false_positive", reason="cloud", via="cli")
    verdicts.record(db, ids[1], "cy", "false_positive", reason="cloud", via="cli")
    path = db.execute("pragma database_list").fetchone()[2]
    process, url = _start(path)
    try:
        waiting = Features(url).collection_item("detections", str(ids[0]))["properties"]
        settled = Features(url).collection_item("detections", str(ids[1]))["properties"]
        assert waiting["status"] == "needs_second_opinion" and waiting["last_reason"] is None
        assert settled["last_reason"] == "cloud"
        for address in (f"{url}/collections/detections/items?f=json&limit=100",
                        f"{url}/collections/detections/items?f=html&limit=100",
                        f"{url}/collections/detections/items/{ids[0]}?f=json"):
            status, body = _request(address)
            assert status == 200 and b"Anaximandra" not in body and b"NOTE-XYZZY" not in body
            assert b"riverbank" not in body
    finally:
        _stop(process)
