"""What the Sites page draws for one site: its map (footprints coloured by state and status,
a centre and a zoom that fit them), its timeline of before/after chips per period, and its
spectral time series with its onset (issue 27).

Read from review.analysis.sites, .spectral_series, .onset and review.review_imagery. The
drawing data (map_data, timeline, series_view) need no Streamlit, so tests can check them
directly; `series_section` is the one Streamlit part: the chart, the onset in words and the
button that fetches or updates the series with a progress bar.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import streamlit as st

from ..analysis import onset, sites, spectral_series
from ..errors import ReviewError, sentence
from ..progress import fraction
from ..review_imagery.preparation import scene_views

# (r, g, b) of a period's state and of a site's status, shared by the map and the charts.
STATE_COLOURS = {"new": [215, 48, 31], "expanding": [253, 174, 97], "stable": [43, 131, 186],
                 "not_seen": [189, 189, 189]}
STATUS_COLOURS = {"verified": [215, 48, 31], "false_positive": [43, 131, 186],
                  "unsure": [253, 174, 97], "pending": [158, 158, 158],
                  "needs_second_opinion": [247, 104, 161], "disputed": [122, 1, 119]}


def zoom_to_fit(west: float, south: float, east: float, north: float, pixels: int = 300) -> float:
    """A deck.gl / MapLibre (Web Mercator, 512-pixel world at zoom 0) zoom at which the box
    spans about `pixels` on its longer side: at zoom z a degree of longitude is
    512 * 2**z / 360 pixels, a degree of latitude that divided by cos(latitude)."""
    lat = math.radians((south + north) / 2)
    span = max(east - west, (north - south) / max(math.cos(lat), 0.01), 1e-6)
    return float(max(1.0, min(18.0, math.log2(360 * pixels / 512 / span))))


def map_data(db, site_id: int) -> dict:
    """What a map of one site draws: the dissolved footprint (coloured by the site's
    status), each member footprint (coloured by the state of its period), a centre and a
    zoom that fit them. All GeoJSON in lon/lat."""
    site = sites.summary(db, site_id)
    footprints = []
    for detection_id, geometry, period, state, status in sites.member_footprints(db, site_id):
        footprints.append({"type": "Feature", "geometry": json.loads(geometry), "properties": {
            "label": f"detection {detection_id} · {period or 'no period'} · {state or '-'} · {status}",
            "colour": STATE_COLOURS.get(state, [120, 120, 120]) + [110]}})
    outline = {"type": "Feature", "geometry": json.loads(site["geometry"]), "properties": {
        "label": f"site {site_id} · {site['status']} · {site['area_ha']:,.1f} ha",
        "colour": STATUS_COLOURS[site["status"]] + [255]}}
    west, south, east, north = site["west"], site["south"], site["east"], site["north"]
    return {"outline": {"type": "FeatureCollection", "features": [outline]},
            "footprints": {"type": "FeatureCollection", "features": footprints},
            "lon": (west + east) / 2, "lat": (south + north) / 2,
            "zoom": zoom_to_fit(west, south, east, north)}


@dataclass
class PeriodView:
    """One period of a site's timeline: the before and after chips of the site's ground
    from stored scenes ([] when none covers it), or why they cannot be shown."""

    period: str
    state: str | None
    area_ha: float
    chips: list
    message: str | None = None


def timeline(db, site_id: int) -> list[PeriodView]:
    """Per period the site was seen in: before/after chips of the whole site (its dissolved
    footprint outlined, the same ground in every period) from the stored scenes, picked as
    for one detection of that period (preparation.scene_views)."""
    site = sites.summary(db, site_id)
    views = []
    for period, start, end, state, area in sites.period_spans(db, site_id):
        place = {"id": f"site {site_id}", "geometry": site["geometry"], "west": site["west"],
                 "south": site["south"], "east": site["east"], "north": site["north"],
                 "period_start": start, "period_end": end}
        try:
            chips = scene_views(db, place)
        except ReviewError as exc:
            views.append(PeriodView(period, state, area, [], f"stored imagery could not be shown: {exc}"))
            continue
        message = None if chips else "no stored scene covers this site"
        after = chips[-1].imagery if chips else None
        if after is not None and after.start and not (
                after.start <= end and (after.end or after.start) >= start):
            chips, message = [], f"no stored scene of {period} covers this site"
        views.append(PeriodView(period, state, area, chips, message))
    return views


# ------------------------------------------------------------------ spectral time series

CHART_CONFIG = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}


@dataclass
class SeriesView:
    """A site's stored series as the site view shows it: the chart (None when nothing is
    stored), the onset, and a line saying what is stored."""

    figure: object | None
    onset: onset.Onset
    caption: str
    rows: int


def series_view(db, site_id: int) -> SeriesView:
    """From the database only: nothing is fetched."""
    place = spectral_series.site_place(site_id)
    rows = spectral_series.stored(db, place)
    found = onset.for_site(db, site_id)
    if not rows:
        return SeriesView(None, found, "No time series is stored for this site yet.", 0)
    periods, verdicts = spectral_series.marks(db, place)
    figure = spectral_series.figure(rows, periods, verdicts, onset=found)
    clear = sum(r["clear"] for r in rows)
    spans = ", ".join(f"{w['start']} to {w['end']}" for w in spectral_series.windows(db, place))
    caption = (f"{len(rows)} Sentinel-2 acquisitions stored ({spans or 'incomplete: fetch again'}), "
               f"{clear} clear over the footprint (at least {spectral_series.CLEAR_SHARE:.0%} of its "
               "pixels clear by the scene classification); medians of the footprint (solid) and of "
               "a ring 100-500 m around it (dotted). Grey: detection periods; triangles: verdicts.")
    return SeriesView(figure, found, caption, len(rows))


def series_section(db, site_id: int) -> None:
    """The site view's time series: chart and onset from the database at once; a button
    fetches (or updates) the series with a progress bar."""
    st.markdown("**Spectral time series and onset**")
    view = series_view(db, site_id)
    if view.figure is not None:
        st.plotly_chart(view.figure, config=CHART_CONFIG, key=f"sv_series_{site_id}")
        st.caption(view.caption)
        st.markdown(view.onset.words)
    else:
        st.info("No time series is stored for this site yet. Fetching reads every Sentinel-2 "
                "acquisition over it, from two years before its first detection period to the end "
                "of its last (a few minutes for three years).")
    label = "Update the time series" if view.figure is not None else "Fetch the time series"
    if st.button(label, key=f"sv_series_fetch_{site_id}"):
        bar = st.progress(0.0, text="Searching the Sentinel-2 catalogue…")

        def moved(done: int, total: int | None, what: str) -> None:
            bar.progress(fraction(done, total), text=f"Reading scene {done} of {total}")

        try:
            summary = spectral_series.fetch(db, spectral_series.site_place(site_id), progress=moved)
        except ReviewError as exc:
            bar.empty()
            st.error(sentence(str(exc)))
            return
        bar.empty()
        st.session_state["sv_series_done"] = summary.lines()
        st.rerun()
    done = st.session_state.pop("sv_series_done", None)
    if done:
        st.success(sentence(done[0]))
        for line in done[1:]:            # one line per reason a scene was left out
            st.warning(sentence(line))
