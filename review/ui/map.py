"""Map: every detection that matches the filters, coloured by status; a click opens it in Review.

Drawn by review.ui.detection_map (deck.gl from binary columns, served by the app, so the
detections show even offline); the columns are read once per database state and filters,
and after a verdict only the changed statuses are sent again.
"""
from __future__ import annotations

import hashlib
import html
import json

import pandas as pd
import streamlit as st

from .. import settings
from ..analysis import map_layers, map_payload
from ..analysis.map_layers import STATUS_LABELS, hex_colour
from . import common, detection_map
from . import sites as sites_ui

TABLE_ROWS = 1000
OPENING = "_map_opening"


@st.cache_resource(max_entries=4, show_spinner=False)
def _columns(_db, token: str, _filters) -> map_layers.MapColumns:
    """The columns for this token (shared by every session: the map is the same for all)."""
    return map_layers.read_columns(_db, _filters, footprint_limit=settings.map_footprints())


def _base_version(db, filters) -> tuple:
    """Changes whenever the columns must be read again: a detection added or removed, a
    status re-derived (a second-opinion setting switched), sites rebuilt or a context layer
    changed (filters), and, when the filters depend on verdicts, any verdict. Other verdicts
    travel as changes."""
    verdict_part = ()
    if filters.status or filters.not_judged_by:
        verdict_part = db.execute("select coalesce(max(id), 0) from verdicts").fetchone()
    return tuple(db.execute(
        "select (select count(*) from detections), (select max(id) from detections), "
        "(select group_concat(key || '=' || value || '@' || updated_at) from project_settings), "
        "(select max(id) from site_builds), "
        "(select group_concat(id || ':' || checked_through) from context_layers)").fetchone()) + verdict_part


def _token(db, filters) -> str:
    path = db.execute("pragma database_list").fetchone()[2]
    text = repr((path, filters.key(), settings.map_footprints(), _base_version(db, filters)))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def page() -> None:
    db = common.page("Map")
    if db is None:
        return
    opening = st.session_state.pop(OPENING, None)
    if opening is not None:                 # a click on the map, caught before this run
        _open(opening)
    filters = common.filters_sidebar(db, with_status=True)
    token = _token(db, filters)
    with st.spinner("Preparing the detections…"):
        columns = _columns(db, token, filters)
    changes = map_layers.changes_since(db, columns)
    counts = columns.counts(changes)
    total = sum(counts.values())
    if not total:
        narrowed = common.filters_in_words(filters)
        if narrowed:
            st.info(f"No detections match the filters in the sidebar ({narrowed}); clear them "
                    "to see all.")
        else:
            st.info("No detections yet. Import detections on Home, or run a detector on the "
                    "Detect page.")
        return
    st.caption(f"{total:,} detections match, every one drawn. Hover for details; click one "
               "to open it in Review." + ("" if columns.all_footprints else
                                         " Zoom in to see their footprints."))
    _legend(counts)
    if columns.no_footprint:
        st.caption(f"{columns.no_footprint:,} of them have an empty or unreadable footprint: "
                   "each is drawn as its dot.")
    if not detection_map.served():
        st.info("The map cannot be drawn: this server does not serve the app's own files "
                "(static/ with deck.gl). Run it from the repository with `streamlit run app.py`. "
                "The table below lists the same detections.")
    else:
        _map(db, columns, token, changes)
    _table(db, columns, total)


def _map(db, columns, token: str, changes: list) -> None:
    view = (st.session_state.get("overview_map") or {}).get("view")
    holds = detection_map.browser_holds(token)
    view_footprints = None
    if not columns.all_footprints and _is_box(view):
        footprints, complete = map_layers.footprints_in_view(db, columns, tuple(view))
        view_footprints = (tuple(view), footprints, complete)
    extra = {"deck_url": detection_map.static_url(detection_map.DECK),
             "natural_earth_url": detection_map.static_url(detection_map.NATURAL_EARTH),
             "basemap_url": settings.basemap_url(), "basemap_name": settings.basemap_name()}
    message = map_payload.message(token, changes, None if holds else columns, view_footprints, extra)
    detection_map.show(message, token, key="overview_map",
                       on_open=lambda ident: st.session_state.__setitem__(OPENING, ident))
    _basemap_note(settings.basemap_url(), settings.basemap_name())


def _is_box(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, (int, float)) for v in value)
            and value[0] < value[2] and value[1] < value[3])


def _open(detection_id: int) -> None:
    st.session_state["open_detection"] = int(detection_id)
    st.switch_page("app_pages/2_Review.py")


def _table(db, columns, total: int) -> None:
    """The matching detections as a table (highest scores first), and opening one by its id:
    the keyboard's way to what a click on the map does."""
    rows = map_layers.highest_scores(db, columns, TABLE_ROWS)
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
    """A note under the map, shown only when the browser cannot load a basemap tile (the map
    then draws Natural Earth's borders, rivers and places, bundled with the app)."""
    probe = tile_url.replace("{z}", "2").replace("{x}", "1").replace("{y}", "2")
    note = (f"The basemap ({name}) could not be loaded: no internet, or the network blocks it. "
            "The map shows country borders, rivers and places from Natural Earth instead; "
            "everything else on this page works.")
    st.html(f'<div id="basemap-note" role="status" hidden style="padding:0.5em 0.8em;'
            f'background:#fff4e5;border-radius:0.4em">{html.escape(note)}</div>'
            f'<script>(function(){{const img=new Image();'
            f'img.onerror=function(){{const n=document.getElementById("basemap-note");'
            f'if(n){{n.hidden=false;}}}};img.src={json.dumps(probe)};}})();</script>',
            unsafe_allow_javascript=True)
