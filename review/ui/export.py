"""Export: hand-verified detections, training samples and evidence pictures."""
from __future__ import annotations

import streamlit as st

from ..errors import ReviewError
from ..judging import queue, transparency_log
from ..publishing import export
from . import common

FORMATS = {"GeoJSON": "detections.geojson", "GeoPackage": "detections.gpkg", "CSV": "detections.csv"}


def page() -> None:
    db = common.page("Export")
    if db is None:
        return
    filters = common.filters_sidebar(db, with_status=True, default_status="verified")
    if common.user(db).can("export"):
        _exports(db, filters)
    else:
        st.info("Exports are for editors; you can make evidence pictures below.")
    _evidence(db)


def _exports(db, filters: queue.Filters) -> None:
    count = queue.count(db, filters)
    narrowed = common.filters_in_words(filters)
    st.write(f"{count:,} detection{'s match' if count != 1 else ' matches'} the filters in the "
             f"sidebar ({narrowed})." if narrowed else f"{count:,} detections, all of them.")
    if not count and narrowed:
        everything = queue.count(db, queue.Filters(status=None))
        if everything:
            st.caption(f"{everything:,} detections in all: record verdicts on Review, or change "
                       "the filters (the Status filter is in the sidebar, below the others).")
    if filters.context:
        st.caption(f"Only detections overlapping {filters.context}"
                   + (f" ({filters.context_value})" if filters.context_value else "")
                   + ": the context layer chosen in the sidebar.")
    choice = st.radio("Format", list(FORMATS), horizontal=True, key="x_format")
    leave_out = st.checkbox("Leave out verified detections whose verdicts saw no imagery",
                            key="x_leave_out_unseen")
    if st.button("Prepare the file", type="primary", disabled=count == 0, key="x_prepare"):
        name = FORMATS[choice]
        try:
            common.require(db, "export")
            content, (written, unseen) = export.file_bytes(db, name, filters,
                                                           by=common.user(db).name,
                                                           leave_out_unseen=leave_out)
        except ReviewError as exc:
            st.error(str(exc))
            return
        st.session_state["export_file"] = (name, content, written, len(unseen), leave_out)
    if "export_file" in st.session_state:
        name, content, written, unseen, left_out = st.session_state["export_file"]
        if unseen:
            st.warning(f"{unseen:,} verified detection{'s rest' if unseen != 1 else ' rests'} on "
                       "verdicts given with no imagery on screen: "
                       + ("left out of this file." if left_out else
                          "they are in this file; tick the box above to leave them out."))
        st.download_button(f"Download {name} ({written:,} detections)", content, name, key="x_download")
    _publication(db)
    st.subheader("Training samples")
    st.caption("Reviewed detections as labelled points (label 1 = verified, 0 = false "
               "positive) in earthrise's sampling-location schema, to feed the next model.")
    if st.button("Prepare training samples", key="x_samples"):
        try:
            common.require(db, "export")
        except ReviewError as exc:
            st.error(str(exc))
            return
        content, written = export.training_samples_bytes(db, filters)
        st.download_button(f"Download training_samples.geojson ({written} points)",
                           content, "training_samples.geojson", key="x_samples_download")


def _publication(db) -> None:
    """The checkpoint and key to publish beside a story, so readers can check the file."""
    kept = transparency_log.latest(db)
    if kept is None:
        st.caption("Each export signs the verdict log; its checkpoint and key appear here.")
        return
    with st.expander(f"Publish with the file: checkpoint of {kept.checkpoint.size:,} verdicts "
                     f"({kept.created_at[:16].replace('T', ' ')} UTC)"):
        st.caption("Put both beside the story. A reader checks the GeoJSON with `python -m "
                   "review verify-export FILE --key KEY`; anyone holding the database checks "
                   "that its log still holds with `verify-log --checkpoint FILE --key KEY`.")
        st.caption("The signed checkpoint (C2SP signed note):")
        st.code(kept.note, language=None, wrap_lines=True)
        st.caption("The verifier key:")
        st.code(kept.key, language=None, wrap_lines=True)


def _evidence(db) -> None:
    st.subheader("Evidence pack")
    detection_id = st.number_input("Detection id", min_value=1, step=1, key="x_evidence_id",
                                   value=export.latest_verified(db),
                                   placeholder="the id of a detection",
                                   help="starts at the detection verified most recently")
    if st.button("Make the evidence picture", key="x_evidence", disabled=detection_id is None):
        try:
            common.require(db, "evidence")
            png = export.evidence_png(db, int(detection_id))
        except ReviewError as exc:
            st.error(str(exc))
        else:
            st.image(png, caption=f"Detection #{int(detection_id)}")
            st.download_button("Download PNG", png, f"detection_{int(detection_id)}.png",
                               "image/png", key="x_evidence_download")
