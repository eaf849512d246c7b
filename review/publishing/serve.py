"""A live, read-only OGC API - Features service on the review database (pygeoapi).

Collections: `verified` (detections people verified), `detections` (all, with their
status) and `sites` once sites have been built. Each feature carries status,
score, period, area, the time of the last verdict and the number of verdict records;
reviewer names and notes only when the service is started with `publish_reviewers`.

How new verdicts show up: pygeoapi loads the provider for every request, and
`ReviewProvider` opens the SQLite file read-only for each query and reads the
`detections` and `verdicts` tables directly (no copy, no derived table). SQLite in WAL
mode gives each read the last committed state, so a verdict recorded by the dashboard
or the CLI is in the next response, without a refresh thread or a restart.

The footprints are stored as GeoJSON text, so the provider turns them into geometry
itself (no SpatiaLite needed): bbox queries pick candidates by the stored
west/south/east/north columns in SQL, then keep those whose footprint intersects the
box (shapely).
"""
from __future__ import annotations

import json
import math
import sqlite3
import tempfile
from pathlib import Path

import shapely

from ..errors import ReviewError
from ..store import box_overlap, has_table

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
READ_METHODS = ("GET", "HEAD", "OPTIONS")

# Detections with what the service publishes about them. `last_verdict_at` and
# `verdict_count` cover every verdict record (undos included: each is a decision taken back).
# A detection waiting for a blind second opinion publishes no reason: it would tell the
# second reviewer what the first one decided.
_DETECTIONS_SQL = """
select d.id, d.source, d.external_id, d.status, d.score, d.threshold, d.model_id as model,
       d.period_start, d.period_end, d.area_ha, d.area_source,
       (select max(v.created_at) from verdicts v where v.detection_id = d.id) as last_verdict_at,
       (select count(*) from verdicts v where v.detection_id = d.id) as verdict_count,
       case when d.status = 'needs_second_opinion' then null else
       (select v.reason from verdicts v where v.detection_id = d.id
         order by v.id desc limit 1) end as last_reason,
       (select v.reviewer from verdicts v where v.detection_id = d.id
         order by v.id desc limit 1) as last_reviewer,
       (select v.note from verdicts v where v.detection_id = d.id
         order by v.id desc limit 1) as last_note,
       {reports} as field_reports,
       d.geometry, d.west, d.south, d.east, d.north
from detections d"""
PRIVATE = ("last_reviewer", "last_note")
HIDDEN = ("geometry", "west", "south", "east", "north")
_TYPES = {"id": "integer", "verdict_count": "integer", "field_reports": "integer",
          "score": "number", "threshold": "number", "area_ha": "number", "site_id": "integer"}


class ServeError(ReviewError):
    """The service cannot be started as asked."""


def _read_only_uri(path: str | Path) -> str:
    from urllib.parse import quote

    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


def _columns(conn: sqlite3.Connection, name: str) -> list[str]:
    return [row[1] for row in conn.execute(f'pragma table_info("{name}")')]


def source_sql(conn: sqlite3.Connection, collection: str) -> str:
    """The SELECT a collection is served from (every column a feature may carry)."""
    if collection in ("detections", "verified"):
        reports = ("(select count(*) from field_reports r where r.detection_id = d.id)"
                   if has_table(conn, "field_reports") else "0")
        sql = _DETECTIONS_SQL.format(reports=reports)
        return sql + " where d.status = 'verified'" if collection == "verified" else sql
    if collection == "sites":
        return 'select * from "sites"'
    raise ServeError(f"no collection named {collection!r}")


# ------------------------------------------------------------------ pygeoapi provider

try:
    from pygeoapi.provider.base import (BaseProvider, ProviderInvalidQueryError,
                                        ProviderItemNotFoundError)
except ImportError:          # pygeoapi is needed only to serve; the rest of review works without
    BaseProvider = object


class ReviewProvider(BaseProvider):
    """pygeoapi feature provider over the review database (read-only, live)."""

    def __init__(self, provider_def):
        super().__init__(provider_def)
        options = provider_def.get("options") or {}
        self.collection = provider_def["table"]
        self.publish_reviewers = bool(options.get("publish_reviewers"))
        self.get_fields()

    # -- plumbing
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(_read_only_uri(self.data), uri=True, timeout=30,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _source(self, conn) -> str:
        return f"({source_sql(conn, self.collection)}) as src"

    def _published(self, names) -> list[str]:
        private = () if self.publish_reviewers or self.collection == "sites" else PRIVATE
        return [n for n in names if n not in HIDDEN and n not in private]

    def get_fields(self):
        if not self._fields:
            conn = self._connect()
            try:
                cursor = conn.execute(f"select * from {self._source(conn)} limit 0")
                names = [d[0] for d in cursor.description]
            finally:
                conn.close()
            for name in self._published(names):
                self._fields[name] = {"type": _TYPES.get(name, "number" if name in ("lon", "lat")
                                                         else "string")}
        return self._fields

    # -- queries
    def _where(self, conn, properties, datetime_) -> tuple[list[str], list]:
        clauses, params = [], []
        for name, value in properties:
            if name not in self._fields:
                continue
            kind = self._fields[name]["type"]
            if kind in ("number", "integer"):
                try:
                    value = float(value)
                except ValueError as exc:
                    raise ProviderInvalidQueryError(f"{name} must be a number") from exc
            clauses.append(f'"{name}" = ?')
            params.append(value)
        names = set(self._fields)
        if datetime_ and {"period_start", "period_end"} <= names:
            start, _, end = str(datetime_).partition("/")
            if not _:
                end = start
            if start not in ("", ".."):
                clauses.append("coalesce(period_end, period_start) >= ?")
                params.append(start[:10])
            if end not in ("", ".."):
                clauses.append("coalesce(period_start, period_end) <= ?")
                params.append(end[:10])
        return clauses, params

    def _geometry(self, row: dict):
        text = row.get("geometry")
        if text:     # RFC 7946: exterior rings counter-clockwise
            return shapely.orient_polygons(shapely.from_geojson(text), exterior_cw=False)
        if row.get("lon") is not None and row.get("lat") is not None:
            return shapely.Point(row["lon"], row["lat"])
        return None

    def _feature(self, row: dict, skip_geometry=False, select=None) -> dict:
        geometry = None if skip_geometry else self._geometry(row)
        properties = {k: row[k] for k in self._fields
                      if k in row and (not select or k in select or k == self.id_field)}
        return {"type": "Feature", "id": row[self.id_field],
                "geometry": None if geometry is None else json.loads(shapely.to_geojson(geometry)),
                "properties": properties}

    def query(self, offset=0, limit=10, resulttype="results", bbox=[], datetime_=None,
              properties=[], sortby=[], select_properties=[], skip_geometry=False, q=None,
              filterq=None, **kwargs):
        if filterq is not None:
            raise ProviderInvalidQueryError("CQL filters are not supported; use property "
                                            "parameters such as status=verified")
        conn = self._connect()
        try:
            clauses, params = self._where(conn, properties, datetime_)
            order = ", ".join(f'"{s["property"]}" {"desc" if s["order"] == "-" else "asc"}'
                              for s in sortby if s["property"] in self._fields)
            order = order or f'"{self.id_field}"'
            where = " and ".join(clauses) or "1"
            source = self._source(conn)
            if bbox:
                ids = self._in_bbox(conn, source, where, params, order, bbox)
                matched = len(ids)
                page = ids[offset:offset + limit]
                rows = []
                for start in range(0, len(page), 500):
                    chunk = page[start:start + 500]
                    found = {r[self.id_field]: dict(r) for r in conn.execute(
                        f'select * from {source} where "{self.id_field}" in '
                        f'({", ".join("?" * len(chunk))})', chunk)}
                    rows += [found[i] for i in chunk if i in found]
            else:
                matched = conn.execute(f"select count(*) from {source} where {where}",
                                       params).fetchone()[0]
                rows = [] if resulttype == "hits" else [dict(r) for r in conn.execute(
                    f"select * from {source} where {where} order by {order} limit ? offset ?",
                    [*params, limit, offset])]
        finally:
            conn.close()
        features = [] if resulttype == "hits" else [
            self._feature(r, skip_geometry, select_properties) for r in rows]
        return {"type": "FeatureCollection", "features": features,
                "numberMatched": matched, "numberReturned": len(features)}

    def _in_bbox(self, conn, source, where, params, order, bbox) -> list:
        west, south, east, north = (float(v) for v in bbox[:4])
        box = shapely.box(west, south, east, north)
        names = set(_columns_of(conn, source))
        sql, extra = f"select * from {source} where {where}", []
        if {"west", "south", "east", "north"} <= names:
            overlap, extra = box_overlap(west, south, east, north)
            sql += f" and {overlap}"
        ids = []
        for row in conn.execute(f"{sql} order by {order}", [*params, *extra]):
            geometry = self._geometry(dict(row))
            if geometry is not None and geometry.intersects(box):
                ids.append(row[self.id_field])
        return ids

    def get(self, identifier, **kwargs):
        if str(identifier).isdigit():
            identifier = int(identifier)
        conn = self._connect()
        try:
            row = conn.execute(f'select * from {self._source(conn)} where "{self.id_field}" = ?',
                               [identifier]).fetchone()
        finally:
            conn.close()
        if row is None:
            raise ProviderItemNotFoundError(f"no item {identifier} in {self.collection}")
        return self._feature(dict(row))

    def __repr__(self):
        return f"<ReviewProvider> {self.data} {self.collection}"


def _columns_of(conn, source: str) -> list[str]:
    return [d[0] for d in conn.execute(f"select * from {source} limit 0").description]


# ------------------------------------------------------------------ configuration


def _extent(conn) -> list[float]:
    row = conn.execute("select min(west), min(south), max(east), max(north) from detections").fetchone()
    if row is None or any(v is None or not math.isfinite(v) for v in row):
        return [-180.0, -90.0, 180.0, 90.0]
    return [float(v) for v in row]


def _sites_servable(conn) -> bool:
    """Sites are offered once they have been built (`python -m review sites build`)."""
    if not has_table(conn, "sites"):
        return False
    names = set(_columns(conn, "sites"))
    return ("id" in names and ("geometry" in names or {"lon", "lat"} <= names)
            and conn.execute('select 1 from "sites" limit 1').fetchone() is not None)


def collections(db_path: str | Path) -> list[str]:
    """The collections the service offers on this database."""
    conn = sqlite3.connect(_read_only_uri(db_path), uri=True)
    try:
        return ["verified", "detections"] + (["sites"] if _sites_servable(conn) else [])
    finally:
        conn.close()


def config(db_path: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           publish_reviewers: bool = False, url: str | None = None) -> dict:
    """The pygeoapi configuration for a review database."""
    db_path = Path(db_path).resolve()
    conn = sqlite3.connect(_read_only_uri(db_path), uri=True)
    try:
        extent = _extent(conn)
    finally:
        conn.close()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = url or f"http://{shown_host}:{port}"
    titles = {
        "verified": ("Verified mining detections",
                     "Detections a person checked and verified as mining."),
        "detections": ("All mining detections",
                       "Every detection with its review status (pending, verified, "
                       "false_positive, unsure)."),
        "sites": ("Sites", "Sites tracked in the review database."),
    }
    resources = {}
    for name in collections(db_path):
        title, description = titles[name]
        provider = {"type": "feature", "name": "review.publishing.serve.ReviewProvider", "data": str(db_path),
                    "table": name, "id_field": "id",
                    "options": {"publish_reviewers": publish_reviewers}}
        if name != "sites":
            provider["time_field"] = "period_start"
        resources[name] = {
            "type": "collection", "title": title, "description": description,
            "keywords": ["mining", "review"],
            "links": [],
            "extents": {"spatial": {"bbox": extent,
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [provider],
        }
    return {
        "server": {
            "bind": {"host": host, "port": port}, "url": url,
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
            "languages": ["en-US"], "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "OpenStreetMap contributors"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "Mining review", "description":
                               "Illegal-mining detections and what people decided about them.",
                               "keywords": ["mining"], "keywords_type": "theme",
                               "terms_of_service": "", "url": url},
            "license": {"name": "see the data's sources", "url": url},
            "provider": {"name": "Mining review", "url": url},
            "contact": {"name": "Mining review", "url": url, "role": "pointOfContact"},
        },
        "resources": resources,
    }


def app(db_path: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        publish_reviewers: bool = False, workdir: str | Path | None = None,
        url: str | None = None):
    """The Flask app of the service (pygeoapi), refusing every write with 405.

    pygeoapi reads its configuration and OpenAPI document from files named by environment
    variables when its Flask module is first imported, so this can build one app per process.
    """
    import os
    import sys

    import yaml

    try:
        from pygeoapi.openapi import get_oas
    except ImportError as exc:
        raise ServeError("serving needs pygeoapi: install requirements.txt") from exc
    db_path = Path(db_path)
    if not db_path.exists():
        raise ServeError(f"{db_path}: no review database there")
    if "pygeoapi.flask_app" in sys.modules:
        raise ServeError("the service is already set up in this process")
    cfg = config(db_path, host, port, publish_reviewers, url=url)
    folder = Path(workdir or tempfile.mkdtemp(prefix="review-serve-"))
    config_path, openapi_path = folder / "pygeoapi-config.yml", folder / "openapi.yml"
    config_path.write_text(yaml.safe_dump(cfg))
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    openapi_path.write_text(yaml.safe_dump(json.loads(json.dumps(get_oas(cfg), default=str))))
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)

    from flask import request as flask_request
    from pygeoapi import util

    # pygeoapi's HTML pages embed each item as JSON inside <script> (`to_json | safe`): a
    # note containing "</script>" would end that block. Escaping <, > and & as \u003c...
    # keeps the JSON identical and the page inert.
    plain_json = util.to_json

    def script_safe_json(dict_, pretty=False):
        return (plain_json(dict_, pretty).replace("<", "\\u003c").replace(">", "\\u003e")
                .replace("&", "\\u0026"))

    util.to_json = script_safe_json
    from pygeoapi.flask_app import APP

    @APP.before_request
    def _read_only():
        if flask_request.method not in READ_METHODS:
            body = {"code": "MethodNotAllowed", "type": "MethodNotAllowed",
                    "description": f"this service is read-only: {flask_request.method} is not allowed"}
            return APP.response_class(json.dumps(body), status=405, mimetype="application/json",
                                      headers={"Allow": ", ".join(READ_METHODS)})
        return None

    return APP


def _check_port(host: str, port: int) -> None:
    """Refuse early, in one sentence, a port another program holds or a host that is not ours
    (werkzeug would print its own advice and exit)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                         f"is another program using that port?") from exc


def serve(db_path: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          publish_reviewers: bool = False, ready=None, url: str | None = None) -> None:
    """Run the service until interrupted. `ready(url)` is called once it listens. `url` is
    the address clients use, for the links in responses (default http://host:port)."""
    import signal

    from werkzeug.serving import make_server

    _check_port(host, port)
    # Stopped by SIGTERM as by Ctrl-C: the configuration folder is removed either way.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with tempfile.TemporaryDirectory(prefix="review-serve-") as folder:
        application = app(db_path, host, port, publish_reviewers, workdir=folder, url=url)
        server = make_server(host, port, application, threaded=True)
        if ready is not None:
            ready(url or f"http://{host}:{server.server_port}")
        try:
            server.serve_forever()
        finally:
            server.server_close()
