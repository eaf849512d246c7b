"""Map: every detection that matches the filters, coloured by status; a click opens it in Review.

Drawn with deck.gl through `st.pydeck_chart`: deck.gl ships inside Streamlit's own
frontend, so the map's code is served by the app and the detections show even offline;
only the basemap tiles come from the internet (a note says when they cannot load).
"""
from __future__ import annotations

import html
import json

import pandas as pd
import pydeck
import streamlit as st

from .. import settings
from ..analysis import map_layers
from ..analysis.map_layers import STATUS_LABELS, chosen_detection, deck_json, hex_colour, map_data
from ..judging import queue
from . import common
from . import sites as sites_ui

MAP_HEIGHT = 560
TABLE_ROWS = 1000


class _PreparedDeck(pydeck.Deck):
    """A pydeck Deck whose JSON was written by review.analysis.map_layers (in bulk, not row by row)."""

    def __init__(self, spec: str, tooltip: dict):
        super().__init__(layers=[], tooltip=tooltip)
        self._spec = spec

    def to_json(self) -> str:
        return self._spec


@st.cache_data(max_entries=4, show_spinner=False)
def _prepared(_db, key: tuple, version: tuple, _filters, map_style: str) -> tuple[str, dict, tuple | None]:
    data = map_data(_db, _filters)
    return deck_json(data, map_style, height_px=MAP_HEIGHT), data.counts(), data.bounds


def _version(db) -> tuple:
    """Changes whenever what the map draws may change: a detection added, a verdict recorded,
    a status re-derived (a second-opinion setting switched), sites rebuilt (the site filter),
    a context layer added, removed or brought up to date: the cache key's data part."""
    return tuple(db.execute(
        "select (select count(*) from detections), (select max(id) from detections), "
        "(select max(id) from verdicts), (select group_concat(status || ':' || n) from "
        "(select status, count(*) as n from detections group by status order by status)), "
        "(select group_concat(key || '=' || value || '@' || updated_at) from project_settings), "
        "(select max(id) from site_builds), "
        "(select group_concat(id || ':' || checked_through) from context_layers)").fetchone())


def page() -> None:
    db = common.page("Map")
    if db is None:
        return
    filters = common.filters_sidebar(db, with_status=True)
    style = map_layers.raster_style(settings.basemap_url(), settings.basemap_name())
    with st.spinner("Preparing the detections…"):
        spec, counts, bounds = _prepared(db, filters.key(), _version(db), filters, style)
    total = sum(counts.values())
    if not total:
        st.info("No detections match these filters. Import detections on Home, or run a "
                "detector on the Detect page; clear the filters in the sidebar to see all.")
        return
    st.caption(f"{total:,} detections match, every one drawn. Hover for details; click one "
               "to open it in Review.")
    _legend(counts)
    event = st.pydeck_chart(_PreparedDeck(spec, {"text": "#{i} · {t}"}), height=MAP_HEIGHT,
                            on_select="rerun", selection_mode="single-object", key="overview_map")
    _basemap_note(settings.basemap_url(), settings.basemap_name())
    chosen = chosen_detection(event)
    if chosen is not None:
        _open(chosen)
    _table(db, filters, total)


def _open(detection_id: int) -> None:
    st.session_state["open_detection"] = int(detection_id)
    st.switch_page("app_pages/2_Review.py")


def _table(db, filters, total: int) -> None:
    """The matching detections as a table (highest scores first), and opening one by its id:
    the keyboard's way to what a click on the map does."""
    rows = queue.listing(db, filters, order="score", limit=TABLE_ROWS)
    with st.expander(f"Table of the detections ({'the ' + format(TABLE_ROWS, ',') + ' highest scores' if total > TABLE_ROWS else 'all'})"):
        table = pd.DataFrame(rows)[["id", "source", "status", "score", "area_ha", "period_start"]]
        st.dataframe(table, hide_index=True)
    columns = st.columns([1, 3])
    chosen = columns[0].number_input("Open detection #", min_value=1, step=1, value=None,
                                     key="open_id")
    columns[1].write("")
    if columns[1].button("Open in Review", key="open_button", disabled=chosen is None):
        if not db.execute("select 1 from detections where id = ?", [int(chosen)]).fetchone():
            st.error(f"There is no detection #{int(chosen)}.")
            return
        _open(int(chosen))
    if columns[1].button("Open its site", key="open_its_site", disabled=chosen is None):
        sites_ui.open_site_of(db, int(chosen))


def _legend(counts: dict[str, int]) -> None:
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:1.2em">'
        f'<span style="display:inline-block;width:14px;height:14px;border-radius:3px;'
        f'background:{hex_colour(status)};margin-right:0.4em;border:1px solid #0003"></span>'
        f'{html.escape(STATUS_LABELS.get(status, status))} ({count:,})</span>'
        for status, count in reversed(list(counts.items())))
    st.html(f'<div data-testid="map-legend" style="font-size:0.9rem">{items}</div>')


def _basemap_note(tile_url: str, name: str) -> None:
    """A note under the map, shown only when the browser cannot load a basemap tile."""
    probe = tile_url.replace("{z}", "2").replace("{x}", "1").replace("{y}", "2")
    note = (f"The basemap ({name}) could not be loaded: no internet, or the network blocks it. "
            "The detections are drawn on a plain background; everything else on this page works.")
    st.html(f'<div id="basemap-note" role="status" hidden style="padding:0.5em 0.8em;'
            f'background:#fff4e5;border-radius:0.4em">{html.escape(note)}</div>'
            f'<script>(function(){{const img=new Image();'
            f'img.onerror=function(){{const n=document.getElementById("basemap-note");'
            f'if(n){{n.hidden=false;}}}};img.src={json.dumps(probe)};}})();</script>',
            unsafe_allow_javascript=True)
