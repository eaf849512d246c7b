"""Trends: mined area per period by review status, precision, random-sample estimates."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .. import queue, sampling
from ..errors import ReviewError
from ..trends import (STATUS_COLUMNS, area_basis, precision_by_period, read_regions,
                      totals_by_period, trend_table)
from . import common, sites as sites_ui

COLOURS = {"verified": "#d7301f", "false_positive": "#2b83ba", "unsure": "#fdae61",
           "pending": "#bdbdbd"}
CHART_CONFIG = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}


def page() -> None:
    db = common.page("Trends")
    if db is None:
        return
    with st.sidebar:
        by = st.radio("Period", ["year", "quarter"], horizontal=True, key="t_by")
        sources = st.multiselect("Sources", queue.sources(db), key="t_sources")
        region_upload = st.file_uploader("Regions (GeoJSON polygons)", type=["geojson", "json", "gpkg"],
                                         key="t_regions")
        region_field = st.text_input("…or group by this field of the detections (e.g. country)",
                                     key="t_region_field")
    try:
        with common.uploaded_file(region_upload) as path:
            regions = None if path is None else read_regions(path)
        table = trend_table(db, by=by, regions=regions, region_field=region_field or None,
                            sources=sources or None)
    except ReviewError as exc:
        st.error(str(exc))
        table = trend_table(db, by=by, sources=sources or None).iloc[0:0]
    if table.empty:
        st.info("No detections with a period yet: import or detect some, then review them.")
    st.caption(f"Area basis: {area_basis(table)}.")
    _charts(totals_by_period(table))
    st.subheader("Table")
    st.dataframe(table, hide_index=True)
    st.download_button("Download the table (CSV)", table.to_csv(index=False), "trends.csv",
                       "text/csv", key="t_csv")
    _sample_section(db)
    sites_ui.trends_link()


def _charts(totals: pd.DataFrame) -> None:
    bars = go.Figure()
    for status in STATUS_COLUMNS:
        bars.add_bar(x=totals["period"], y=totals[f"area_ha_{status}"], name=status.replace("_", " "),
                     marker_color=COLOURS[status], customdata=totals[status],
                     hovertemplate="%{x}: %{y:,.1f} ha in %{customdata} detections<extra>%{fullData.name}</extra>")
    bars.update_layout(barmode="stack", title="Mined area by review status (ha)",
                       yaxis_title="hectares", xaxis_type="category", height=380)
    st.plotly_chart(bars, config=CHART_CONFIG, key="chart_area")
    line = go.Figure()
    line.add_scatter(x=totals["period"], y=totals["area_ha_cumulative"], mode="lines+markers",
                     name="all detections", hovertemplate="%{x}: %{y:,.1f} ha cumulative<extra></extra>")
    if len(totals):
        line.add_scatter(x=totals["period"], y=totals["area_ha_verified_cumulative"],
                         mode="lines+markers", name="verified",
                         hovertemplate="%{x}: %{y:,.1f} ha verified<extra></extra>")
    line.update_layout(title="Cumulative mined area (ha)", yaxis_title="hectares",
                       xaxis_type="category", height=340)
    st.plotly_chart(line, config=CHART_CONFIG, key="chart_cumulative")
    reviewed = precision_by_period(totals)
    precision = go.Figure()
    if len(reviewed):
        precision.add_scatter(
            x=reviewed["period"], y=reviewed["precision"], mode="markers", name="precision",
            error_y={"type": "data", "symmetric": False, "array": reviewed["above"].tolist(),
                     "arrayminus": reviewed["below"].tolist()},
            customdata=list(zip(reviewed["verified"], reviewed["false_positive"])),
            hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} verified, %{customdata[1]} false "
                          "positives)<extra></extra>")
    precision.update_layout(title="Precision of reviewed detections (95% Wilson interval)",
                            yaxis_range=[0, 1], xaxis_type="category", height=320)
    st.plotly_chart(precision, config=CHART_CONFIG, key="chart_precision")


def _sample_section(db) -> None:
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
    if not common.user(db).can("sample"):
        return
    with st.form("draw_sample"):
        name = st.text_input("Sample name", key="s_name")
        sources = st.multiselect("Stratum: sources", queue.sources(db), key="s_sources")
        period_from = st.text_input("Stratum: period from", key="s_from")
        period_to = st.text_input("Stratum: period to", key="s_to")
        size = st.number_input("Detections to draw", 1, 10_000, 100, key="s_size")
        if st.form_submit_button("Draw sample"):
            try:
                common.require(db, "sample")
                sample_id = sampling.draw(db, name or "sample", queue.Filters(
                    sources=sources, period_from=period_from or None, period_to=period_to or None),
                    int(size))
            except ReviewError as exc:
                st.error(str(exc))
            else:
                st.success(f"Sample {sample_id} drawn; review it on the Review page.")
