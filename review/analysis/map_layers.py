"""What the Map page draws: every detection that matches the filters, ready for deck.gl.

Hundreds of thousands of footprints have to reach the browser quickly, so the data are
prepared here, in bulk, and written straight to JSON text:

- one layer per status, drawn pending first and verified last, so reviewed detections lie
  above the pending ones;
- footprints simplified for the screen (a few metres) and rounded to 1e-5 degrees (about
  1 m), multipolygons split into their parts; the outline keeps a minimum width in pixels,
  so a footprint far smaller than a pixel still shows as a dot when the whole map is in view;
- each row carries only the detection id (`i`, what a click returns) and a one-line text
  for the tooltip (`t`).

`deck_json` turns a MapData into the deck.gl JSON that `st.pydeck_chart` sends; the page
only shows it.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from ..judging import verdicts
from ..judging.queue import Filters

# Drawn in this order: later layers lie on top.
DRAW_ORDER = ("pending", "false_positive", "unsure", "needs_second_opinion", "disputed", "verified")
STATUS_COLOURS = {
    "pending": (150, 150, 150),
    "false_positive": (43, 131, 186),
    "unsure": (253, 174, 97),
    "needs_second_opinion": (171, 82, 185),
    "disputed": (118, 42, 131),
    "verified": (215, 48, 31),
}
STATUS_LABELS = {"pending": "pending", "false_positive": "false positive", "unsure": "unsure",
                 "needs_second_opinion": "needs a second opinion", "disputed": "disputed",
                 "verified": "verified"}
SIMPLIFY_DEGREES = 0.00003      # about 3 m: finer than any screen shows a mining footprint
GRID_DEGREES = 1e-5             # about 1 m
LAYER_PREFIX = "status-"
# Footprints of every matching detection are sent up to this many; beyond it, a dot each
# (and the footprints of the reviewed ones). Measured: bench/map_browser.py.
FOOTPRINT_LIMIT = 20_000


def hex_colour(status: str) -> str:
    return "#%02x%02x%02x" % STATUS_COLOURS.get(status, (0, 0, 0))


@dataclass
class StatusLayer:
    status: str
    detections: int
    dots_json: str              # a JSON array of {"i": id, "t": text, "c": [lon, lat]}
    footprints_json: str | None  # a JSON array of {"i": id, "t": text, "p": rings}, or None
    footprints: int = 0         # detections whose footprints are in footprints_json

    @property
    def layer_id(self) -> str:
        return LAYER_PREFIX + self.status


@dataclass
class MapData:
    layers: list[StatusLayer] = field(default_factory=list)
    bounds: tuple[float, float, float, float] | None = None    # west, south, east, north
    footprint_limit: int = 0

    @property
    def detections(self) -> int:
        return sum(layer.detections for layer in self.layers)

    @property
    def footprints(self) -> int:
        return sum(layer.footprints for layer in self.layers)

    def counts(self) -> dict[str, int]:
        return {layer.status: layer.detections for layer in self.layers}


def _rings_json(polygons: np.ndarray) -> list[str]:
    """Each polygon's rings as JSON text ([[[x, y], ...], [hole...]]), from rounded WKT."""
    if len(polygons) == 0:
        return []
    texts = shapely.to_wkt(polygons, rounding_precision=5, trim=True)
    joined = "\n".join(texts)
    # POLYGON ((x y, x y), (x y, ...)) -> [[[x,y],[x,y]],[[x,y],...]]
    joined = (joined.replace("POLYGON ", "").replace("), (", "]],[[").replace("((", "[[[")
              .replace("))", "]]]").replace(", ", "],[").replace(" ", ","))
    return joined.split("\n")


def tooltip_text(source: str, status: str, score: float | None, period: str | None,
                 last: tuple | None = None) -> str:
    """One line about a detection, for the map's tooltip (shown as text, never as HTML)."""
    parts = [STATUS_LABELS.get(status, status), source]
    if score is not None:
        parts.append(f"score {score:.2f}")
    if period:
        parts.append(period[:4] if period.endswith("-01-01") else period)
    if last:
        reviewer, verdict, note = last
        parts.append(f"last: {verdict.replace('_', ' ')} by {reviewer}" + (f" ({note})" if note else ""))
    return " · ".join(parts)


def map_data(db, filters: Filters | None = None, footprint_limit: int = FOOTPRINT_LIMIT) -> MapData:
    """Every detection matching the filters, grouped by status in drawing order: a dot for
    each, and its footprint too when no more than footprint_limit detections match (the
    reviewed ones' footprints always)."""
    filters = filters or Filters(status=None)
    where, params = filters.where()
    cursor = db.execute(f"select id, source, status, score, period_start, geometry, west, south, "
                        f"east, north, lon, lat from detections where {where}", params)
    records = cursor.fetchall()
    if not records:
        return MapData(footprint_limit=footprint_limit)
    geometry = None
    if filters.area is not None:
        geometry = shapely.from_geojson([r[5] for r in records])
        keep = shapely.intersects(geometry, filters.area)
        records = [r for r, k in zip(records, keep) if k]
        geometry = geometry[keep]
        if not records:
            return MapData(footprint_limit=footprint_limit)
    box = np.array([r[6:10] for r in records], dtype=float)
    bounds = (float(box[:, 0].min()), float(box[:, 1].min()), float(box[:, 2].max()),
              float(box[:, 3].max()))
    statuses = np.array([r[2] for r in records], dtype=object)
    all_footprints = len(records) <= footprint_limit
    with_footprint = np.ones(len(records), bool) if all_footprints else statuses != "pending"
    chosen = np.flatnonzero(with_footprint)
    if geometry is None:
        geometry = shapely.from_geojson([records[k][5] for k in chosen])
    else:
        geometry = geometry[chosen]
    display = shapely.simplify(geometry, SIMPLIFY_DEGREES, preserve_topology=True)
    parts, owner = shapely.get_parts(display, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    parts, owner = parts[polygonal], chosen[owner[polygonal]]
    rings = _rings_json(parts)
    last = verdicts.latest(db)
    # Blind second opinions: the map is the same for everyone, so nobody's tooltip says who
    # decided what on a detection still waiting for its second look.
    texts = [json.dumps(tooltip_text(r[1], r[2], r[3], r[4],
                                     None if r[2] == "needs_second_opinion" else last.get(r[0])),
                        ensure_ascii=False)
             for r in records]
    ids = [r[0] for r in records]
    part_status = statuses[owner]
    layers = []
    for status in list(DRAW_ORDER) + sorted(set(statuses) - set(DRAW_ORDER)):
        mine = np.flatnonzero(statuses == status)
        if len(mine) == 0:
            continue
        dots = ",".join('{"i":%d,"t":%s,"c":[%.5f,%.5f]}' % (ids[k], texts[k], records[k][10],
                                                               records[k][11]) for k in mine)
        shapes = np.flatnonzero(part_status == status)
        footprints = ",".join('{"i":%d,"t":%s,"p":%s}' % (ids[owner[k]], texts[owner[k]], rings[k])
                              for k in shapes)
        layers.append(StatusLayer(status, len(mine), "[" + dots + "]",
                                  "[" + footprints + "]" if len(shapes) else None,
                                  int(with_footprint[mine].sum())))
    return MapData(layers, bounds, footprint_limit)


def view_state(bounds: tuple[float, float, float, float] | None, width_px: int = 900,
               height_px: int = 560) -> dict:
    """A deck.gl view (centre and zoom) that shows these bounds whole."""
    if bounds is None:
        return {"longitude": -60.0, "latitude": -5.0, "zoom": 3}
    west, south, east, north = bounds
    lon = (west + east) / 2
    lat = (south + north) / 2

    def mercator_y(latitude: float) -> float:
        latitude = max(min(latitude, 85.0), -85.0)
        return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))

    span_x = max(east - west, 1e-4) / 360
    span_y = max(mercator_y(north) - mercator_y(south), 1e-6) / (2 * math.pi)
    zoom = min(math.log2(width_px / 512 / span_x), math.log2(height_px / 512 / span_y)) - 0.2
    centre_y = (mercator_y(north) + mercator_y(south)) / 2
    lat = math.degrees(2 * math.atan(math.exp(centre_y)) - math.pi / 2)
    return {"longitude": lon, "latitude": lat, "zoom": max(0.0, min(zoom, 17.0))}


def raster_style(tile_url: str, attribution: str = "") -> str:
    """A MapLibre style for one XYZ raster basemap, as a data: URL (the map's own code is
    served by the app; only the tiles come from the basemap's server)."""
    style = {"version": 8,
             "sources": {"basemap": {"type": "raster", "tiles": [tile_url], "tileSize": 256,
                                     "attribution": attribution, "maxzoom": 19}},
             "layers": [{"id": "background", "type": "background",
                         "paint": {"background-color": "#e8e8e8"}},
                        {"id": "basemap", "type": "raster", "source": "basemap"}]}
    return "data:application/json;base64," + base64.b64encode(json.dumps(style).encode()).decode()


def deck_json(data: MapData, map_style: str | None = None, width_px: int = 900,
              height_px: int = 560, tooltip: bool = True) -> str:
    """The deck.gl JSON for these layers: filled, outlined polygons, pickable."""
    footprints, dots = [], []
    for layer in data.layers:
        red, green, blue = STATUS_COLOURS.get(layer.status, (0, 0, 0))
        if layer.footprints_json:
            spec = {"@@type": "SolidPolygonLayer", "id": layer.layer_id + "-footprints",
                    "data": "__ROWS__", "getPolygon": "@@=p", "getFillColor": [red, green, blue, 120],
                    "pickable": True, "autoHighlight": True, "highlightColor": [255, 255, 0, 160]}
            footprints.append(json.dumps(spec).replace('"__ROWS__"', layer.footprints_json))
        spec = {"@@type": "ScatterplotLayer", "id": layer.layer_id, "data": "__ROWS__",
                "getPosition": "@@=c", "getFillColor": [red, green, blue, 255], "getRadius": 60,
                "radiusUnits": "meters", "radiusMinPixels": 2.5, "radiusMaxPixels": 4,
                "stroked": False, "pickable": True, "autoHighlight": True,
                "highlightColor": [255, 255, 0, 255]}
        dots.append(json.dumps(spec).replace('"__ROWS__"', layer.dots_json))
    layers = footprints + dots          # every footprint under every dot
    deck = {"initialViewState": {**view_state(data.bounds, width_px, height_px), "pitch": 0,
                                 "bearing": 0},
            "views": [{"@@type": "MapView", "controller": True}],
            "mapStyle": map_style, "layers": "__LAYERS__"}
    return json.dumps(deck).replace('"__LAYERS__"', "[" + ",".join(layers) + "]")


def chosen_detection(selection) -> int | None:
    """The detection id a map click selected (Streamlit's pydeck selection state)."""
    if not selection:
        return None
    objects = (selection.get("selection") or {}).get("objects") or {}
    for layer_id, picked in objects.items():
        if str(layer_id).startswith(LAYER_PREFIX) and picked:
            ident = picked[0].get("i") if isinstance(picked[0], dict) else None
            if isinstance(ident, (int, float)):
                return int(ident)
    return None
