"""Everything Streamlit: pages call one function here each. The only module that imports streamlit.

Domain errors (ReviewError) raised in review/ become st.error messages here; nothing
else is caught, so real bugs still show their cause.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from . import settings, store
from .progress import fraction, silent
from .errors import ReviewError


def _setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Mining review", page_icon="⛏", layout="wide")


def _db():
    return store.connect(settings.db_path())


def _page(title: str, heading: bool = True):
    """Set the page up and open the database; None (with the reason shown) if it cannot be."""
    _setup(title)
    if heading:
        st.title(title)
    try:
        return _db()
    except ReviewError as exc:
        st.error(str(exc))
        return None


@st.cache_resource(show_spinner=False)
def _device() -> str:
    from .models import device_description

    return device_description()


@st.cache_resource(show_spinner="Loading model…")
def _model(spec: str):
    from .models import load_model

    return load_model(spec, progress=silent)


# --------------------------------------------------------------------------- home


def home_page() -> None:
    db = _page("Home", heading=False)
    st.title("Mining review")
    st.caption("Find illegal mining in satellite imagery, and confirm it by eye before anyone relies on it.")
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    if db is None:
        return
    counts = {table: db[table].count for table in ("scenes", "runs", "detections", "verdicts")}
    columns = st.columns(4)
    labels = {"scenes": "Scenes", "runs": "Detector runs", "detections": "Detections",
              "verdicts": "Verdicts"}
    for column, (table, count) in zip(columns, counts.items()):
        column.metric(labels[table], f"{count:,}")
    st.subheader("What to do next")
    if not counts["detections"]:
        st.info("The database is empty. Load a published example to try the review loop, "
                "import detections with `python -m review import FILE`, or open **Detect** to "
                "run a detector over a GeoTIFF tile.")
        st.caption(f"Example: {settings.example_url()}")
        if st.button("Load the example detections", type="primary"):
            _load_example(db)
    else:
        pending = db.execute("select count(*) from detections where status = 'pending'").fetchone()[0]
        if pending:
            st.info(f"{pending:,} detections wait for a verdict: open **Review**.")
        else:
            st.success("Every detection has a verdict.")
        by_source = pd.DataFrame(db.execute(
            "select source, status, count(*) from detections group by source, status").fetchall(),
            columns=["source", "status", "n"])
        table = by_source.pivot_table(index="source", columns="status", values="n",
                                      aggfunc="sum", fill_value=0)
        table["total"] = table.sum(axis=1)
        st.subheader("Detections by source and status")
        st.dataframe(table.sort_values("total", ascending=False))
    _import_section(db)
    st.caption(f"Database: {settings.db_path()} · detector device: {_device()}")


def _import_section(db) -> None:
    from .importers import FieldMap, import_file

    with st.expander("Import detections from a file"):
        upload = st.file_uploader("GeoJSON, GeoPackage, zipped shapefile or lat/lon CSV",
                                  type=["geojson", "json", "gpkg", "zip", "csv", "fgb"], key="import_file")
        source = st.text_input("Source name (default: the file name)", key="import_source")
        columns = st.columns(3)
        score = columns[0].text_input("Score field (if not pred/mean/confidence)", key="import_score")
        period = columns[1].text_input("Date or period field", key="import_period")
        ident = columns[2].text_input("Id field", key="import_id")
        if not st.button("Import", key="import_button"):
            return
        if upload is None:
            st.error("Choose a file to import.")
            return
        folder = settings.data_dir() / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        bar = st.progress(0.0, text="Importing…")
        try:
            report = import_file(db, path, source=source or None,
                                 fields=FieldMap(score=score or None, period=period or None,
                                                 id=ident or None),
                                 progress=lambda done, total, what: bar.progress(
                                     fraction(done, total), text=f"Imported {done:,} of {total:,}"))
        except ReviewError as exc:
            st.error(str(exc))
            return
        st.session_state["flash"] = report.summary()
        st.rerun()


# ------------------------------------------------------------------------- detect


def _save_upload(upload) -> Path:
    """Keep uploaded tiles under data/scenes, named by content, so reviews can reopen them."""
    content = upload.getvalue()
    digest = hashlib.sha256(content).hexdigest()[:16]
    folder = settings.data_dir() / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}_{Path(upload.name).name}"
    if not path.exists():
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(content)
        partial.replace(path)
    return path


def detect_page() -> None:
    from .models import CARDS, DEFAULT_MODEL

    _setup("Detect")
    st.title("Detect")
    st.caption("Run a published mining detector over a Sentinel-2 tile and send its candidates to review.")
    upload = st.file_uploader("GeoTIFF tile (Sentinel-2 L1C digital numbers)", type=["tif", "tiff"])
    typed_path = st.text_input("…or the path of a tile on this machine", key="tile_path")
    try:
        stored = {f"{s['name']} ({s['period_start'] or '?'} to {s['period_end'] or '?'})": s["path"]
                  for s in _db()["scenes"].rows_where(order_by="id desc") if Path(s["path"]).is_file()}
    except ReviewError:
        stored = {}
    picked = st.selectbox("…or a stored scene", ["(none)", *stored], key="stored_scene")
    area = _area_picker()
    before_upload = st.file_uploader(
        "Optional: an earlier tile of the same place, shown as the 'before' view in Review",
        type=["tif", "tiff"], key="before_upload")
    ids = list(CARDS)
    model_id = st.selectbox("Model", ids + ["A file on this machine"], index=ids.index(DEFAULT_MODEL),
                            format_func=lambda i: f"{i}: {CARDS[i].description}" if i in CARDS else i)
    model_spec = model_id
    if model_id not in CARDS:
        model_spec = st.text_input("Path of a .h5 or .keras model (with a JSON card beside it)",
                                   key="model_path")
    with st.expander("Bands, period and thresholds"):
        bands = st.text_input("Band names in file order (only if the file does not name them)",
                              placeholder="B2,B3,B4,B8,-,-", key="bands")
        start = st.text_input("Period start (YYYY-MM-DD, if the file does not say)", key="start")
        end = st.text_input("Period end", key="end")
        card = CARDS.get(model_id)
        t_main = st.number_input("Main threshold", 0.0, 1.0, card.t_main if card else 0.5, 0.01)
        t_iso = st.number_input("Threshold for isolated patches", 0.0, 1.0,
                                card.t_iso if card else 0.8, 0.01)
    if not st.button("Run detector", type="primary"):
        return
    if not model_spec:
        st.error("Give the path of the model file.")
        return
    source = (_save_upload(upload) if upload is not None
              else typed_path.strip() or stored.get(picked))
    if not source and area is not None:
        source = _fetch_area(area, model_spec)
        if source is None:
            return
    if not source:
        st.error("Upload a GeoTIFF, give the path of one, pick a stored scene, or fetch an area.")
        return
    if before_upload is not None and not _store_before(before_upload, bands or None):
        return
    _run_and_show(source, model_spec, bands or None, (start or None, end or None), t_main, t_iso)


def _area_picker():
    """An area and period to fetch: typed as W,S,E,N or drawn as a rectangle on the map."""
    import datetime as dt

    with st.expander("…or fetch Sentinel-2 for an area and period"):
        typed = st.text_input("Area W,S,E,N in degrees (or draw a rectangle below)", key="area_bbox")
        columns = st.columns(2)
        start = columns[0].date_input("From", dt.date(dt.date.today().year - 1, 1, 1), key="area_start")
        end = columns[1].date_input("To", dt.date(dt.date.today().year - 1, 12, 31), key="area_end")
        drawn = _draw_map()
    bbox_text = typed.strip() or drawn
    if not bbox_text:
        return None
    return bbox_text, start.isoformat(), end.isoformat()


def _draw_map() -> str | None:
    import folium
    from folium.plugins import Draw
    from streamlit_folium import st_folium

    fmap = folium.Map(location=[0, -55], zoom_start=3, tiles=None)
    folium.TileLayer(settings.basemap_url(), attr=settings.basemap_name()).add_to(fmap)
    Draw(draw_options={"polyline": False, "polygon": False, "circle": False, "marker": False,
                       "circlemarker": False, "rectangle": True}, edit_options={"edit": False}).add_to(fmap)
    result = st_folium(fmap, height=320, use_container_width=True, key="area_map",
                       returned_objects=["last_active_drawing"]) or {}
    drawing = result.get("last_active_drawing")
    if not drawing:
        return None
    import shapely

    west, south, east, north = shapely.geometry.shape(drawing["geometry"]).bounds
    return f"{west:.5f},{south:.5f},{east:.5f},{north:.5f}"


def _fetch_area(area, model_spec) -> Path | None:
    from .fetch import ALL_BANDS, Request, Source, composite, parse_bbox

    bbox_text, start, end = area
    try:
        request = Request(bbox=parse_bbox(bbox_text), start=start, end=end)
        limit = settings.fetch_max_km2()
        if request.area_km2() > limit:
            st.error(f"The area is {request.area_km2():,.0f} km², more than the dashboard fetches "
                     f"at once ({limit:,.0f} km²). Use the command line: python -m review detect "
                     f"--bbox={bbox_text} --start {start} --end {end}")
            return None
        model = _model(model_spec)
        request.bands = tuple(b for b in ALL_BANDS if b in model.card.bands)
        bar = st.progress(0.0, text="Searching the catalogue…")
        return composite(Source(), request, progress=lambda done, total, what: bar.progress(
            fraction(done, total), text=f"Fetched {done} of {total} windows ({what})"))
    except ReviewError as exc:
        st.error(str(exc))
        return None


def _store_before(upload, bands) -> bool:
    """Register the 'before' tile as a scene; its period comes from its tags."""
    from .imagery import open_tile
    from .runs import scene_record

    try:
        tile = open_tile(_save_upload(upload), bands=bands)
        store.add_scene(_db(), scene_record(tile))
    except ReviewError as exc:
        st.error(f"Before tile: {exc}")
        return False
    if not tile.period_start:
        st.warning(f"{tile.name} has no period in its tags; Review cannot tell it is the earlier view.")
    return True


def _run_and_show(source, model_spec, bands, period, t_main, t_iso) -> None:
    from .candidates import to_lonlat_geojson
    from .detect import check_compatible
    from .imagery import open_tile
    from .runs import product_mismatch, run_detection, store_result

    try:
        tile = open_tile(source, bands=bands, period=period)
        model = _model(model_spec)
        check_compatible(tile, model.card)
        bar = st.progress(0.0, text="Scoring patches…")
        result = run_detection(tile, model, t_main=t_main, t_iso=t_iso,
                               progress=lambda done, total, what: bar.progress(
                                   fraction(done, total), text=f"Scored {done:,} of {total:,} patches"))
        run_id = store_result(_db(), result)
    except ReviewError as exc:
        st.error(str(exc))
        return
    bar.progress(1.0, text="Done")
    st.success(f"Run {run_id}: {result.summary()}")
    if tile.warped:
        st.info(f"The tile was in {tile.source_crs} and was warped to {tile.crs} at 10 m.")
    mismatch = product_mismatch(tile, model.card)
    if mismatch:
        st.warning(mismatch[0].upper() + mismatch[1:] + ".")
    if not result.candidates:
        st.info("No candidates above the thresholds.")
        return
    table = pd.DataFrame([{"candidate": n, "score": round(c.score, 3), "max score": round(c.score_max, 3),
                           "patches": c.patches, "area (ha)": round(c.area_ha, 2)}
                          for n, c in enumerate(result.candidates, start=1)])
    st.dataframe(table, hide_index=True)
    _candidate_map([to_lonlat_geojson(c.geometry, tile.crs) for c in result.candidates],
                   tile.lonlat_bounds())


def _candidate_map(geometries: list[dict], bounds) -> None:
    import folium
    from streamlit_folium import st_folium

    west, south, east, north = bounds
    fmap = folium.Map(tiles="OpenStreetMap")
    fmap.fit_bounds([[south, west], [north, east]])
    folium.Rectangle([[south, west], [north, east]], color="#555", fill=False, tooltip="tile").add_to(fmap)
    for number, geometry in enumerate(geometries, start=1):
        folium.GeoJson(geometry, tooltip=f"candidate {number}",
                       style_function=lambda _: {"color": "#d7301f", "weight": 2}).add_to(fmap)
    st_folium(fmap, height=420, use_container_width=True, returned_objects=[])


# ------------------------------------------------------------------------ example


def _load_example(db) -> None:
    from .downloads import fetch
    from .importers import import_file

    url = settings.example_url()
    name = url.rstrip("/").rsplit("/", 1)[-1] or "example.geojson"
    bar = st.progress(0.0, text=f"Downloading {name}…")

    def progress(done, total, what):
        bar.progress(fraction(done, total), text=f"Downloading {name}: {done:,} bytes")

    try:
        path = fetch(url, settings.data_dir() / "examples" / name, progress=progress)
        report = import_file(db, path, source="example: " + Path(name).stem,
                             progress=lambda done, total, what: bar.progress(fraction(done, total), text="Importing…"))
    except ReviewError as exc:
        st.error(str(exc))
        return
    st.session_state["flash"] = report.summary()
    st.rerun()


# ------------------------------------------------------------------------- review



def _all_sources(db) -> list[str]:
    return [r[0] for r in db.execute("select distinct source from detections order by source")]


def _aoi(upload):
    """An uploaded area of interest (GeoJSON polygons) as one lon/lat geometry."""
    import shapely

    regions = _regions_from_upload(upload)
    return None if regions is None else shapely.union_all([geometry for _, geometry in regions])


def _filters_sidebar(db, with_status: bool = False, default_status: str = "all"):
    from .queue import Filters
    from .verdicts import STATUSES

    with st.sidebar:
        sources = st.multiselect("Sources", _all_sources(db), key="f_sources")
        low, high = st.slider("Score", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_score")
        period_from = st.text_input("Period from (YYYY-MM-DD)", key="f_from")
        period_to = st.text_input("Period to (YYYY-MM-DD)", key="f_to")
        status = None
        if with_status:
            options = ["all", *STATUSES]
            status = st.selectbox("Status", options, index=options.index(default_status), key="f_status")
        upload = st.file_uploader("Area of interest (GeoJSON)", type=["geojson", "json"], key="f_aoi")
        samples = {s["id"]: s["name"] for s in db["samples"].rows}
        sample_id = None
        if samples:
            sample_id = st.selectbox("Only a random sample", [None, *samples], key="f_sample",
                                     format_func=lambda i: "(all detections)" if i is None
                                     else f"{i}: {samples[i]}")
    try:
        area = _aoi(upload)
    except ReviewError as exc:
        st.sidebar.error(str(exc))
        area = None
    return Filters(sources=sources, score_min=low if low > 0 else None,
                   score_max=high if high < 1 else None, period_from=period_from or None,
                   period_to=period_to or None, area=area, sample_id=sample_id,
                   status=(None if status == "all" else status) if with_status else "pending")


def _decide(verdict: str, reason: str | None = None) -> None:
    """Button callback: record at once, then move on."""
    from . import verdicts

    state = st.session_state
    detection_id = state.get("current_id")
    if detection_id is None:
        return
    before, after = state.get("shown", (None, None))
    try:
        verdicts.record(_db(), detection_id, state["reviewer"].strip(), verdict, reason=reason,
                        note=state.get("note") or None, before=before, after=after)
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    label = verdicts.VERDICTS[verdict] + (f" ({verdicts.REASONS[reason]})" if reason else "")
    state.setdefault("done", []).append(detection_id)
    state["flash"] = f"#{detection_id}: {label}"
    state["current_id"] = None
    state["note"] = ""


def _skip() -> None:
    state = st.session_state
    if state.get("current_id") is not None:
        state.setdefault("skipped", []).append(state["current_id"])
        state["flash"] = f"#{state['current_id']}: skipped"
        state["current_id"] = None


def _undo() -> None:
    from . import queue, verdicts

    state = st.session_state
    done = state.get("done") or []
    if not done:
        state["flash_error"] = "Nothing to undo in this session."
        return
    detection_id = done.pop()
    db = _db()
    verdicts.undo(db, detection_id, state["reviewer"].strip())
    queue.claim(db, state["reviewer"].strip(), detection_id, holder=_holder(), force=True)
    state["current_id"] = detection_id
    state["flash"] = f"#{detection_id}: verdict undone"


def _holder() -> str:
    """This browser session's claim holder id: claims belong to a session, not a name."""
    import uuid

    return st.session_state.setdefault("claim_holder", f"session-{uuid.uuid4().hex[:12]}")


def _current(db, reviewer: str, filters, order: str):
    from . import queue

    state = st.session_state
    opened = state.pop("open_detection", None)
    if opened is not None:
        state["current_id"] = queue.claim(db, reviewer, int(opened), holder=_holder(), force=True)["id"]
    signature = (order, tuple(filters.sources), filters.score_min, filters.score_max,
                 filters.period_from, filters.period_to, filters.sample_id,
                 filters.area.wkt if filters.area is not None else None)
    if state.get("queue_signature") != signature:
        state["queue_signature"] = signature
        if opened is None:
            state["current_id"] = None
    if state.get("current_id") is not None:
        return queue.get(db, state["current_id"])
    chosen = queue.claim_next(db, reviewer, filters, order, skip=tuple(state.get("skipped", [])),
                              holder=_holder())
    state["current_id"] = chosen["id"] if chosen else None
    return chosen


def review_page() -> None:
    from . import queue
    from .queue import ORDERS
    from .verdicts import REASONS

    db = _page("Review", heading=False)
    if db is None:
        return
    state = st.session_state
    with st.sidebar:
        st.text_input("Your name (recorded with every verdict)", key="reviewer")
        order = st.selectbox("Order", list(ORDERS), format_func=ORDERS.get, key="order")
        st.radio("Before/after imagery", IMAGERY_KINDS, key="imagery_kind")
    filters = _filters_sidebar(db)
    if "flash" in state:
        st.toast(state.pop("flash"))
    if "flash_error" in state:
        st.error(state.pop("flash_error"))
    reviewer = (state.get("reviewer") or "").strip()
    if not reviewer:
        st.title("Review")
        st.info("Enter your name in the sidebar to start reviewing.")
        return
    try:
        detection = _current(db, reviewer, filters, order)
    except ReviewError as exc:
        st.error(str(exc))
        return
    pending = queue.count(db, filters)
    if detection is None:
        st.title("Review")
        st.success(f"Nothing left to review with these filters ({pending} pending, "
                   f"{len(state.get('skipped', []))} skipped in this session).")
        st.button("Undo last verdict", on_click=_undo, shortcut="Z", disabled=not state.get("done"))
        return
    _show_detection(db, detection, pending)
    st.text_input("Note (optional, kept with the verdict)", key="note")
    row = st.columns(4)
    row[0].button("Verified", on_click=_decide, args=("verified",), type="primary",
                  shortcut="V", key="verdict_verified")
    row[1].button("Unsure", on_click=_decide, args=("unsure",), shortcut="U", key="verdict_unsure")
    row[2].button("Skip", on_click=_skip, shortcut="S", key="verdict_skip")
    row[3].button("Undo last", on_click=_undo, shortcut="Z", key="verdict_undo",
                  disabled=not state.get("done"))
    st.caption("False positive, with its reason:")
    reasons = st.columns(4) + st.columns(4)
    for column, (key, (code, label)) in zip(reasons, zip("12345678", REASONS.items())):
        column.button(label, on_click=_decide, args=("false_positive", code), shortcut=key,
                      key=f"fp_{code}", help=f"false positive: {label} (key {key})",
                      use_container_width=True)


def _show_detection(db, detection: dict, pending: int) -> None:
    import json

    import shapely

    from . import queue, verdicts

    state = st.session_state
    geometry = shapely.from_geojson(detection["geometry"])
    score = "no score" if detection["score"] is None else f"score {detection['score']:.3f}"
    area = ("" if detection["area_ha"] is None
            else f" · {detection['area_ha']:,.2f} ha ({detection['area_source']})")
    st.subheader(f"Detection #{detection['id']} · {score}{area}")
    st.caption(f"{pending:,} pending · source {detection['source']} · model "
               f"{detection['model_id'] or 'unknown'} · period "
               f"{detection['period_start'] or '?'} to {detection['period_end'] or '?'} · "
               f"{detection['lat']:.5f}, {detection['lon']:.5f}")
    left, right, side = st.columns([1, 1, 1])
    kind = st.session_state.get("imagery_kind", IMAGERY_KINDS[0])
    if kind == IMAGERY_KINDS[1]:
        pictures, message = _wayback_pictures(detection, geometry)
    else:
        pictures, message = _scene_pictures(db, detection, geometry)
    if len(pictures) == 2:
        left.image(pictures[0].image, caption=f"Before: {pictures[0].caption}")
        right.image(pictures[1].image, caption=f"After: {pictures[1].caption}")
        state["shown"] = (pictures[0].imagery, pictures[1].imagery)
    elif len(pictures) == 1:
        left.info(message or "No earlier imagery covers the detection.")
        right.image(pictures[0].image, caption=f"After: {pictures[0].caption}")
        state["shown"] = (None, pictures[0].imagery)
    else:
        left.info(message or "No stored scene covers this detection; judge it on the basemap.")
        state["shown"] = (None, verdicts.Imagery(source=f"{settings.basemap_name()} (current basemap)"))
    if kind == IMAGERY_KINDS[0] and len(pictures) < 2 and detection.get("period_start"):
        right.button("Fetch Sentinel-2 before/after", on_click=_fetch_before_after,
                     args=(detection["id"],), key="fetch_s2")
    with side:
        _detail_map(geometry)
    history = verdicts.history(db, detection["id"])
    near = queue.neighbours(db, detection)
    with st.expander(f"History ({len(history)}) and neighbours within 3 km ({len(near)})"):
        if history:
            st.dataframe(pd.DataFrame(history)[["created_at", "reviewer", "verdict", "reason", "note"]],
                         hide_index=True)
        if near:
            st.dataframe(pd.DataFrame(near), hide_index=True)
        properties = json.loads(detection.get("properties") or "{}")
        if properties:
            st.json(properties, expanded=False)


IMAGERY_KINDS = ("Sentinel-2 scenes", "Esri Wayback (dated, high resolution)")


def _scene_pictures(db, detection, geometry):
    from . import chips

    scenes = chips.scenes_covering(db, detection)
    before, after = chips.pick_before_after(scenes, detection)
    shown = [s for s in (before, after) if s is not None]
    try:
        return (chips.render_pair(shown, geometry) if shown else []), None
    except ReviewError as exc:
        return [], f"Stored imagery could not be shown: {exc}"


@st.cache_data(ttl=3600, show_spinner=False)
def _wayback_releases(config_url: str):
    from . import wayback

    return wayback.releases(config_url)


def _wayback_pictures(detection, geometry):
    from . import wayback

    try:
        before, latest = wayback.pick(_wayback_releases(settings.wayback_config_url()),
                                      detection.get("period_start"))
        shown = [r for r in (before, latest) if r is not None]
        if before is not None and before.id == latest.id:
            shown = [latest]
        return [wayback.chip(r, geometry) for r in shown], (
            None if before else "No Wayback release predates this detection's period.")
    except ReviewError as exc:
        return [], f"Wayback imagery could not be had: {exc}"


def _fetch_before_after(detection_id: int) -> None:
    from . import queue, review_imagery

    db = _db()
    try:
        review_imagery.before_after(db, queue.get(db, detection_id))
    except ReviewError as exc:
        st.session_state["flash_error"] = str(exc)
    else:
        st.session_state["flash"] = f"#{detection_id}: Sentinel-2 before/after fetched"


def _detail_map(geometry) -> None:
    import folium
    from streamlit_folium import st_folium

    west, south, east, north = geometry.bounds
    fmap = folium.Map(tiles=None, control_scale=True)
    folium.TileLayer(settings.basemap_url(), attr=settings.basemap_name(),
                     name=settings.basemap_name(), max_zoom=19).add_to(fmap)
    folium.GeoJson(geometry.__geo_interface__,
                   style_function=lambda _: {"color": "#ffd600", "weight": 2, "fill": False}).add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]], padding=(40, 40))
    st_folium(fmap, height=330, use_container_width=True, returned_objects=[], key="detail_map")
    st.caption(f"Basemap: {settings.basemap_name()} (current imagery, not dated)")


# ---------------------------------------------------------------------------- map

STATUS_COLOURS = {"pending": "#9e9e9e", "verified": "#d7301f", "false_positive": "#2b83ba",
                  "unsure": "#fdae61"}
MAP_LIMIT = 3000


def popup_html(row: dict, last_verdict: tuple | None) -> str:
    """A map popup; everything people typed is escaped."""
    import html

    lines = [f"<b>#{row['id']}</b> {html.escape(row['source'])}",
             f"status: {html.escape(row['status'])}",
             "score: " + ("-" if row["score"] is None else f"{row['score']:.3f}")]
    if last_verdict:
        reviewer, verdict, note = last_verdict
        lines.append(f"last: {html.escape(verdict)} by {html.escape(reviewer)}")
        if note:
            lines.append(f"note: {html.escape(note)}")
    return "<br>".join(lines)


def map_page() -> None:
    import folium
    from streamlit_folium import st_folium

    from . import queue

    db = _page("Map")
    if db is None:
        return
    filters = _filters_sidebar(db, with_status=True)
    total = queue.count(db, filters)
    rows = queue.listing(db, filters, order="score", limit=MAP_LIMIT)
    st.caption(f"{total:,} detections match" + (f"; the {MAP_LIMIT:,} highest scores are drawn"
                                                 if total > MAP_LIMIT else ""))
    if not rows:
        st.info("No detections match these filters.")
        return
    last = {r[0]: r[1:] for r in db.execute(
        "select v.detection_id, v.reviewer, v.verdict, v.note from verdicts v join "
        "(select detection_id, max(id) as id from verdicts group by detection_id) m on v.id = m.id")}
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    west = min(r["west"] for r in rows)
    south = min(r["south"] for r in rows)
    east = max(r["east"] for r in rows)
    north = max(r["north"] for r in rows)
    fmap.fit_bounds([[south, west], [north, east]])
    for row in rows:
        colour = STATUS_COLOURS.get(row["status"], "#000")
        popup = folium.Popup(popup_html(row, last.get(row["id"])), max_width=300)
        folium.CircleMarker([row["lat"], row["lon"]], radius=5, color=colour, fill=True,
                            fill_opacity=0.8, popup=popup, tooltip=f"#{row['id']}").add_to(fmap)
    st_folium(fmap, height=520, use_container_width=True, returned_objects=[], key="overview_map")
    st.caption(" · ".join(f"{status}: {colour}" for status, colour in STATUS_COLOURS.items()))
    table = pd.DataFrame(rows)[["id", "source", "status", "score", "area_ha", "period_start"]]
    st.dataframe(table, hide_index=True)
    chosen = st.selectbox("Open a detection in Review", table["id"].tolist(), key="open_id")
    if st.button("Open in Review", type="primary"):
        st.session_state["open_detection"] = int(chosen)
        st.switch_page("pages/2_Review.py")


# -------------------------------------------------------------------------- trends


def _regions_from_upload(upload):
    import tempfile

    from .trends import read_regions

    if upload is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        return read_regions(path)


def trends_page() -> None:
    from . import sampling
    from .trends import area_basis, trend_table

    db = _page("Trends")
    if db is None:
        return
    with st.sidebar:
        by = st.radio("Period", ["year", "quarter"], horizontal=True, key="t_by")
        sources = st.multiselect("Sources", _all_sources(db), key="t_sources")
        region_upload = st.file_uploader("Regions (GeoJSON polygons)", type=["geojson", "json", "gpkg"],
                                         key="t_regions")
        region_field = st.text_input("…or group by this field of the detections (e.g. country)",
                                     key="t_region_field")
    try:
        regions = _regions_from_upload(region_upload)
        table = trend_table(db, by=by, regions=regions, region_field=region_field or None,
                            sources=sources or None)
    except ReviewError as exc:
        st.error(str(exc))
        regions, table = None, trend_table(db, by=by, sources=sources or None).iloc[0:0]
    if table.empty:
        st.info("No detections with a period yet: import or detect some, then review them.")
    totals = table.groupby("period", as_index=False).sum(numeric_only=True) if "region" in table else table
    st.caption(f"Area basis: {area_basis(table)}.")
    _trend_charts(totals)
    st.subheader("Table")
    st.dataframe(table, hide_index=True)
    st.download_button("Download the table (CSV)", table.to_csv(index=False), "trends.csv",
                       "text/csv", key="t_csv")
    _sample_section(db, sampling)


def _trend_charts(table: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    from .trends import STATUS_COLUMNS, wilson_interval

    colours = {"verified": "#d7301f", "false_positive": "#2b83ba", "unsure": "#fdae61",
               "pending": "#bdbdbd"}
    config = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}
    bars = go.Figure()
    for status in STATUS_COLUMNS:
        bars.add_bar(x=table["period"], y=table[f"area_ha_{status}"] if len(table) else [],
                     name=status.replace("_", " "), marker_color=colours[status],
                     customdata=table[status] if len(table) else [],
                     hovertemplate="%{x}: %{y:,.1f} ha in %{customdata} detections<extra>%{fullData.name}</extra>")
    bars.update_layout(barmode="stack", title="Mined area by review status (ha)",
                       yaxis_title="hectares", xaxis_type="category", height=380)
    st.plotly_chart(bars, config=config, key="chart_area")
    line = go.Figure()
    line.add_scatter(x=table["period"], y=table["area_ha_cumulative"] if len(table) else [],
                     mode="lines+markers", name="all detections",
                     hovertemplate="%{x}: %{y:,.1f} ha cumulative<extra></extra>")
    if len(table):
        line.add_scatter(x=table["period"], y=table["area_ha_verified"].cumsum(), mode="lines+markers",
                         name="verified", hovertemplate="%{x}: %{y:,.1f} ha verified<extra></extra>")
    line.update_layout(title="Cumulative mined area (ha)", yaxis_title="hectares",
                       xaxis_type="category", height=340)
    st.plotly_chart(line, config=config, key="chart_cumulative")
    reviewed = table[(table["verified"] + table["false_positive"]) > 0] if len(table) else table
    precision = go.Figure()
    if len(reviewed):
        bounds = [wilson_interval(int(v), int(v + f)) for v, f in
                  zip(reviewed["verified"], reviewed["false_positive"])]
        values = reviewed["verified"] / (reviewed["verified"] + reviewed["false_positive"])
        precision.add_scatter(
            x=reviewed["period"], y=values, mode="markers", name="precision",
            error_y={"type": "data", "symmetric": False,
                     "array": [hi - v for (lo, hi), v in zip(bounds, values)],
                     "arrayminus": [v - lo for (lo, hi), v in zip(bounds, values)]},
            customdata=list(zip(reviewed["verified"], reviewed["false_positive"])),
            hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} verified, %{customdata[1]} false "
                          "positives)<extra></extra>")
    precision.update_layout(title="Precision of reviewed detections (95% Wilson interval)",
                            yaxis_range=[0, 1], xaxis_type="category", height=320)
    st.plotly_chart(precision, config=config, key="chart_precision")


def _sample_section(db, sampling) -> None:
    from .queue import Filters

    st.subheader("Random samples")
    st.caption("Draw detections at random from a stratum, review them (Review page, 'sample' "
               "filter), and estimate the stratum's verified area from them.")
    for sample in sampling.listing(db):
        try:
            text = sampling.estimate(db, sample["id"]).summary()
        except ReviewError as exc:
            text = str(exc)
        st.write(f"Sample {sample['id']} · {sample['name']} · {sample['size']} of "
                 f"{sample['stratum_detections']:,} detections: {text}")
    with st.form("draw_sample"):
        name = st.text_input("Sample name", key="s_name")
        sources = st.multiselect("Stratum: sources", _all_sources(db), key="s_sources")
        period_from = st.text_input("Stratum: period from", key="s_from")
        period_to = st.text_input("Stratum: period to", key="s_to")
        size = st.number_input("Detections to draw", 1, 10_000, 100, key="s_size")
        if st.form_submit_button("Draw sample"):
            try:
                sample_id = sampling.draw(db, name or "sample", Filters(
                    sources=sources, period_from=period_from or None, period_to=period_to or None),
                    int(size))
            except ReviewError as exc:
                st.error(str(exc))
            else:
                st.success(f"Sample {sample_id} drawn; review it on the Review page.")


# -------------------------------------------------------------------------- export


def export_page() -> None:
    import tempfile

    from . import export

    db = _page("Export")
    if db is None:
        return
    filters = _filters_sidebar(db, with_status=True, default_status="verified")
    from . import queue

    count = queue.count(db, filters)
    st.write(f"{count:,} detections match the filters.")
    choice = st.radio("Format", ["GeoJSON", "GeoPackage", "CSV"], horizontal=True, key="x_format")
    suffix = {"GeoJSON": ".geojson", "GeoPackage": ".gpkg", "CSV": ".csv"}[choice]
    if st.button("Prepare the file", type="primary", disabled=count == 0, key="x_prepare"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"detections{suffix}"
            try:
                written = export.export(db, path, filters)
            except ReviewError as exc:
                st.error(str(exc))
                return
            st.session_state["export_file"] = (path.name, path.read_bytes(), written)
    if "export_file" in st.session_state:
        name, content, written = st.session_state["export_file"]
        st.download_button(f"Download {name} ({written:,} detections)", content, name, key="x_download")
    st.subheader("Training samples")
    st.caption("Reviewed detections as labelled points (1 verified, 0 false positive) in "
               "earthrise's sampling-location schema, to feed the next model.")
    if st.button("Prepare training samples", key="x_samples"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "training_samples.geojson"
            written = export.training_samples(db, path, filters)
            st.download_button(f"Download training_samples.geojson ({written} points)",
                               path.read_bytes(), path.name, key="x_samples_download")
    st.subheader("Evidence pack")
    detection_id = st.number_input("Detection id", min_value=1, step=1, key="x_evidence_id")
    if st.button("Make the evidence picture", key="x_evidence"):
        try:
            png = export.evidence_png(db, int(detection_id))
        except ReviewError as exc:
            st.error(str(exc))
        else:
            st.image(png, caption=f"Detection #{int(detection_id)}")
            st.download_button("Download PNG", png, f"detection_{int(detection_id)}.png",
                               "image/png", key="x_evidence_download")
