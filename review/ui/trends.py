"""Trends: mined area per period by review status, precision, random-sample estimates."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..analysis import area_results, onset, sampling
from ..analysis.trends import (METHOD, SOURCE_METHOD, STATUS_COLUMNS, area_basis, data_version,
                               has_quarters, labelled_frame, precision_by_period, read_regions,
                               set_hidden, source_table, totals_by_period, trend_inputs,
                               trend_table)
from ..errors import ReviewError
from ..judging import queue
from . import common
from . import sites as sites_ui

COLOURS = {"verified": "#d7301f", "false_positive": "#2b83ba", "unsure": "#fdae61",
           "pending": "#bdbdbd", "needs_second_opinion": "#f768a1", "disputed": "#7a0177"}
CHART_CONFIG = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}


def page() -> None:
    db = common.page("Trends")
    if db is None:
        return
    with st.sidebar:
        by = st.radio("Period", ["year", "quarter"], horizontal=True, key="t_by")
        known_sources = queue.sources(db)
        sources = st.multiselect("Sources", known_sources, key="t_sources")
        region_upload = st.file_uploader("Regions (GeoJSON polygons)", type=["geojson", "json", "gpkg"],
                                         key="t_regions")
        region_field = st.text_input("…or group by this field of the detections (e.g. country)",
                                     key="t_region_field")
        layer, value = common.context_choice(db, "t_context")
    inside = (layer, value) if layer else None
    per_source, failed = None, False
    try:
        with common.uploaded_file(region_upload) as path:
            regions = None if path is None else read_regions(path)
        if regions is None:
            table, per_source = _tables(db, data_version(db), by, region_field or None,
                                        tuple(sources), inside)
        else:
            table = trend_table(db, by=by, regions=regions, region_field=region_field or None,
                                sources=sources or None, context=inside)
    except ReviewError as exc:
        common.show_error(exc)
        inside, failed = None, True
        table = pd.DataFrame()                                    # nothing counted, nothing read
    if inside:
        st.caption(f"Only detections overlapping {layer}" + (f" ({value})" if value else "")
                   + ": each counts whole, also where it crosses the layer's edge (how much of "
                     "each lies inside: `python -m review context overlaps`).")
    if table.empty:
        # One sentence says why (or the error above does), not an empty chart, table and
        # download each saying it again.
        if not failed:
            st.info(f"No detection with a period overlaps {layer}" + (f" ({value})." if value else ".")
                    if inside else "No detections with a period yet: import or detect some, then "
                    "review them.")
    else:
        if by == "quarter" and not has_quarters(db, sources or None, context=inside):
            st.info("Every detection here covers a whole year, so the quarter view shows the "
                    "same periods as the year view. Quarters appear for detections whose period "
                    "lies within one quarter (e.g. website layers with year 202503).")
        st.caption(f"Area basis: {area_basis(table)}.")
        if per_source is None:
            per_source = source_table(db, by=by, sources=sources or None, context=inside)
        _charts(totals_by_period(table), per_source)
        st.subheader("Table")
        st.dataframe(table, hide_index=True)
        st.download_button("Download the table (CSV)", table.to_csv(index=False), "trends.csv",
                           "text/csv", key="t_csv")
        if len(per_source):
            with st.expander("Each source on its own"):
                st.caption(SOURCE_METHOD)
                st.dataframe(per_source, hide_index=True)
    _assessment_section(db)
    _onset_section(db)
    _hidden_section(db)
    if known_sources:                     # nothing to draw a sample from before an import
        _sample_section(db, known_sources)
    sites_ui.trends_link()


# Kept while the data stay the same (a million detections take seconds to count): changing
# a chart's view, or coming back to the page, does not count them again.
@st.cache_data(max_entries=8, show_spinner="Counting the detections…")
def _tables(_db, version: tuple, by: str, region_field: str | None, sources: tuple,
            inside) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trend table and each source's, from one read of the detections."""
    frame = labelled_frame(_db, by, list(sources) or None, context=inside)
    return (trend_table(_db, by=by, region_field=region_field, sources=list(sources) or None,
                        context=inside, frame=frame),
            source_table(_db, by=by, sources=list(sources) or None, context=inside, frame=frame))


def _charts(totals: pd.DataFrame, per_source: pd.DataFrame) -> None:
    bars = go.Figure()
    for status in STATUS_COLUMNS:
        bars.add_bar(x=totals["period"], y=totals[f"area_ha_{status}"], name=status.replace("_", " "),
                     marker_color=COLOURS[status], customdata=totals[status],
                     hovertemplate="%{x}: %{y:,.1f} ha in %{customdata} detections<extra>%{fullData.name}</extra>")
    bars.update_layout(title="Detected area by review status (ha), ground counted once",
                       barmode="stack", yaxis_title="hectares", xaxis_type="category", height=380)
    _show(bars, "chart_area", totals.empty, "No detections with a period: nothing to chart yet.")
    st.caption(METHOD)
    line = go.Figure()
    line.add_scatter(x=totals["period"], y=totals["area_ha_all"], mode="lines+markers",
                     name="all sources, ground counted once", line={"width": 4, "color": "#333"},
                     hovertemplate="%{x}: %{y:,.1f} ha, all sources<extra></extra>")
    for source, part in per_source.groupby("source", sort=True):
        basis = part["basis"].iloc[0]
        line.add_scatter(x=part["period"], y=part["area_ha"], mode="lines+markers",
                         name=f"{source} ({basis})",
                         hovertemplate=f"%{{x}}: %{{y:,.1f}} ha ({basis})<extra>{source}</extra>")
    line.update_layout(title="Detected area per period, every status: all sources, and each on its own (ha)",
                       yaxis_title="hectares", yaxis_rangemode="tozero", xaxis_type="category", height=380,
                       legend={"orientation": "h", "y": -0.2})
    _show(line, "chart_sources", totals.empty, "No detections with a period: nothing to chart yet.")
    st.caption("The thick line counts shared ground once (as above); each source's own line: "
               + SOURCE_METHOD[len("Per source: "):])
    cumulative = go.Figure()
    cumulative.add_scatter(x=totals["period"], y=totals["area_ha_cumulative"], mode="lines+markers",
                           name="all detections",
                           hovertemplate="%{x}: %{y:,.1f} ha cumulative<extra></extra>")
    if len(totals):
        cumulative.add_scatter(x=totals["period"], y=totals["area_ha_verified_cumulative"],
                               mode="lines+markers", name="verified",
                               hovertemplate="%{x}: %{y:,.1f} ha verified<extra></extra>")
    cumulative.update_layout(title="Cumulative area (ha), all detections and verified: the sum of the periods above",
                             yaxis_title="hectares", yaxis_rangemode="tozero", xaxis_type="category", height=340)
    _show(cumulative, "chart_cumulative", totals.empty, "No detections with a period: nothing to chart yet.")
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
    precision.update_layout(title="Precision of reviewed detections: verified / (verified + false "
                                  "positives), 95% Wilson interval",
                            yaxis_range=[0, 1], xaxis_type="category", height=320)
    _show(precision, "chart_precision", reviewed.empty,
          "No precision yet: no detection in these periods has been marked verified or false "
          "positive. Review some on the Review page (unsure ones do not count).")


@st.cache_data(show_spinner=False, max_entries=8)
def _assessment_rows(_db, version: tuple) -> list[dict]:
    return area_results.trend_rows(_db)


def _assessment_section(db) -> None:
    """Estimated mined area (with both intervals) beside the mapped and verified area, for
    the periods that have an assessment."""
    version = db.execute("select (select count(*) from assessments), (select max(id) from verdicts), "
                         "(select count(*) from detections)").fetchone()
    path = db.execute("pragma database_list").fetchone()[2]
    rows = _assessment_rows(db, (path, *version))
    if not rows:
        return
    st.subheader("Estimated mined area, counting what the detector missed")
    table = pd.DataFrame(rows)
    labels = [f"{r['period']} · {r['assessment']}" for r in rows]
    figure = go.Figure()
    figure.add_bar(x=labels, y=table["mapped_area_ha"], name="mapped (detections)",
                   marker_color="#bdbdbd", hovertemplate="%{x}: %{y:,.1f} ha mapped<extra></extra>")
    figure.add_bar(x=labels, y=table["verified_area_ha"], name="verified", marker_color=COLOURS["verified"],
                   hovertemplate="%{x}: %{y:,.1f} ha verified<extra></extra>")
    estimated = table["estimated_area_ha"].astype(float)
    figure.add_bar(
        x=labels, y=estimated, name="estimated (robust 95% interval)", marker_color="#222",
        error_y={"type": "data", "symmetric": False, "color": "#000", "thickness": 2, "width": 8,
                 "array": (table["robust_high_ha"].astype(float) - estimated).tolist(),
                 "arrayminus": (estimated - table["robust_low_ha"].astype(float)).tolist()},
        customdata=list(zip(table["robust_low_ha"], table["robust_high_ha"])),
        hovertemplate="%{x}: %{y:,.1f} ha estimated (95%: %{customdata[0]:,.0f} to "
                      "%{customdata[1]:,.0f})<extra></extra>")
    figure.update_layout(title="Mined area: estimated from labelled random points, beside the map (ha)",
                         barmode="group", yaxis_title="hectares", yaxis_rangemode="tozero",
                         xaxis_type="category", height=360)
    st.plotly_chart(figure, config=CHART_CONFIG, key="chart_assessment")
    st.caption(area_results.METHOD + " Progress and details: the Assessment page.")
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.1f") for c in table.columns if c.endswith("_ha")} | {
        c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if c.endswith("accuracy")})


def _onset_section(db) -> None:
    """New sites by the month their ground changed (onset), for sites with a time series."""
    table = onset.new_sites_by_month(db)
    answers = onset.counts(db)
    if table.empty:
        if sum(v for k, v in answers.items() if k != "no_series"):
            st.caption("No site with a time series has an onset found yet (the Sites page says why "
                       "for each).")
        return
    st.subheader("New sites by onset month")
    figure = go.Figure()
    figure.add_bar(x=table["month"], y=table["sites"], name="sites", marker_color="#bdbdbd",
                   hovertemplate="%{x}: %{y} sites<extra></extra>")
    figure.add_bar(x=table["month"], y=table["verified_sites"], name="of them verified",
                   marker_color=COLOURS["verified"],
                   hovertemplate="%{x}: %{y} verified sites<extra></extra>")
    figure.update_layout(title="Sites whose ground changed from vegetation to bare soil or water, by month",
                         barmode="overlay", yaxis_title="sites", xaxis_type="category", height=320)
    st.plotly_chart(figure, config=CHART_CONFIG, key="chart_onset")
    st.caption(f"From each site's Sentinel-2 time series (`python -m review timeseries`, or the site "
               f"view): {answers.get('found', 0)} sites with an onset, "
               f"{answers.get('not_found', 0)} where none was found, "
               f"{answers.get('not_enough', 0)} without enough clear observations and "
               f"{answers.get('no_series', 0)} without a series yet.")


def _show(figure: go.Figure, key: str, empty: bool, why: str) -> None:
    """A chart, or, when it would be empty axes, the reason it is empty."""
    if empty:
        st.info(f"{figure.layout.title.text}: {why}")
        return
    st.plotly_chart(figure, config=CHART_CONFIG, key=key)


def _hidden_section(db) -> None:
    inputs = trend_inputs(db)
    if inputs.empty:
        return
    hidden = int(inputs["hidden"].sum())
    title = "Imports and detector runs in Trends" + (f" ({hidden} hidden)" if hidden else "")
    with st.expander(title):
        st.caption("Leave test runs or imports out of Trends (they stay in Review, Map and Export).")
        can = common.user(db).can("import")
        if "t_hidden_error" in st.session_state:
            st.error(st.session_state.pop("t_hidden_error"))
        for row in inputs.itertuples():
            key = f"t_show_{row.kind}_{row.key}"
            # Each box shows what the database says now (someone else may have changed it);
            # only a click here changes it.
            st.session_state[key] = not row.hidden
            st.checkbox(f"{row.label} · {row.detections:,} detections", key=key, disabled=not can,
                        on_change=_toggle_hidden, args=(row.kind, row.key, key))


def _toggle_hidden(kind: str, item: str, key: str) -> None:
    db = common.connection()
    try:
        common.require(db, "import")
        set_hidden(db, kind, item, not st.session_state[key], by=common.reviewer_name(db) or None)
    except ReviewError as exc:
        st.session_state["t_hidden_error"] = str(exc)


def _sample_section(db, known_sources: list[str]) -> None:
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
        sources = st.multiselect("Stratum: sources", known_sources, key="s_sources")
        period_from = common.period_picker("Stratum: period from", "s_from")
        period_to = common.period_picker("Stratum: period to", "s_to")
        size = st.number_input("Detections to draw", 1, 10_000, 100, key="s_size")
        if st.form_submit_button("Draw sample"):
            try:
                common.require(db, "sample")
                sample_id = sampling.draw(db, name or "sample", queue.Filters(
                    sources=sources, period_from=period_from, period_to=period_to),
                    int(size))
            except ReviewError as exc:
                st.error(str(exc))
            else:
                st.success(f"Sample {sample_id} drawn; review it on the Review page.")
