"""Detect: run a published detector over a GeoTIFF tile (uploaded, on this machine, stored,
or fetched for an area) and send its candidates to review."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import folium
import pandas as pd
import streamlit as st
from branca.element import MacroElement
from folium.plugins import Draw
from folium.template import Template
from streamlit_folium import st_folium

from .. import settings, store
from ..analysis import areas
from ..detection import preflight, uploads
from ..detection.candidates import to_lonlat_geojson
from ..detection.detect import check_compatible
from ..detection.fetch import Source, composite
from ..detection.imagery import open_tile
from ..detection.models import CARDS, DEFAULT_MODEL, ModelUnavailable
from ..detection.runs import product_mismatch, run_detection, store_result
from ..errors import ReviewError, sentence
from ..review_imagery import preparation
from . import common


def page() -> None:
    db = common.page("Detect", action="detect")
    if db is None:
        return
    st.caption("Run a published mining detector over a Sentinel-2 tile and send its candidates to review.")
    upload = st.file_uploader("GeoTIFF tile (Sentinel-2 L1C digital numbers)", type=["tif", "tiff"])
    typed_path = st.text_input("…or the path of a tile on this machine", key="tile_path")
    try:
        stored = {f"{s['name']} ({s['period_start'] or '?'} to {s['period_end'] or '?'})": s["path"]
                  for s in store.stored_scenes(db)}
    except ReviewError:
        stored = {}
    picked = st.selectbox("…or a stored scene", ["(none)", *stored], key="stored_scene")
    area = _area_picker()
    before_upload = st.file_uploader(
        "Optional: an earlier tile of the same place, shown as the 'before' view in Review "
        "(and compared with, for a model trained on before/after pairs)",
        type=["tif", "tiff"], key="before_upload")
    ids = list(CARDS)
    st.session_state.setdefault("model_choice", DEFAULT_MODEL)
    model_id = st.selectbox("Model", ids + [LOCAL_FILE], key="model_choice",
                            format_func=lambda i: f"{i}: {CARDS[i].description}" if i in CARDS else i)
    model_spec = model_id
    card = CARDS.get(model_id)
    if model_id not in CARDS:
        model_spec = st.text_input("Path of a .h5 or .keras model (a published model's file, or "
                                   "one with a JSON card beside it)", key="model_path").strip()
        card = _recognised(model_spec)
        if card is not None:
            st.caption(f"Recognised by its checksum as the published model {card.id}: its card's "
                       f"bands and thresholds are used.")
    with st.expander("Bands, period and thresholds"):
        bands = st.text_input("Band names in file order (only if the file does not name them)",
                              placeholder="B2,B3,B4,B8,-,-", key="bands")
        start = st.text_input("Period start (YYYY-MM-DD, if the file does not say)", key="start")
        end = st.text_input("Period end", key="end")
        t_main = st.number_input("Main threshold", 0.0, 1.0, card.t_main if card else 0.5, 0.01,
                                 key=f"t_main_{card.id if card else 'file'}")
        t_iso = st.number_input("Threshold for isolated patches", 0.0, 1.0,
                                card.t_iso if card else 0.8, 0.01,
                                key=f"t_iso_{card.id if card else 'file'}")
    if not st.button("Run detector", type="primary"):
        return
    try:
        common.require(db, "detect")
    except ReviewError as exc:
        st.error(str(exc))
        return
    if not model_spec:
        st.error("Give the path of the model file.")
        return
    source = (uploads.save_scene(upload.getvalue(), upload.name) if upload is not None
              else typed_path.strip() or stored.get(picked))
    if not source and area is not None:
        source = _fetch_area(area, model_spec)
        if source is None:
            return
    if not source:
        st.error("Upload a GeoTIFF, give the path of one, pick a stored scene, or fetch an area.")
        return
    before_path = None
    if before_upload is not None:
        before_path = _store_before(before_upload, bands or None)
        if before_path is None:
            return
    names = uploads.known_names(source if upload is not None else None,
                                upload.name if upload is not None else None)
    if before_upload is not None:
        names.update(uploads.known_names(before_path, before_upload.name))
    stored_ok = _run_and_show(source, model_spec, bands or None, (start or None, end or None),
                              t_main, t_iso, before_path, names)
    if upload is not None and not stored_ok:
        uploads.discard(db, source)          # a refused upload is not kept in data/scenes


LOCAL_FILE = "A file on this machine"


@st.cache_data(max_entries=16, show_spinner="Checking the model file…")
def _recognised_card_id(path: str, mtime: float) -> str | None:
    card = preflight.published_card(path)
    return card.id if card else None


def _recognised(path: str):
    """The published card of a local model file recognised by its checksum, or None."""
    from pathlib import Path

    try:
        stat = Path(path).stat() if path else None
    except OSError:
        return None
    if stat is None:
        return None
    card_id = _recognised_card_id(path, stat.st_mtime)
    return CARDS.get(card_id) if card_id else None


def _use_local_file() -> None:
    st.session_state["model_choice"] = LOCAL_FILE


def _model_unavailable(exc: ModelUnavailable) -> None:
    common.show_error(exc)
    st.button("Use a model file on this machine", key="use_local_model", on_click=_use_local_file)


def _area_picker() -> tuple[str, str, str] | None:
    """An area and period to fetch: typed as W,S,E,N or drawn as a rectangle on the map."""
    with st.expander("…or fetch Sentinel-2 for an area and period"):
        typed = st.text_input("Area W,S,E,N in degrees (or draw a rectangle below)", key="area_bbox")
        columns = st.columns(2)
        last_year = dt.date.today().year - 1
        start = columns[0].date_input("From", dt.date(last_year, 1, 1), key="area_start")
        end = columns[1].date_input("To", dt.date(last_year, 12, 31), key="area_end")
        drawn = _draw_map()
    bbox_text = typed.strip() or drawn
    if not bbox_text:
        return None
    return bbox_text, start.isoformat(), end.isoformat()


def _draw_map() -> str | None:
    if not _leaflet_served("Type the area as W,S,E,N above instead."):
        return None
    fmap = folium.Map(location=[0, -55], zoom_start=3, tiles=None)
    folium.TileLayer(settings.basemap_url(), attr=settings.basemap_name()).add_to(fmap)
    draw = Draw(draw_options={"polyline": False, "polygon": False, "circle": False, "marker": False,
                              "circlemarker": False, "rectangle": True}, edit_options={"edit": False})
    draw.add_to(fmap)
    _BasemapNote(f"The basemap ({settings.basemap_name()}) could not be loaded (no internet?). "
                 "A rectangle drawn here, or W,S,E,N typed above, still sets the area.").add_to(fmap)
    _served_here(fmap, draw)
    result = st_folium(fmap, height=320, use_container_width=True, key="area_map",
                       returned_objects=["last_active_drawing"]) or {}
    drawing = result.get("last_active_drawing")
    if not drawing:
        return None
    try:
        drawn = areas.bbox_text(drawing["geometry"])
    except ReviewError as exc:
        common.show_error(exc)
        return None
    st.caption(f"Drawn area (W,S,E,N): {drawn}")
    return drawn


# Leaflet and Leaflet.draw, pinned, served by the app from static/ (server.enableStaticServing
# in .streamlit/config.toml; licences beside them): folium's own defaults are CDN addresses,
# and a map whose code cannot load is a blank frame, offline or behind a strict network.
LEAFLET, LEAFLET_DRAW = "leaflet-1.9.4", "leaflet.draw-1.0.4"
STATIC = Path(__file__).resolve().parents[2] / "static"
# streamlit-folium draws in a frame at <app>/component/streamlit_folium.st_folium/index.html:
# from there this reaches <app>/app/static/ under any server.baseUrlPath.
_SERVED = "../../app/static/"


def _leaflet_served(instead: str) -> bool:
    """Whether the app serves the maps' code; if not, a sentence says so in place of a blank map."""
    if st.get_option("server.enableStaticServing") and (STATIC / LEAFLET / "leaflet.js").is_file():
        return True
    st.info("The map cannot be shown: the dashboard serves its map code from static/ only when "
            "started from its folder (streamlit run app.py there reads .streamlit/config.toml). "
            + instead)
    return False


def _served_here(fmap: folium.Map, draw: Draw | None = None) -> None:
    """Point the map (and its drawing tools) at the app's own copies of Leaflet and
    Leaflet.draw, in place of folium's CDN links (and jQuery, Bootstrap and the marker
    fonts, which these maps do not use)."""
    fmap.default_js = [("leaflet", f"{_SERVED}{LEAFLET}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{_SERVED}{LEAFLET}/leaflet.css")]
    if draw is not None:
        draw.default_js = [("leaflet_draw_js", f"{_SERVED}{LEAFLET_DRAW}/leaflet.draw.js")]
        draw.default_css = [("leaflet_draw_css", f"{_SERVED}{LEAFLET_DRAW}/leaflet.draw.css")]


class _BasemapNote(MacroElement):
    """A sentence on the map, shown once when a basemap tile cannot be loaded."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var shown = false;
            function show() {
                if (shown) { return; }
                shown = true;
                var note = L.control({position: "bottomleft"});
                note.onAdd = function () {
                    var div = L.DomUtil.create("div", "basemap-note");
                    div.setAttribute("role", "status");
                    div.style.cssText = "background:#fff4e5;padding:4px 8px;border-radius:4px;"
                        + "max-width:26em;font:13px/1.35 sans-serif";
                    div.textContent = {{ this.text|tojson }};
                    return div;
                };
                note.addTo(map);
            }
            map.eachLayer(function (layer) {
                if (layer instanceof L.TileLayer) { layer.on("tileerror", show); }
            });
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, text: str):
        super().__init__()
        self._name = "BasemapNote"
        self.text = text


def _fetch_area(area: tuple[str, str, str], model_spec: str):
    bbox_text, start, end = area
    try:
        request = areas.fetch_request(bbox_text, start, end, settings.fetch_max_km2())
        request = areas.for_model(request, common.model(model_spec).card.bands)
        bar = st.progress(0.0, text="Searching the catalogue…")
        return composite(Source(), request, progress=common.moves(
            bar, lambda done, total, what: f"Fetched {done} of {total} windows ({what})"))
    except ModelUnavailable as exc:
        _model_unavailable(exc)
        return None
    except ReviewError as exc:
        common.show_error(exc)
        return None


def _store_before(upload, bands: str | None):
    """Register the 'before' tile as a scene (its period comes from its tags); its path,
    or None when it cannot be used."""
    path = None
    try:
        path = uploads.save_scene(upload.getvalue(), upload.name)
        tile = preparation.add_tile(common.connection(), path, bands)
    except ReviewError as exc:
        common.show_error(exc, prefix="before tile: ",
                          names=uploads.known_names(path, upload.name))
        return None
    if not tile.period_start:
        st.warning(f"{tile.name} has no period in its tags; Review cannot tell it is the earlier view.")
    return path


def _run_and_show(source, model_spec, bands, period, t_main, t_iso, before_path=None,
                  names: dict[str, str] | None = None) -> bool:
    """Run, store and show; False when nothing was stored. `names`: uploads' own names, for
    messages."""
    from ..detection.runs import ignored_before

    try:
        tile = open_tile(source, bands=bands, period=period)
        before = open_tile(before_path, bands=bands) if before_path else None
        model = common.model(model_spec)
        problem = preflight.unnamed_bands(tile, model.card, bands)
        if problem:
            common.show_error(ReviewError(problem), names=names)
            return False
        small = preflight.too_small(tile, model.card)
        check_compatible(tile, model.card)
        note = ignored_before(model.card, before)
        if note:
            st.info(note[0].upper() + note[1:] + ".")
        bar = st.progress(0.0, text="Scoring patches…")
        result = run_detection(tile, model, t_main=t_main, t_iso=t_iso, progress=common.moves(
            bar, lambda done, total, what: f"Scored {done:,} of {total:,} patches"), before=before)
        run_id = store_result(common.connection(), result)
    except ModelUnavailable as exc:
        _model_unavailable(exc)
        return False
    except ReviewError as exc:
        common.show_error(exc, names=names)
        return False
    bar.progress(1.0, text="Done")
    st.success(f"Run {run_id}: {result.summary()}")
    if small:
        st.warning(sentence(small))          # why nothing was scored
    if tile.warped:
        st.info(f"The tile was in {tile.source_crs} and was warped to {tile.crs} at 10 m.")
    mismatch = product_mismatch(tile, model.card)
    if mismatch:
        st.warning(mismatch[0].upper() + mismatch[1:] + ".")
    if not result.candidates:
        st.info("No candidates above the thresholds.")
        return True
    table = pd.DataFrame([{"candidate": n, "score": round(c.score, 3), "max score": round(c.score_max, 3),
                           "patches": c.patches, "area (ha)": round(c.area_ha, 2)}
                          for n, c in enumerate(result.candidates, start=1)])
    st.dataframe(table, hide_index=True)
    _candidate_map([to_lonlat_geojson(c.geometry, tile.crs) for c in result.candidates],
                   tile.lonlat_bounds())
    return True


def _candidate_map(geometries: list[dict], bounds) -> None:
    if not _leaflet_served("The table above lists the candidates; the Map page shows them."):
        return
    west, south, east, north = bounds
    fmap = folium.Map(tiles=None)
    folium.TileLayer(settings.basemap_url(), attr=settings.basemap_name()).add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])
    folium.Rectangle([[south, west], [north, east]], color="#555", fill=False, tooltip="tile").add_to(fmap)
    for number, geometry in enumerate(geometries, start=1):
        folium.GeoJson(geometry, tooltip=f"candidate {number}",
                       style_function=lambda _: {"color": "#d7301f", "weight": 2}).add_to(fmap)
    _BasemapNote(f"The basemap ({settings.basemap_name()}) could not be loaded (no internet?). "
                 "The tile's outline and its candidates are drawn on a plain background.").add_to(fmap)
    _served_here(fmap)
    st_folium(fmap, height=420, use_container_width=True, returned_objects=[])
