"""Assessment: how much was really mined, from a stratified random sample of labelled points.

Editors create designs over a region and period; everyone sees each design's progress per
stratum, its estimate (mined area with its intervals beside the mapped area, and the
accuracies) and a map of its points coloured by label. Points are labelled on the Review
page, order "assessment points".
"""
from __future__ import annotations

import html

import pandas as pd
import pydeck
import streamlit as st

from .. import settings
from ..analysis import area_results, assessment, map_layers
from ..analysis.trends import area_of_interest
from ..errors import ReviewError, sentence
from ..judging import queue
from . import common

LABEL_COLOURS = {"pending": [150, 150, 150], "needs_second_opinion": [171, 82, 185],
                 "disputed": [118, 42, 131], "mining": [215, 48, 31],
                 "not_mining": [43, 131, 186], "unsure": [253, 174, 97]}
LABEL_WORDS = {"pending": "not labelled", "needs_second_opinion": "waiting for a second opinion",
               "disputed": "disputed", "mining": "mining", "not_mining": "not mining",
               "unsure": "can't tell"}
MAP_HEIGHT = 420


def page() -> None:
    db = common.page("Assessment")
    if db is None:
        return
    st.caption("Mined area counting what the detector missed: points drawn at random over a "
               "whole region, in strata (the detections, a ring around them, the rest), labelled "
               "by eye on the Review page (order \"assessment points\"), give the area with its "
               "interval and the detector's accuracy (Olofsson et al. 2014; Stehman 2014).")
    designs = assessment.listing(db)
    if common.user(db).can("assess"):
        _create_form(db)
    if not designs:
        st.info("No assessment yet. An editor creates one here, or from the command line: "
                "`python -m review assess design NAME --region AOI.geojson --period 2024`.")
        return
    names = {d["name"]: d for d in designs}
    chosen = st.selectbox("Assessment", list(names)[::-1], key="assessment_name")
    design = assessment.get(db, chosen)
    _design_view(db, design)


def _design_view(db, design: assessment.Design) -> None:
    result = area_results.estimate(db, design)
    figures = result.to_json()
    st.markdown(f"**{design.name}** · period {design.period.label} · {design.sizing}")
    progress = pd.DataFrame([{
        "stratum": s["name"], "area (ha)": round(s["area_ha"], 1), "units (n)": s["n"],
        "labelled": s["labelled"], "mining": s["mining"], "can't tell": s["unsure"],
        "progress": (s["labelled"] + s["unsure"]) / s["n"] if s["n"] else 1.0}
        for s in figures["strata"]])
    st.dataframe(progress, hide_index=True, column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                    format="percent")})
    _estimate(figures)
    for note in figures["notes"]:
        st.caption(sentence(note))
    _units_map(db, design)


def _estimate(figures: dict) -> None:
    mining = figures["mining"]
    columns = st.columns(4)
    if mining["area_ha"] is None:
        columns[0].metric("Estimated mined area", "not yet")
    else:
        robust = mining.get("robust") or {}
        interval = ("" if robust.get("low_ha") is None
                    else f"95% (robust): {robust['low_ha']:,.0f} to {robust['high_ha']:,.0f} ha")
        columns[0].metric("Estimated mined area", f"{mining['area_ha']:,.0f} ha", help=(
            "Robust 95% interval (" + (robust.get("method") or "") + "); the good-practice "
            "interval (±1.96 SE) is given below it"))
        if interval:
            columns[0].caption(interval)
        if mining["ci95_low_ha"] is not None:
            columns[0].caption(f"±1.96 SE: {mining['ci95_low_ha']:,.0f} to "
                               f"{mining['ci95_high_ha']:,.0f} ha")
    columns[1].metric("Mapped area (detections)", f"{figures['mapped_area_ha']:,.0f} ha")
    for column, key, words in ((columns[2], "users_accuracy", "User's accuracy"),
                               (columns[3], "producers_accuracy", "Producer's accuracy")):
        value = figures[key]
        if value is None or value.get("value") is None:
            column.metric(words, "not yet")
        else:
            column.metric(words, f"{value['value']:.0%}",
                          help="share of the detections' ground that is mining" if key == "users_accuracy"
                          else "share of the mined ground the detector found")
            if value.get("se") is not None:
                column.caption(f"SE {value['se']:.1%}")
    overall = figures["overall_accuracy"]
    if overall and overall.get("value") is not None:
        st.caption(f"Overall accuracy {overall['value']:.1%}"
                   + ("" if overall.get("se") is None else f" (SE {overall['se']:.1%})")
                   + f" · {figures['labelled']} of {figures['n']} units labelled"
                   + ("" if figures["complete"] else " · the sample is not complete"))


def _units_map(db, design: assessment.Design) -> None:
    units = assessment.units(db, design)
    if not units:
        return
    counts = pd.Series([u["status"] for u in units]).value_counts()
    st.html('<div style="font-size:0.9rem">' + "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:1.2em">'
        f'<span style="display:inline-block;width:12px;height:12px;border-radius:50%;'
        f'background:rgb{tuple(LABEL_COLOURS.get(status, [0, 0, 0]))};margin-right:0.4em"></span>'
        f'{html.escape(LABEL_WORDS.get(status, status))} ({counts[status]:,})</span>'
        for status in LABEL_COLOURS if status in counts) + "</div>")
    rows = [{"position": [u["lon"], u["lat"]], "colour": LABEL_COLOURS.get(u["status"], [0, 0, 0]),
             "label": LABEL_WORDS.get(u["status"], u["status"])} for u in units]
    bounds = assessment.region_of(db, design.id)[0].bounds
    style = map_layers.raster_style(settings.basemap_url(), settings.basemap_name())
    layer = pydeck.Layer("ScatterplotLayer", data=rows, get_position="position",
                         get_fill_color="colour", get_radius=80, radius_units="meters",
                         radius_min_pixels=3, radius_max_pixels=8, pickable=True,
                         stroked=True, get_line_color=[255, 255, 255], line_width_min_pixels=1)
    view = pydeck.ViewState(**map_layers.view_state(bounds, 900, MAP_HEIGHT))
    st.pydeck_chart(pydeck.Deck(layers=[layer], initial_view_state=view, map_style=style,
                                tooltip={"text": "{label}"}), height=MAP_HEIGHT)


def _create_form(db) -> None:
    with st.expander("New assessment (editors)"):
        with st.form("new_assessment"):
            name = st.text_input("Name", placeholder="e.g. Tapajós 2024", key="as_name")
            region = st.file_uploader("Region (GeoJSON polygons)", type=["geojson", "json"],
                                      key="as_region")
            period = st.text_input("Period", placeholder="2024, or 2024-01-01/2024-06-30",
                                   key="as_period")
            sources = st.multiselect("Only these sources", queue.sources(db), key="as_sources")
            columns = st.columns(4)
            near_m = columns[0].number_input("Ring around detections (m)", 0, 100_000, 1000, 100,
                                             help="0 leaves the ring stratum out")
            n_detected = columns[1].number_input("Points in detections", 0, 5000, 50)
            n_near = columns[2].number_input("Points in the ring", 0, 5000, 50)
            n_rest = columns[3].number_input("Points in the rest", 0, 5000, 100)
            seed = st.number_input("Seed", 1, 10**9, 1)
            submitted = st.form_submit_button("Draw the points")
        if not submitted:
            return
        try:
            common.require(db, "assess")
            if region is None:
                raise ReviewError("upload the region first")
            chosen = assessment.parse_period(period)
            names = ["detected", "near", "rest"] if near_m else ["detected", "rest"]
            sizes = [n_detected, n_near, n_rest] if near_m else [n_detected, n_rest]
            with common.uploaded_file(region) as path, st.spinner("Drawing the strata and points…"):
                strata = assessment.make_strata(db, area_of_interest(path), chosen, names,
                                                float(near_m) if near_m else None, sources or None)
                sizes, how = assessment.sizes_for(strata, [int(n) for n in sizes])
                design = assessment.create(db, name, strata, sizes, how, seed=int(seed),
                                           by=common.reviewer_name(db) or None)
        except ReviewError as exc:
            common.show_error(exc)
            return
        st.success(design.summary() + " Label the points on the Review page (order "
                   f"\"assessment points: {design.name}\").")
