"""Servers the review-imagery tests share, on 127.0.0.1: Esri Wayback's configuration and
tiles, and a STAC API serving a real change pair as L2A scenes."""
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import shapely
from PIL import Image

from tests.conftest import FIXTURES
from tests.stac_server import pair_as_l2a_server

PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"
SITE = shapely.box(-56.2497, -6.7720, -56.2481, -6.7704)      # inside the mining_1003 pair
ELSEWHERE = shapely.box(10.0, 10.0, 10.002, 10.002)           # no imagery anywhere


def detections_file(tmp_path, period="2021-01-01_2021-12-31"):
    path = tmp_path / f"sites_{period}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pred": score}, "geometry": json.loads(shapely.to_geojson(g))}
        for g, score in ((SITE, 0.93), (ELSEWHERE, 0.91))]}))
    return path
COLOURS = {"11": (200, 30, 30), "22": (30, 200, 30), "33": (30, 30, 200)}
DATES = {"11": "2019-05-02", "22": "2020-11-18", "33": "2024-03-14"}


@pytest.fixture
def wayback_server(monkeypatch):
    """Wayback's configuration file and solid-colour tiles per release, on 127.0.0.1."""
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            base = holder["url"]
            if self.path == "/config.json":
                body = json.dumps({key: {"itemTitle": f"World Imagery (Wayback {DATES[key]})",
                                         "itemURL": f"{base}tiles/{key}/{{level}}/{{row}}/{{col}}.png"}
                                   for key in DATES}).encode()
                kind = "application/json"
            elif self.path.startswith("/tiles/"):
                release = self.path.split("/")[2]
                buffer = io.BytesIO()
                Image.new("RGB", (256, 256), COLOURS[release]).save(buffer, format="PNG")
                body, kind = buffer.getvalue(), "image/png"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["url"] = f"http://127.0.0.1:{server.server_address[1]}/"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REVIEW_WAYBACK_CONFIG_URL", holder["url"] + "config.json")
    yield holder["url"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def stac(tmp_path, monkeypatch):
    """A STAC API on 127.0.0.1 with the real mining_1003 pair (2020 and 2021) as L2A scenes."""
    server = pair_as_l2a_server(PAIRS, tmp_path / "files")
    monkeypatch.setenv("REVIEW_STAC_URL", server.url)
    monkeypatch.setenv("REVIEW_TILE_CACHE", str(tmp_path / "tiles"))
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes,sentinel-2")
    yield server
    server.stop()
