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
from .errors import ReviewError


def _setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Mining review", page_icon="⛏", layout="wide")


def _db():
    return store.connect(settings.db_path())


@st.cache_resource(show_spinner=False)
def _device() -> str:
    from .models import device_description

    return device_description()


@st.cache_resource(show_spinner="Loading model…")
def _model(spec: str):
    from .models import load_model

    return load_model(spec, progress=lambda done, total: None)


# --------------------------------------------------------------------------- home


def home_page() -> None:
    _setup("Home")
    st.title("Mining review")
    st.caption("Find illegal mining in satellite imagery, and confirm it by eye before anyone relies on it.")
    try:
        db = _db()
    except ReviewError as exc:
        st.error(str(exc))
        return
    counts = {table: db[table].count for table in ("scenes", "runs", "detections", "verdicts")}
    columns = st.columns(4)
    labels = {"scenes": "Scenes", "runs": "Detector runs", "detections": "Detections",
              "verdicts": "Verdicts"}
    for column, (table, count) in zip(columns, counts.items()):
        column.metric(labels[table], f"{count:,}")
    if counts["detections"]:
        by_source = pd.DataFrame(db.execute(
            "select source, count(*) as detections, round(sum(area_ha), 1) as area_ha "
            "from detections group by source order by detections desc").fetchall(),
            columns=["source", "detections", "area_ha"])
        st.subheader("Detections by source")
        st.dataframe(by_source, hide_index=True)
    st.subheader("What to do next")
    if not counts["detections"]:
        st.info("The database is empty. Open **Detect** to run a published detector over a "
                "GeoTIFF tile; its candidates are stored here for review.")
    else:
        st.info("Run more tiles on **Detect**.")
    st.caption(f"Database: {settings.db_path()} · detector device: {_device()}")


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
    source = _save_upload(upload) if upload is not None else (typed_path.strip() or None)
    if source is None:
        st.error("Upload a GeoTIFF or give the path of one.")
        return
    if not model_spec:
        st.error("Give the path of the model file.")
        return
    _run_and_show(source, model_spec, bands or None, (start or None, end or None), t_main, t_iso)


def _run_and_show(source, model_spec, bands, period, t_main, t_iso) -> None:
    from .candidates import to_lonlat_geojson
    from .detect import check_compatible
    from .imagery import open_tile
    from .runs import run_detection, store_result

    try:
        tile = open_tile(source, bands=bands, period=period)
        model = _model(model_spec)
        check_compatible(tile, model.card)
        bar = st.progress(0.0, text="Scoring patches…")
        result = run_detection(tile, model, t_main=t_main, t_iso=t_iso,
                               progress=lambda done, total: bar.progress(
                                   done / max(total, 1), text=f"Scored {done:,} of {total:,} patches"))
        run_id = store_result(_db(), result)
    except ReviewError as exc:
        st.error(str(exc))
        return
    bar.progress(1.0, text="Done")
    st.success(f"Run {run_id}: {result.summary()}")
    if tile.warped:
        st.info(f"The tile was in {tile.source_crs} and was warped to {tile.crs} at 10 m.")
    if tile.product and "L2A" in tile.product.upper() and model.card.product == "L1C":
        st.warning(f"Model {model.card.id} was trained on L1C imagery; this tile is {tile.product}.")
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
