"""Home: what is in the review database, the first steps in order, importing detections."""
from __future__ import annotations

import streamlit as st

from .. import settings, store
from ..detection import uploads
from ..detection.importers import FieldMap, example_name, import_example, import_file
from ..errors import ReviewError
from ..judging import project_settings, queue
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
    _steps(db, counts)
    if counts["detections"]:
        st.subheader("Detections by source and status")
        st.dataframe(queue.status_by_source(db))
    if common.user(db).can("import"):
        _import_section(db, empty=not counts["detections"])
    st.caption(f"Second opinions: {SECOND_OPINION[project_settings.get(db, 'second_opinion')]} "
               f"(`python -m review settings set second_opinion off|verified|all`)")
    st.caption(f"Database: {settings.db_path()} · detector device: {common.device(wait=False)}")


def _steps(db, counts: dict[str, int]) -> None:
    st.subheader("First steps")
    have = counts["detections"]
    pending = queue.count(db, queue.Filters(status="pending")) if have else 0
    done = "✓ " if have else ""
    st.markdown(
        f"1. {done}**Get detections**: import a file of detections below (or load the published "
        "example), or open **Detect** to run a detector over a Sentinel-2 tile.\n"
        "2. **Review** them one by one: open **Review** and say, for each, whether it is mining."
        + (f" {pending:,} wait for a verdict." if have and pending else
           " Every detection has a verdict." if have else "") + "\n"
        "3. Then look at them on the **Map**, follow the mined area in **Trends**, and **Export** "
        "what you verified.")
    if not have:
        st.info("The database is empty: start with step 1.")
        if common.user(db).can("import") and st.button("Load the example detections", type="primary"):
            _load_example(db)
        st.caption(f"Example: {settings.example_url()}")


def _load_example(db) -> None:
    try:
        common.require(db, "import")
    except ReviewError as exc:
        common.show_error(exc)
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
        bar.empty()
        common.show_error(exc)
        return
    st.session_state["flash"] = report.summary()
    st.rerun()


def _import_section(db, empty: bool) -> None:
    # Always drawn, at the same place and with the same keys: the chosen file and the
    # fields stay between imports.
    st.subheader("Import detections from a file")
    upload = st.file_uploader("GeoJSON, GeoPackage, zipped shapefile or lat/lon CSV",
                              type=["geojson", "json", "gpkg", "zip", "csv", "fgb"], key="import_file")
    source = st.text_input("Source name (default: the file name)", key="import_source")
    columns = st.columns(3)
    score = columns[0].text_input("Score field (if not pred/mean/confidence)", key="import_score")
    period = columns[1].text_input("Date or period field", key="import_period")
    ident = columns[2].text_input("Id field", key="import_id")
    if not st.button("Import", key="import_button", type="secondary" if empty else "primary"):
        return
    if upload is None:
        st.error("Choose a file to import first (the box above).")
        return
    try:
        common.require(db, "import")
    except ReviewError as exc:
        common.show_error(exc)
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
        bar.empty()
        uploads.discard(db, path)            # a refused file is not kept
        common.show_error(exc)
        return
    st.session_state["flash"] = report.summary()
    st.rerun()
