"""Map: every detection that matches the filters, coloured by status; open one in Review."""
from __future__ import annotations

import html

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from .. import queue, verdicts
from . import common, sites as sites_ui

STATUS_COLOURS = {"pending": "#9e9e9e", "verified": "#d7301f", "false_positive": "#2b83ba",
                  "unsure": "#fdae61"}
MAP_LIMIT = 3000


def popup_html(row: dict, last_verdict: tuple | None) -> str:
    """A map popup; everything people typed is escaped."""
    lines = [f"<b>#{row['id']}</b> {html.escape(row['source'])}",
             f"status: {html.escape(row['status'])}",
             "score: " + ("-" if row["score"] is None else f"{row['score']:.3f}")]
    if last_verdict:
        reviewer, verdict, note = last_verdict
        lines.append(f"last: {html.escape(verdict)} by {html.escape(reviewer)}")
        if note:
            lines.append(f"note: {html.escape(note)}")
    return "<br>".join(lines)


def page() -> None:
    db = common.page("Map")
    if db is None:
        return
    filters = common.filters_sidebar(db, with_status=True)
    total = queue.count(db, filters)
    rows = queue.listing(db, filters, order="score", limit=MAP_LIMIT)
    st.caption(f"{total:,} detections match" + (f"; the {MAP_LIMIT:,} highest scores are drawn"
                                                 if total > MAP_LIMIT else ""))
    if not rows:
        st.info("No detections match these filters.")
        return
    last = verdicts.latest(db)
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    west, south, east, north = queue.extent(rows)
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
        st.switch_page("app_pages/2_Review.py")
    if st.button("Open its site", key="open_its_site"):
        sites_ui.open_site_of(db, int(chosen))
