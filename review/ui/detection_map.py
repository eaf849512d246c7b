"""The Map page's map: a Streamlit component (custom components v2, no iframe) that draws
the detections with deck.gl from binary columns and sends a click back as a detection id.

deck.gl is served by the app from static/ (pinned, with its licence), so the map works
offline; the data come as one binary message (review.analysis.map_payload). This session
remembers which columns its browser holds (by token), so after a verdict only the changed
statuses travel; a browser that lost them asks again ("need_base").
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

HEIGHT_PX = 560
DECK = "deck.gl-9.1.15/dist.min.js"
NATURAL_EARTH = "natural-earth/basemap.json"
STATIC = Path(__file__).resolve().parents[2] / "static"
SENT = "_map_columns_sent"          # session state: the token of the columns this browser holds

_HTML = '<div class="detection-map" data-testid="detection-map"></div>'
_CSS = f"""
.detection-map {{ position: relative; width: 100%; height: {HEIGHT_PX}px; background: #e8e8e8;
  border-radius: 0.5rem; overflow: hidden; font-family: sans-serif; }}
.map-holder {{ position: absolute; inset: 0; z-index: 0; }}
.map-underlay {{ position: absolute; inset: 0; z-index: -1; pointer-events: none; }}
.map-tooltip {{ position: absolute; z-index: 2; pointer-events: none; max-width: 28rem;
  background: rgba(255, 255, 255, 0.96); color: #222; padding: 0.3rem 0.5rem;
  border-radius: 0.3rem; box-shadow: 0 1px 4px #0004; font-size: 0.8rem; }}
.map-status {{ position: absolute; z-index: 2; left: 0.5rem; top: 0.5rem; background: #fff;
  padding: 0.3rem 0.6rem; border-radius: 0.3rem; box-shadow: 0 1px 4px #0004; }}
.map-credit {{ position: absolute; right: 0.3rem; bottom: 0.2rem; font-size: 0.7rem;
  color: #333; background: rgba(255, 255, 255, 0.7); padding: 0 0.3rem; }}
.map-sentence {{ padding: 1rem; }}
"""
_component = st.components.v2.component(
    "review_detection_map", html=_HTML, css=_CSS,
    js=(Path(__file__).with_name("detection_map.js")).read_text(encoding="utf-8"))


def static_url(path: str) -> str:
    """Where the app serves a file of static/ (under any server.baseUrlPath)."""
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + (prefix + "/" if prefix else "") + "app/static/" + path


def served() -> bool:
    """Whether the app serves deck.gl itself (static serving on, the file present)."""
    return bool(st.get_option("server.enableStaticServing")) and (STATIC / DECK).is_file()


def browser_holds(token: str) -> bool:
    return st.session_state.get(SENT) == token


def _forget() -> None:
    st.session_state.pop(SENT, None)


def show(message: bytes, token: str, key: str, on_open) -> dict:
    """Mount the map with this message; remember that the browser now holds `token`'s
    columns. `on_open(detection_id)` runs (as a callback, before the next run) on a click.
    Returns the map's state (the "view" it asks footprints for, when zoomed in)."""
    def opened():
        value = st.session_state[key].get("open")
        if isinstance(value, (int, float)):
            on_open(int(value))

    result = _component(data=message, key=key, height=HEIGHT_PX, on_open_change=opened,
                        on_need_base_change=_forget, on_view_change=lambda: None)
    st.session_state[SENT] = token
    return {"view": getattr(result, "view", None)}
