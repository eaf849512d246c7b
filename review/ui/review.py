"""Review: one detection at a time, before and after side by side, a verdict per key."""
from __future__ import annotations

import json

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from .. import queue, review_imagery, settings, verdicts, wayback
from ..errors import ReviewError
from ..queue import ORDERS
from ..verdicts import REASONS
from . import common, field_reports, sites as sites_ui

IMAGERY_KINDS = ("Sentinel-2 scenes", "Esri Wayback (dated, high resolution)")


def page() -> None:
    db = common.page("Review", heading=False, action="verdict")
    if db is None:
        return
    state = st.session_state
    with st.sidebar:
        order = st.selectbox("Order", list(ORDERS), format_func=ORDERS.get, key="order")
        st.radio("Before/after imagery", IMAGERY_KINDS, key="imagery_kind")
    filters = common.filters_sidebar(db)
    if "flash" in state:
        st.toast(state.pop("flash"))
    if "flash_error" in state:
        st.error(state.pop("flash_error"))
    reviewer = common.reviewer_name(db)
    try:
        _hand_over_claim(db, reviewer)
    except ReviewError as exc:
        st.error(str(exc))
        return
    if not reviewer:
        st.title("Review")
        st.info("Enter your name in the sidebar to start reviewing.")
        return
    try:
        detection = _current(db, reviewer, filters, order)
    except ReviewError as exc:
        st.error(str(exc))
        return
    pending = queue.count(db, filters)
    if detection is None:
        st.title("Review")
        st.success(f"Nothing left to review with these filters ({pending} pending, "
                   f"{len(state.get('skipped', []))} skipped in this session).")
        st.button("Undo last verdict", on_click=_undo, shortcut="Z", disabled=not state.get("done"))
        return
    _show_detection(db, detection, pending)
    st.text_input("Note (optional, kept with the verdict)", key="note")
    row = st.columns(4)
    row[0].button("Verified", on_click=_decide, args=("verified",), type="primary",
                  shortcut="V", key="verdict_verified")
    row[1].button("Unsure", on_click=_decide, args=("unsure",), shortcut="U", key="verdict_unsure")
    row[2].button("Skip", on_click=_skip, shortcut="S", key="verdict_skip")
    row[3].button("Undo last", on_click=_undo, shortcut="Z", key="verdict_undo",
                  disabled=not state.get("done"))
    st.caption("False positive, with its reason:")
    reasons = st.columns(4) + st.columns(4)
    for column, (key, (code, label)) in zip(reasons, zip("12345678", REASONS.items())):
        column.button(label, on_click=_decide, args=("false_positive", code), shortcut=key,
                      key=f"fp_{code}", help=f"false positive: {label} (key {key})",
                      use_container_width=True)


def _hand_over_claim(db, reviewer: str) -> None:
    """When the name in the sidebar changes, this session lets go of its claim, and the
    detection on screen (if any) is claimed under the new name."""
    state = st.session_state
    previous = state.get("claimed_as")
    if previous and previous != reviewer:
        queue.release(db, common.holder())
        if reviewer and state.get("current_id") is not None:
            queue.claim(db, reviewer, state["current_id"], holder=common.holder(), force=True)
    state["claimed_as"] = reviewer or None


def _current(db, reviewer: str, filters: queue.Filters, order: str) -> dict | None:
    state = st.session_state
    opened = state.pop("open_detection", None)
    if opened is not None:
        state["current_id"] = queue.claim(db, reviewer, int(opened), holder=common.holder(),
                                          force=True)["id"]
    signature = (order, filters.key())
    if state.get("queue_signature") != signature:
        state["queue_signature"] = signature
        if opened is None:
            state["current_id"] = None
    if state.get("current_id") is not None:
        return queue.get(db, state["current_id"])
    chosen = queue.claim_next(db, reviewer, filters, order, skip=tuple(state.get("skipped", [])),
                              holder=common.holder())
    state["current_id"] = chosen["id"] if chosen else None
    return chosen


def _decide(verdict: str, reason: str | None = None) -> None:
    """Button callback: record at once, then move on."""
    state = st.session_state
    detection_id = state.get("current_id")
    if detection_id is None:
        return
    before, after = state.get("shown", (None, None))
    try:
        db = common.connection()
        common.require(db, "verdict")
        verdicts.record(db, detection_id, common.reviewer_name(db), verdict,
                        reason=reason, note=state.get("note") or None, before=before, after=after)
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    label = verdicts.VERDICTS[verdict] + (f" ({verdicts.REASONS[reason]})" if reason else "")
    state.setdefault("done", []).append(detection_id)
    state["flash"] = f"#{detection_id}: {label}"
    state["current_id"] = None
    state["note"] = ""


def _skip() -> None:
    state = st.session_state
    if state.get("current_id") is not None:
        state.setdefault("skipped", []).append(state["current_id"])
        state["flash"] = f"#{state['current_id']}: skipped"
        state["current_id"] = None


def _undo() -> None:
    state = st.session_state
    done = state.get("done") or []
    if not done:
        state["flash_error"] = "Nothing to undo in this session."
        return
    detection_id = done.pop()
    db = common.connection()
    try:
        common.require(db, "verdict")
        verdicts.undo(db, detection_id, common.reviewer_name(db))
        queue.claim(db, common.reviewer_name(db), detection_id, holder=common.holder(), force=True)
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    state["current_id"] = detection_id
    state["flash"] = f"#{detection_id}: verdict undone"


def _show_detection(db, detection: dict, pending: int) -> None:
    state = st.session_state
    score = "no score" if detection["score"] is None else f"score {detection['score']:.3f}"
    area = ("" if detection["area_ha"] is None
            else f" · {detection['area_ha']:,.2f} ha ({detection['area_source']})")
    st.subheader(f"Detection #{detection['id']} · {score}{area}")
    st.caption(f"{pending:,} pending · source {detection['source']} · model "
               f"{detection['model_id'] or 'unknown'} · period "
               f"{detection['period_start'] or '?'} to {detection['period_end'] or '?'} · "
               f"{detection['lat']:.5f}, {detection['lon']:.5f}")
    sites_ui.site_link(db, detection["id"])
    left, right, side = st.columns([1, 1, 1])
    kind = state.get("imagery_kind", IMAGERY_KINDS[0])
    if kind == IMAGERY_KINDS[1]:
        pictures, message = _wayback_pictures(detection)
    else:
        pictures, message = _scene_pictures(db, detection)
    if len(pictures) == 2:
        left.image(pictures[0].image, caption=f"Before: {pictures[0].caption}")
        right.image(pictures[1].image, caption=f"After: {pictures[1].caption}")
        state["shown"] = (pictures[0].imagery, pictures[1].imagery)
    elif len(pictures) == 1:
        left.info(message or "No earlier imagery covers the detection.")
        right.image(pictures[0].image, caption=f"After: {pictures[0].caption}")
        state["shown"] = (None, pictures[0].imagery)
    else:
        left.info(message or "No stored scene covers this detection; judge it on the basemap.")
        state["shown"] = (None, verdicts.Imagery(source=f"{settings.basemap_name()} (current basemap)"))
    if kind == IMAGERY_KINDS[0] and len(pictures) < 2 and detection.get("period_start"):
        right.button("Fetch Sentinel-2 before/after", on_click=_fetch_before_after,
                     args=(detection["id"],), key="fetch_s2")
    with side:
        _detail_map(detection)
        field_reports.thumbnails_for(db, detection["id"])
    history = verdicts.history(db, detection["id"])
    near = queue.neighbours(db, detection)
    with st.expander(f"History ({len(history)}) and neighbours within 3 km ({len(near)})"):
        if history:
            st.dataframe(pd.DataFrame(history)[["created_at", "reviewer", "verdict", "reason", "note"]],
                         hide_index=True)
        if near:
            st.dataframe(pd.DataFrame(near), hide_index=True)
        properties = json.loads(detection.get("properties") or "{}")
        if properties:
            st.json(properties, expanded=False)


def _scene_pictures(db, detection: dict):
    try:
        return review_imagery.scene_views(db, detection), None
    except ReviewError as exc:
        return [], f"Stored imagery could not be shown: {exc}"


@st.cache_data(ttl=3600, show_spinner=False)
def _wayback_releases(config_url: str) -> list[wayback.Release]:
    return wayback.releases(config_url)


def _wayback_pictures(detection: dict):
    try:
        return review_imagery.wayback_views(_wayback_releases(settings.wayback_config_url()), detection)
    except ReviewError as exc:
        return [], f"Wayback imagery could not be had: {exc}"


def _fetch_before_after(detection_id: int) -> None:
    db = common.connection()
    try:
        review_imagery.before_after(db, queue.get(db, detection_id))
    except ReviewError as exc:
        st.session_state["flash_error"] = str(exc)
    else:
        st.session_state["flash"] = f"#{detection_id}: Sentinel-2 before/after fetched"


def _detail_map(detection: dict) -> None:
    fmap = folium.Map(tiles=None, control_scale=True)
    folium.TileLayer(settings.basemap_url(), attr=settings.basemap_name(),
                     name=settings.basemap_name(), max_zoom=19).add_to(fmap)
    folium.GeoJson(json.loads(detection["geometry"]),
                   style_function=lambda _: {"color": "#ffd600", "weight": 2, "fill": False}).add_to(fmap)
    fmap.fit_bounds([[detection["south"], detection["west"]], [detection["north"], detection["east"]]],
                    padding=(40, 40))
    st_folium(fmap, height=330, use_container_width=True, returned_objects=[], key="detail_map")
    st.caption(f"Basemap: {settings.basemap_name()} (current imagery, not dated)")
