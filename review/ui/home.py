"""Home: what is in the review database, what to do next, importing detections."""
from __future__ import annotations

import streamlit as st

from .. import project_settings, queue, settings, store, uploads
from ..errors import ReviewError
from ..importers import FieldMap, example_name, import_example, import_file
from . import common

SECOND_OPINION = {"off": "off (one verdict settles a detection)",
                  "verified": "on for verified detections (a second reviewer confirms each)",
                  "all": "on for verified and false-positive detections"}
METRICS = {"scenes": "Scenes", "runs": "Detector runs", "detections": "Detections",
           "verdicts": "Verdicts"}


def page() -> None:
    db = common.page("Home", heading=False)
    if db is None:
        return
    st.title("Mining review")
    st.caption("Find illegal mining in satellite imagery, and confirm it by eye before anyone relies on it.")
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    counts = store.table_counts(db, tuple(METRICS))
    for column, (table, count) in zip(st.columns(len(METRICS)), counts.items()):
        column.metric(METRICS[table], f"{count:,}")
    st.subheader("What to do next")
    if not counts["detections"]:
        st.info("The database is empty. Load a published example to try the review loop, "
                "import detections with `python -m review import FILE`, or open **Detect** to "
                "run a detector over a GeoTIFF tile.")
        st.caption(f"Example: {settings.example_url()}")
        if common.user(db).can("import") and st.button("Load the example detections", type="primary"):
            _load_example(db)
    else:
        pending = queue.count(db, queue.Filters(status="pending"))
        if pending:
            st.info(f"{pending:,} detections wait for a verdict: open **Review**.")
        else:
            st.success("Every detection has a verdict.")
        st.subheader("Detections by source and status")
        st.dataframe(queue.status_by_source(db))
    if common.user(db).can("import"):
        _import_section(db)
    st.caption(f"Second opinions: {SECOND_OPINION[project_settings.get(db, 'second_opinion')]} "
               f"(`python -m review settings set second_opinion off|verified|all`)")
    st.caption(f"Database: {settings.db_path()} · detector device: {common.device()}")


def _load_example(db) -> None:
    try:
        common.require(db, "import")
    except ReviewError as exc:
        st.error(str(exc))
        return
    url = settings.example_url()
    name = example_name(url)
    bar = st.progress(0.0, text=f"Downloading {name}…")
    try:
        report = import_example(
            db, url, settings.data_dir() / "examples",
            download_progress=common.moves(bar, lambda done, total, what:
                                           f"Downloading {name}: {done:,} bytes"),
            import_progress=common.moves(bar, lambda done, total, what: "Importing…"))
    except ReviewError as exc:
        st.error(str(exc))
        return
    st.session_state["flash"] = report.summary()
    st.rerun()


def _import_section(db) -> None:
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
        try:
            common.require(db, "import")
        except ReviewError as exc:
            st.error(str(exc))
            return
        path = uploads.save_import(upload.getvalue(), upload.name)
        bar = st.progress(0.0, text="Importing…")
        try:
            report = import_file(db, path, source=source or None,
                                 fields=FieldMap(score=score or None, period=period or None,
                                                 id=ident or None),
                                 progress=common.moves(bar, lambda done, total, what:
                                                       f"Imported {done:,} of {total:,}"))
        except ReviewError as exc:
            st.error(str(exc))
            return
        st.session_state["flash"] = report.summary()
        st.rerun()
