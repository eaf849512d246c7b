"""Sites: detections grouped by place across periods (review.analysis.sites). A list with filters,
a build action for editors, one site through time (map, area per period, before/after
chips of each period, the verdicts of its detections, field reports), and trends by site.

Other pages open a site with `open_site(id)` (or `site_link`, `open_site_of`); the page
also opens `?site=ID`.
"""
from __future__ import annotations

import base64
import json

import plotly.graph_objects as go
import pydeck as pdk
import streamlit as st

from .. import settings
from ..analysis import sites
from ..analysis.site_trends import site_trend_table
from ..analysis.sites import SITE_STATUSES, STATES
from ..analysis.trends import data_version
from ..errors import ReviewError
from . import common, field_reports, site_dossier, site_views

PAGE = "app_pages/6_Sites.py"
CHART_CONFIG = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}
STATE_COLOURS = {state: "rgb({}, {}, {})".format(*rgb) for state, rgb in site_views.STATE_COLOURS.items()}


# ------------------------------------------------------------- ways in from other pages


def open_site(site_id: int) -> None:
    """Go to the Sites page showing this site."""
    st.session_state["open_site"] = int(site_id)
    st.switch_page(PAGE)


def site_link(db, detection_id: int) -> None:
    """A small button to the site a detection belongs to (nothing when it has none)."""
    site_id = sites.site_of(db, detection_id)
    if site_id is not None and st.button(f"Site #{site_id} through time →", type="tertiary",
                                         key="open_site_link"):
        open_site(site_id)


def open_site_of(db, detection_id: int) -> None:
    """Open the site of a detection, or say why there is none."""
    site_id = sites.site_of(db, detection_id)
    if site_id is None:
        st.info(f"Detection #{detection_id} belongs to no site yet: build the sites on the "
                "Sites page.")
    else:
        open_site(site_id)


def trends_link() -> None:
    """A button from another page (e.g. Trends) to the trends by site."""
    if st.button("Trends by site, and each site through time →", type="tertiary",
                 key="open_site_trends"):
        st.switch_page(PAGE)


# -------------------------------------------------------------------------------- page


def page() -> None:
    db = common.page("Sites")
    if db is None:
        return
    built = sites.last_build(db)
    _build_section(db, built)
    if built is None:
        st.info("Sites have not been built yet. Sites group the detections of every period "
                "and source by place, so you can see which mines are new, which grow and "
                "which went quiet." + ("" if _may_build(db) else
                                       " An editor builds them (or run `python -m review sites build`)."))
        return
    st.caption(f"Last built {built['built_at'][:16].replace('T', ' ')}: {built['sites']:,} sites "
               f"from {built['detections']:,} detections, footprints within "
               f"{built['distance_m']:g} m joined, followed by {built['by']}, expanding above "
               f"{built['growth']:.0%} growth.")
    site_id = _opened_site(db)
    if site_id is not None:
        _site_view(db, site_id)
        st.divider()
    listing, trends = st.tabs(["Site list", "Trends by site"])
    with listing:
        _site_list(db)
    with trends:
        _site_trends(db)


def _opened_site(db) -> int | None:
    """The site to show: handed over by another page, picked here, or in the address."""
    state = st.session_state
    if "open_site" in state:
        st.query_params["site"] = str(int(state.pop("open_site")))
    with st.sidebar:
        st.caption("Open a site")
        picked = st.number_input("Site id", min_value=1, step=1, value=None, key="si_site")
        by_detection = st.number_input("…or the site of detection id", min_value=1, step=1,
                                       value=None, key="si_detection")
        if st.button("Open", key="si_open"):
            if by_detection is not None:
                found = sites.site_of(db, int(by_detection))
                if found is None:
                    st.error(f"Detection #{int(by_detection)} belongs to no site: it does not "
                             "exist or came in after the last build.")
                else:
                    st.query_params["site"] = str(found)
            elif picked is not None:
                st.query_params["site"] = str(int(picked))
    text = st.query_params.get("site")
    if text is None:
        return None
    if not str(text).isdigit():
        st.error(f"{text!r} is not a site id.")
        return None
    return int(text)


def _may_build(db) -> bool:
    """Whether the page offers the build (the build itself checks the role again)."""
    return common.user(db).can("sites")


def _build_section(db, built: dict | None) -> None:
    if not _may_build(db):
        return
    with st.expander("Build sites" if built is None else "Rebuild sites", expanded=built is None):
        st.caption("Groups every detection into sites; a rebuild keeps site ids (a merged site "
                   "keeps the oldest id) and takes a few seconds for tens of thousands.")
        columns = st.columns(3)
        distance = columns[0].number_input(
            "Join footprints within (metres)", min_value=1.0, max_value=sites.MAX_DISTANCE_M,
            value=float(built["distance_m"]) if built else sites.DEFAULT_DISTANCE_M, step=10.0,
            key="sb_distance")
        growth = columns[1].number_input(
            "Expanding above growth (%)", min_value=0.0, max_value=1000.0,
            value=float(built["growth"] * 100) if built else sites.DEFAULT_GROWTH * 100, step=5.0,
            key="sb_growth")
        by = columns[2].radio("Follow by", ["year", "quarter"], horizontal=True, key="sb_by",
                              index=1 if built and built["by"] == "quarter" else 0)
        if st.button("Build sites", type="primary", key="sb_build"):
            bar = st.progress(0.0, text="Reading footprints…")
            try:
                common.require(db, "sites")
                report = sites.build(db, distance, growth / 100, by,
                                     progress=common.moves(bar, lambda done, total, what: what))
            except ReviewError as exc:
                bar.empty()
                st.error(str(exc))
            else:
                st.session_state["sites_built"] = report.summary()
                st.rerun()
    if "sites_built" in st.session_state:
        st.success(st.session_state.pop("sites_built"))


# ------------------------------------------------------------------------ the site list


def _version(db) -> tuple:
    """Changes whenever the site list or the trends by site could: a build, a detection, a
    verdict (site statuses), a setting."""
    build = sites.last_build(db)
    return data_version(db) + ((build or {}).get("id"),)


# Kept while the data stay the same: opening a site, or any click on this page, does not
# read every site again (about a second at 20,000 detections).
@st.cache_data(max_entries=16, show_spinner=False)
def _site_list_table(_db, version: tuple, state, period, status):
    return sites.site_table(_db, state=state, period=period, status=status)


@st.cache_data(max_entries=4, show_spinner=False)
def _trends_by_site(_db, version: tuple):
    return site_trend_table(_db)


def _site_list(db) -> None:
    options = sites.periods(db)
    columns = st.columns(3)
    state = columns[0].selectbox("State", ["all", *STATES], key="sl_state")
    period = columns[1].selectbox("Period", ["all", *options], key="sl_period")
    status = columns[2].selectbox("Site status", ["all", *SITE_STATUSES], key="sl_status",
                                  help="From its detections: verified if any is verified, false "
                                       "positive if all are, unsure if all are reviewed and some "
                                       "unsure, pending otherwise.")
    try:
        table = _site_list_table(db, _version(db), None if state == "all" else state,
                                 None if period == "all" else period,
                                 None if status == "all" else status)
    except ReviewError as exc:
        st.error(str(exc))
        return
    listed = table['site_id'].nunique()
    unlisted = ""
    if state == period == status == "all":
        # Sites of detections without a period have no period row to list.
        periodless = db.execute("select count(*) from sites where id not in "
                                "(select site_id from site_periods)").fetchone()[0]
        if periodless:
            many = periodless != 1
            unlisted = (f" {periodless:,} more site{'s' if many else ''} of detections without a "
                        f"period {'are' if many else 'is'} not listed (no period to list "
                        f"{'them' if many else 'it'} by); open one by its id above.")
    st.caption(f"{listed:,} sites, {len(table):,} rows (one per site and period). Select a row "
               f"to open its site.{unlisted}")
    # A new selection widget for each filter, so a row number never points at another site.
    event = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                         key=f"sl_table_{state}_{period}_{status}", column_config={
                             "area_ha": st.column_config.NumberColumn(format="%.2f"),
                             "area_ha_cumulative": st.column_config.NumberColumn(format="%.2f"),
                             "lon": st.column_config.NumberColumn(format="%.5f"),
                             "lat": st.column_config.NumberColumn(format="%.5f")})
    rows = list(event.selection.rows) if event is not None else []
    chosen = int(table.iloc[rows[0]]["site_id"]) if rows and rows[0] < len(table) else None
    if chosen is not None and st.session_state.get("sl_chosen") != chosen:
        st.session_state["sl_chosen"] = chosen
        st.query_params["site"] = str(chosen)
        st.rerun()
    st.download_button("Download the list (CSV)", table.to_csv(index=False), "sites.csv",
                       "text/csv", key="sl_csv")


# ------------------------------------------------------------------------ one site


def _site_view(db, site_id: int) -> None:
    try:
        site = sites.summary(db, site_id)
    except ReviewError as exc:
        st.error(str(exc))
        return
    head, close = st.columns([6, 1])
    head.subheader(f"Site #{site_id} · {site['status'].replace('_', ' ')} · "
                   f"{site['area_ha']:,.2f} ha")
    if close.button("Close", key="sv_close"):
        st.query_params.pop("site", None)        # the row chosen in the list stays chosen
        st.rerun()
    counts = ", ".join(f"{site[s]} {s.replace('_', ' ')}" for s in SITE_STATUSES if site[s])
    merged = "; ".join(f"site {m['absorbed_id']} merged into {m['into_id']} "
                       f"({m['merged_at'][:10]})" for m in site["merges"])
    many = "s" if site["detections"] != 1 else ""
    st.caption(f"{site['detections']:,} detection{many} ({counts}) · first seen "
               f"{site['first_period'] or '?'} · last seen {site['last_period'] or '?'} · "
               f"{site['lat']:.5f}, {site['lon']:.5f}" + (f" · {merged}" if merged else ""))
    left, right = st.columns([1, 1])
    with left:
        _site_map(db, site_id)
    with right:
        _area_chart(db, site_id)
    _timeline(db, site_id)
    site_views.series_section(db, site_id)
    _members(db, site_id)
    field_reports.site_reports(db, site_id)
    site_dossier.dossier_button(db, site_id)


def _site_map(db, site_id: int) -> None:
    data = site_views.map_data(db, site_id)
    deck = pdk.Deck(
        layers=[
            pdk.Layer("GeoJsonLayer", data["footprints"], id="footprints", pickable=True,
                      filled=True, stroked=True, get_fill_color="properties.colour",
                      get_line_color=[60, 60, 60, 200], line_width_min_pixels=1),
            pdk.Layer("GeoJsonLayer", data["outline"], id="site", pickable=True, filled=False,
                      stroked=True, get_line_color="properties.colour", line_width_min_pixels=3)],
        initial_view_state=pdk.ViewState(longitude=data["lon"], latitude=data["lat"],
                                         zoom=data["zoom"]),
        map_style=_map_style(), tooltip={"text": "{label}"})
    st.pydeck_chart(deck, height=380, key="sv_map")
    st.caption("Footprints coloured by the state of their period: "
               + " · ".join(f"{state.replace('_', ' ')} {colour}" for state, colour in
                            (("new", "red"), ("expanding", "orange"), ("stable", "blue")))
               + f"; the site's outline in the colour of its status. Basemap: {settings.basemap_name()} "
               "(current imagery, not dated; plain grey where this browser cannot reach it, "
               "offline for one).")


def _map_style() -> str:
    """The configured basemap's tiles (as on the Review page) over a plain background, as
    a style inlined in a data: URL: no style file or script from a CDN, and offline the
    background stays."""
    style = {"version": 8, "sources": {"basemap": {
        "type": "raster", "tiles": [settings.basemap_url()], "tileSize": 256, "maxzoom": 19,
        "attribution": settings.basemap_name()}},
        "layers": [{"id": "background", "type": "background", "paint": {"background-color": "#e8e6df"}},
                   {"id": "basemap", "type": "raster", "source": "basemap"}]}
    return "data:application/json;base64," + base64.b64encode(json.dumps(style).encode()).decode()


def _area_chart(db, site_id: int) -> None:
    table = sites.site_table(db, site_id=site_id)
    figure = go.Figure()
    figure.add_bar(x=table["period"], y=table["area_ha"], name="area seen",
                   marker_color=[STATE_COLOURS.get(s, "#999") for s in table["state"]],
                   customdata=list(zip(table["state"].str.replace("_", " "), table["detections"])),
                   hovertemplate="%{x}: %{y:,.2f} ha, %{customdata[0]} "
                                 "(%{customdata[1]} detections)<extra></extra>")
    figure.add_scatter(x=table["period"], y=table["area_ha_cumulative"], mode="lines+markers",
                       name="cumulative", line_color="#444",
                       hovertemplate="%{x}: %{y:,.2f} ha so far<extra></extra>")
    figure.update_layout(title="Area per period (ha), bars coloured by state", height=380,
                         xaxis_type="category", yaxis_title="hectares",
                         margin={"t": 40, "b": 30, "l": 50, "r": 10},
                         legend={"orientation": "h", "y": -0.15})
    st.plotly_chart(figure, config=CHART_CONFIG, key="sv_area")


def _timeline(db, site_id: int) -> None:
    st.markdown("**Before and after, period by period**")
    with st.spinner("Rendering chips…"):
        views = site_views.timeline(db, site_id)
    if not any(view.chips for view in views):
        st.info("No stored imagery covers this site yet, so there is no timeline to show. "
                "Store scenes of this place (Detect, or `python -m review scenes add`); the "
                "timeline is drawn from them.")
        return
    for view in views:
        label, before, after = st.columns([1, 2, 2])
        label.markdown(f"**{view.period}**")
        label.caption(f"{(view.state or 'no state').replace('_', ' ')} · {view.area_ha:,.2f} ha")
        if view.message:
            before.caption(view.message.capitalize() + ".")
            continue
        if len(view.chips) == 2:
            before.image(view.chips[0].image, caption=f"Before: {view.chips[0].caption}", width=300)
        else:
            before.caption("No earlier stored scene covers this site.")
        after.image(view.chips[-1].image, caption=f"After: {view.chips[-1].caption}", width=300)


def _members(db, site_id: int) -> None:
    table = sites.member_table(db, site_id, viewer=common.reviewer_name(db))
    st.markdown(f"**Its detections and their verdicts ({len(table)})**")
    st.dataframe(table, hide_index=True, key="sv_members", column_config={
        "area_ha": st.column_config.NumberColumn(format="%.2f"),
        "score": st.column_config.NumberColumn(format="%.3f")})
    if table.empty:
        return
    pick, go_button = st.columns([2, 1], vertical_alignment="bottom")
    chosen = pick.selectbox("Open a detection in Review", table["id"].tolist(), key="sv_open_id")
    if go_button.button("Open in Review", key="sv_open"):
        st.session_state["open_detection"] = int(chosen)
        st.switch_page("app_pages/2_Review.py")


# ------------------------------------------------------------------------ trends by site


def _site_trends(db) -> None:
    try:
        table = _trends_by_site(db, _version(db))
    except ReviewError as exc:
        st.error(str(exc))
        return
    if table.empty:
        st.info("No site has a dated detection, so there are no trends by site.")
        return
    st.caption("Per period: sites seen for the first time and their area, how much expanding "
               "sites grew over the previous period each was seen in, and the mined area of all "
               "sites seen so far (each footprint counted once); for all sites and for verified ones. "
               "Areas are those of the footprints, in EPSG:6933 (the website layers' footprints "
               "outline their mined patches, so they are about four times their 'Mined area (ha)').")
    area = go.Figure()
    area.add_bar(x=table["period"], y=table["area_ha_new"], name="new sites", marker_color="#d7301f")
    area.add_bar(x=table["period"], y=table["area_ha_expanding"], name="growth of expanding sites",
                 marker_color="#fdae61")
    area.add_bar(x=table["period"], y=table["area_ha_new_verified"], name="new sites, verified",
                 marker_color="#7f0000")
    area.add_bar(x=table["period"], y=table["area_ha_expanding_verified"],
                 name="growth, verified", marker_color="#b35806")
    area.update_layout(barmode="group", title="New and expanding area per period (ha)",
                       xaxis_type="category", yaxis_title="hectares", height=360)
    st.plotly_chart(area, config=CHART_CONFIG, key="st_area")
    left, right = st.columns(2)
    cumulative = go.Figure()
    cumulative.add_scatter(x=table["period"], y=table["area_ha_cumulative"], mode="lines+markers",
                           name="all sites")
    cumulative.add_scatter(x=table["period"], y=table["area_ha_cumulative_verified"],
                           mode="lines+markers", name="verified sites")
    cumulative.update_layout(title="Cumulative mined area (ha)", xaxis_type="category",
                             yaxis_title="hectares", height=320)
    left.plotly_chart(cumulative, config=CHART_CONFIG, key="st_cumulative")
    new = go.Figure()
    new.add_bar(x=table["period"], y=table["sites_new"], name="all", marker_color="#d7301f")
    new.add_bar(x=table["period"], y=table["sites_new_verified"], name="verified",
                marker_color="#7f0000")
    new.update_layout(barmode="group", title="New sites per period", xaxis_type="category",
                      height=320)
    right.plotly_chart(new, config=CHART_CONFIG, key="st_new")
    st.dataframe(table, hide_index=True, key="st_table")
    st.download_button("Download trends by site (CSV)", table.to_csv(index=False),
                       "site_trends.csv", "text/csv", key="st_csv")
