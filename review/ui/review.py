"""Review: one detection at a time, before and after side by side, a verdict per key.

The review pane is a fragment: a verdict, a skip or an undo reruns it alone (the sidebar
and its filters are not rebuilt), and no map component is drawn, so the next detection
is on screen as soon as its prepared chips are read from the chip cache. A second,
timed fragment keeps this session's claim alive while the detection is on screen and
notices when it was lost or when imagery being prepared has arrived.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pandas as pd
import streamlit as st

from .. import settings
from ..analysis import onset, spectral_series
from ..analysis.sites import site_of
from ..errors import ReviewError
from ..judging import queue, verdicts
from ..judging.queue import ORDERS
from ..judging.verdicts import REASONS
from ..learning import evaluate
from ..review_imagery import chip_cache, lookahead, preparation, wayback
from . import common, field_reports, labelling
from . import sites as sites_ui

IMAGERY_KINDS = ("Prepared imagery (stored scenes, Sentinel-2, Wayback)",
                 "Esri Wayback (dated, high resolution)")
VIEWS = {"true": "True colour", "false": "False colour"}
DISPUTED = "disputed"          # the editor's queue: disputes settled by a final decision
NOTHING_SHOWN = verdicts.NO_IMAGERY
LOOKAHEAD = 8                  # detections of the queue prepared ahead of the reviewer
KEEP_ALIVE_S = 3               # how often the timed fragment looks in
RENEW_EVERY_S = 30             # how often it renews the claim (claims last CLAIM_SECONDS)
STATUS_WORDS = {"pending": "pending", "verified": "verified", "false_positive": "false positive",
                "unsure": "unsure", "needs_second_opinion": "waiting for a second opinion",
                "disputed": "disputed (waits for an editor's decision)"}


def page() -> None:
    db = common.page("Review", heading=False, action="verdict")
    if db is None:
        return
    state = st.session_state
    editor = common.user(db).can("final")
    orders = dict(ORDERS)
    if editor:
        orders[DISPUTED] = "disputed, for an editor's final decision"
    orders.update(labelling.orders(db))
    with st.sidebar:
        order = st.selectbox("Order", list(orders), format_func=orders.get, key="order")
        design_id = labelling.design_of(order)
        if design_id is None:
            st.radio("Before/after imagery", IMAGERY_KINDS, key="imagery_kind")
    if design_id is not None:
        _assessment_queue(db, design_id)
        return
    filters = common.filters_sidebar(db)
    if order == DISPUTED:
        filters = replace(filters, status=DISPUTED)
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
    linked = st.query_params.get("detection")
    if linked:
        # A direct link (?detection=ID): opened once, then the queue goes on from there.
        del st.query_params["detection"]
        if linked.isdigit():
            state["open_detection"] = int(linked)
        else:
            st.error(f"{linked!r} is not a detection number.")
    _pane(filters, "score" if order == DISPUTED else order, order == DISPUTED)
    _keep_alive()


def _assessment_queue(db, design_id: int) -> None:
    """Label an assessment's points instead of detections (no filters: the sample is the sample)."""
    reviewer = common.reviewer_name(db)
    queue.release(db, common.holder())          # no detection stays held meanwhile
    st.session_state["current_id"] = None
    if not reviewer:
        st.title("Review")
        st.info("Enter your name in the sidebar to start labelling.")
        return
    labelling.pane(design_id)
    labelling.keep_alive()


def _hand_over_claim(db, reviewer: str) -> None:
    """When the name in the sidebar changes, this session lets go of its claim, and the
    detection on screen (if any) is claimed under the new name."""
    state = st.session_state
    previous = state.get("claimed_as")
    if previous and previous != reviewer:
        queue.release(db, common.holder())
        if reviewer and state.get("current_id") is not None and not state.get("held"):
            queue.claim(db, reviewer, state["current_id"], holder=common.holder())
    state["claimed_as"] = reviewer or None


def _open(db, reviewer: str, detection_id: int) -> None:
    """Put a detection on screen: claimed when free, read-only when someone else has it."""
    state = st.session_state
    state["current_id"] = detection_id
    state.pop("held", None)
    state.pop("override", None)
    try:
        queue.claim(db, reviewer, detection_id, holder=common.holder())
    except queue.ClaimHeld as exc:
        state["held"] = {"reviewer": exc.reviewer, "since": exc.since, "lost": False}
    state["_review_claim"] = True


def _current(db, reviewer: str, filters: queue.Filters, order: str) -> dict | None:
    state = st.session_state
    opened = state.pop("open_detection", None)
    if opened is not None:
        queue.get(db, int(opened))                  # a clear error for an unknown id
        _open(db, reviewer, int(opened))
    signature = (order, filters.key())
    if state.get("queue_signature") != signature:
        state["queue_signature"] = signature
        if opened is None:
            state["current_id"] = None
    detection_id = state.get("current_id")
    if detection_id is not None:
        if not state.get("held"):
            # Still ours? A claim lost to an expiry or to someone's "review anyway" is said
            # at once, and the keys record nothing until the reviewer chooses.
            holder = queue.holder_of(db, detection_id)
            if holder is None:
                _open(db, reviewer, detection_id)
            elif holder["holder"] != common.holder():
                state["held"] = {"reviewer": holder["reviewer"], "since": holder["since"], "lost": True}
        return queue.get(db, detection_id)
    state.pop("held", None)
    state.pop("override", None)
    chosen = queue.claim_next(db, reviewer, filters, order, skip=queue.skipped(db, reviewer),
                              holder=common.holder())
    state["current_id"] = chosen["id"] if chosen else None
    state["_review_claim"] = True
    return chosen


@st.fragment
def _pane(filters: queue.Filters, order: str, disputes: bool) -> None:
    state = st.session_state
    db = common.connection()
    reviewer = common.reviewer_name(db)
    if "flash" in state:
        st.toast(state.pop("flash"))
    if "flash_error" in state:
        st.error(state.pop("flash_error"))
    try:
        detection = _current(db, reviewer, filters, order)
    except ReviewError as exc:
        st.error(str(exc))
        return
    can_undo = verdicts.last_decision(db, reviewer) is not None
    if detection is None:
        state["shown"] = None
        pending = queue.count(db, filters)
        st.title("Review")
        waiting = "disputed" if disputes else "pending"
        st.success(f"Nothing left to review with these filters ({pending:,} {waiting}, "
                   f"{len(queue.skipped(db, reviewer)):,} skipped by you for now).")
        st.button("Undo last verdict", on_click=_undo, shortcut="Z", disabled=not can_undo,
                  key="verdict_undo")
        return
    history = verdicts.history(db, detection["id"])
    if state.get("seen_verdicts", (None,))[0] != detection["id"]:
        state["seen_verdicts"] = (detection["id"], len(history))
    judged_by_me = any(h["reviewer"] == reviewer for h in history)
    blind = detection["status"] == "needs_second_opinion" and not judged_by_me
    _header(db, detection, history, blind, filters)
    held = state.get("held")
    if held:
        _held_notice(held, detection["id"])
    _imagery(db, detection, reviewer, filters, order)
    locked = bool(held)
    if not locked and detection["status"] != "pending" and not blind and not disputes:
        locked = not st.toggle("Change the verdict (a new verdict is appended to its history)",
                               key=f"change_{detection['id']}")
    if disputes and not held:
        st.info("Your decision is final: it settles the dispute, and both earlier verdicts are kept.")
    st.text_input("Note (optional, kept with the verdict)", key="note", disabled=bool(held))
    row = st.columns(4)
    on_screen = detection["id"]
    row[0].button("Verified", on_click=_decide, args=("verified", None, disputes, on_screen),
                  type="primary", shortcut="V", key="verdict_verified", disabled=locked)
    row[1].button("Unsure", on_click=_decide, args=("unsure", None, disputes, on_screen),
                  shortcut="U", key="verdict_unsure", disabled=locked)
    row[2].button("Skip", on_click=_skip, shortcut="S", key="verdict_skip")
    row[3].button("Undo last", on_click=_undo, shortcut="Z", key="verdict_undo", disabled=not can_undo)
    st.caption("False positive, with its reason:")
    reasons = st.columns(4) + st.columns(4)
    for column, (key, (code, label)) in zip(reasons, zip("12345678", REASONS.items())):
        column.button(label, on_click=_decide, args=("false_positive", code, disputes, on_screen),
                      shortcut=key, key=f"fp_{code}", help=f"false positive: {label} (key {key})",
                      use_container_width=True, disabled=locked)
    _details(db, detection, history, blind)


def _header(db, detection: dict, history: list[dict], blind: bool, filters) -> None:
    score = "no score" if detection["score"] is None else f"score {detection['score']:.3f}"
    area = ("" if detection["area_ha"] is None
            else f" · {detection['area_ha']:,.2f} ha ({detection['area_source']})")
    trained = evaluate.model_scores(db, detection["id"])
    if trained:                    # the newest, the one the "most uncertain" order uses
        newest = trained[0]
        score += (f" · trained model {newest['score']:.3f} ({newest['model_id']}, threshold "
                  f"{newest['threshold']:.3f})")
    st.subheader(f"Detection #{detection['id']} · {score}{area}")
    status = detection["status"]
    line = f"**Status: {STATUS_WORDS.get(status, status)}**"
    standing = verdicts.decisions(history, lambda h: h["verdict"])
    if blind:
        line += " · a second opinion: decide without seeing the first verdict"
    elif standing:
        last = standing[-1]
        what = verdicts.VERDICTS[last["verdict"]] + (f" ({REASONS[last['reason']]})" if last["reason"] else "")
        line += (f" · last verdict: {what}, by {last['reviewer']}, {last['created_at'][:16].replace('T', ' ')} UTC"
                 + (" (final)" if last.get("final") else ""))
    st.markdown(line)
    st.caption(f"{queue.count(db, filters):,} in this queue · source {detection['source']} · model "
               f"{detection['model_id'] or 'unknown'} · period "
               f"{detection['period_start'] or '?'} to {detection['period_end'] or '?'} · "
               f"{detection['lat']:.5f}, {detection['lon']:.5f}")
    sites_ui.site_link(db, detection["id"])


def _held_notice(held: dict, detection_id: int) -> None:
    since = time.strftime("%H:%M", time.localtime(held["since"]))
    if held["reviewer"] == common.reviewer_name(common.connection()):
        # The same person in another tab (or a tab closed without leaving the page).
        st.info(f"Open in your other tab since {since}. Take it here to decide in this tab.")
        st.button("Take it here", on_click=_review_anyway, args=(detection_id,), key="review_anyway")
        return
    if held.get("lost"):
        st.warning(f"You no longer hold this detection: it is being reviewed by {held['reviewer']} "
                   f"since {since}. Nothing was recorded; skip it, or review it anyway.")
    else:
        st.warning(f"Being reviewed by {held['reviewer']} since {since}. Shown read-only; "
                   f"reviewing it anyway is recorded with your verdict.")
    st.button("Review anyway", on_click=_review_anyway, args=(detection_id,), key="review_anyway")


def _imagery(db, detection: dict, reviewer: str, filters, order: str) -> None:
    """The before and after chips; what is shown is what a verdict records."""
    state = st.session_state
    kind = state.get("imagery_kind", IMAGERY_KINDS[0])
    # The toggle starts the right half: the left chip's fullscreen button, shown on hover at
    # its top-right corner, would otherwise cover it.
    view_row = st.columns(2)
    view = view_row[0].radio("View", list(VIEWS), format_func=VIEWS.get, horizontal=True,
                             key="chip_view", label_visibility="collapsed")
    dehazed = view_row[1].toggle("Remove haze", key="dehaze")
    left, right = st.columns(2)
    shown = {"id": detection["id"], "before": NOTHING_SHOWN, "after": NOTHING_SHOWN}
    state["waiting_imagery"] = None
    if kind == IMAGERY_KINDS[1]:
        pictures, message = _wayback_pictures(detection)
        if len(pictures) == 2:
            left.image(pictures[0].image, caption=f"Before: {pictures[0].caption}")
            shown["before"] = pictures[0].imagery
        else:
            left.info(message or "No earlier imagery covers the detection.")
        if pictures:
            right.image(pictures[-1].image, caption=f"After: {pictures[-1].caption}")
            shown["after"] = pictures[-1].imagery
        state["shown"] = shown
        return
    prepared = _prepared(db, detection)
    _look_ahead(db, reviewer, filters, order, detection)
    if prepared is None:
        message = preparation.unavailable(chip_cache.cache_for(db), detection)
        if lookahead.pending(detection["id"]):
            state["waiting_imagery"] = detection["id"]
            message = ("Imagery for this detection is being prepared; it appears here by itself. "
                       "You can decide without it: the verdict then records that no imagery was shown.")
        left.info(message)
        state["shown"] = shown
        return
    shown.update(common.chip_pair(left, right, prepared, view, dehazed, "the detection"))
    state["shown"] = shown


def _prepared(db, detection: dict):
    """The detection's prepared chips (stored scenes at once, the rest in the background)."""
    prepared, error = lookahead.on_screen(db, detection)
    if error:
        st.error(error)
    return prepared


def _look_ahead(db, reviewer: str, filters, order: str, detection: dict) -> None:
    """Ask the background worker for the next detections of this reviewer's queue."""
    lookahead.ahead(queue.upcoming(db, reviewer, filters, order, count=LOOKAHEAD + 1,
                                   skip=(detection["id"],)), chip_cache.cache_for(db))


def _details(db, detection: dict, history: list[dict], blind: bool) -> None:
    field_reports.thumbnails_for(db, detection["id"])
    _series(db, detection)
    near = queue.neighbours(db, detection)
    shown_history = [] if blind else history
    label = ("History hidden until you decide (second opinion)" if blind and history
             else f"History ({len(shown_history)})")
    with st.expander(f"{label} and neighbours within 3 km ({len(near)})"):
        if shown_history:
            st.dataframe(_history_table(shown_history), hide_index=True)
        if near:
            st.dataframe(pd.DataFrame(near), hide_index=True)
        properties = json.loads(detection.get("properties") or "{}")
        if properties:
            st.caption("The source's own attributes of this detection:")
            st.json(properties, expanded=False)


def _series(db, detection: dict) -> None:
    """The detection's (else its site's) stored spectral time series, compact, in an
    expander; read from the database only (a query or two), never fetched on the way to the
    next detection, and nothing at all when none is stored. The chart (some 15 ms to build)
    is drawn only while the reviewer keeps its toggle on. No verdicts are marked: a second
    look stays blind."""
    place = spectral_series.detection_place(detection["id"])
    rows = spectral_series.stored(db, place)
    if not rows:
        site_id = site_of(db, detection["id"])
        if site_id is None:
            return
        place = spectral_series.site_place(site_id)
        rows = spectral_series.stored(db, place)
        if not rows:
            return
    found = onset.find(rows)
    where = "site" if place.startswith("site:") else "detection"
    with st.expander(f"Spectral time series of the {where} ({sum(r['clear'] for r in rows)} clear "
                     f"observations) · onset: {found.short}"):
        st.caption(found.words)
        if st.toggle("Draw the chart (stays on for the next detections)", key="review_series_chart"):
            periods, _ = spectral_series.marks(db, place, with_verdicts=False)
            st.plotly_chart(spectral_series.figure(rows, periods, onset=found, height=280),
                            key=f"review_series_{detection['id']}", config={"displaylogo": False})


def _history_table(history: list[dict]) -> pd.DataFrame:
    """Verdicts in words, times to the minute in UTC, blanks where nothing was given."""
    rows = []
    for h in history:
        rows.append({
            "when (UTC)": h["created_at"][:16].replace("T", " "),
            "reviewer": h["reviewer"],
            "verdict": (verdicts.VERDICTS.get(h["verdict"], h["verdict"])
                        + (" (final)" if h.get("final") else "")),
            "reason": REASONS.get(h["reason"], h["reason"] or ""),
            "note": h["note"] or "",
            "overrides": h["override"] or "",
        })
    return pd.DataFrame(rows)


@st.fragment(run_every=KEEP_ALIVE_S)
def _keep_alive() -> None:
    """Renew this session's claim while its detection is on screen; when the claim was
    lost, or when imagery being prepared has arrived, redraw the review pane."""
    state = st.session_state
    detection_id = state.get("current_id")
    if detection_id is None:
        return
    db = common.connection()
    if state.get("waiting_imagery") == detection_id and not lookahead.pending(detection_id):
        state["waiting_imagery"] = None
        st.rerun()
    if state.get("held") or time.time() - state.get("_renewed", 0) < RENEW_EVERY_S:
        return
    state["_renewed"] = time.time()
    if queue.renew(db, common.holder(), detection_id):
        return
    try:
        queue.claim(db, common.reviewer_name(db), detection_id, holder=common.holder())
    except queue.ClaimHeld as exc:
        state["held"] = {"reviewer": exc.reviewer, "since": exc.since, "lost": True}
        st.rerun()
    except ReviewError:
        pass


def _review_anyway(detection_id: int) -> None:
    state = st.session_state
    held = state.get("held")
    if not held or state.get("current_id") != detection_id:
        return
    db = common.connection()
    try:
        common.require(db, "verdict")
        queue.claim(db, common.reviewer_name(db), detection_id, holder=common.holder(), force=True)
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    since = time.strftime("%H:%M", time.localtime(held["since"]))
    if held["reviewer"] != common.reviewer_name(db):      # one's own other tab overrides nobody
        state["override"] = f"reviewed anyway while {held['reviewer']} held it (since {since})"
    state.pop("held", None)
    state["_renewed"] = time.time()


def _decide(verdict: str, reason: str | None = None, final: bool = False,
            on_screen: int | None = None) -> None:
    """Button callback: record at once, then move on. Nothing is recorded on a detection
    this session does not hold (unless the reviewer chose to review it anyway), nor on one
    other than the detection whose buttons were pressed (`on_screen`)."""
    state = st.session_state
    detection_id = state.get("current_id")
    if detection_id is None:
        return
    if on_screen is not None and on_screen != detection_id:
        # A second key press while the next detection was still on its way: it was meant
        # for the one just decided, not for one the reviewer has not seen yet.
        state["flash_error"] = (f"Nothing recorded: #{detection_id} had not reached your screen "
                                "when the key was pressed. Look at it, then decide.")
        return
    db = common.connection()
    reviewer = common.reviewer_name(db)
    if state.get("held"):
        state["flash_error"] = (f"Nothing recorded: #{detection_id} is being reviewed by "
                                f"{state['held']['reviewer']}. Skip it, or review it anyway.")
        return
    holder = queue.holder_of(db, detection_id)
    if holder is not None and holder["holder"] != common.holder():
        state["held"] = {"reviewer": holder["reviewer"], "since": holder["since"], "lost": True}
        state["flash_error"] = (f"Nothing recorded: #{detection_id} was taken over by "
                                f"{holder['reviewer']} meanwhile.")
        return
    seen = state.get("seen_verdicts") or (None, 0)
    latest = verdicts.history(db, detection_id)
    if seen[0] == detection_id and len(latest) > seen[1] and latest[-1]["reviewer"] != reviewer:
        state["flash_error"] = (f"Nothing recorded: {latest[-1]['reviewer']} recorded a verdict on "
                                f"#{detection_id} meanwhile; it is shown now.")
        state["seen_verdicts"] = (detection_id, len(latest))
        return
    shown = state.get("shown") or {}
    if shown.get("id") != detection_id:
        shown = {"before": NOTHING_SHOWN, "after": NOTHING_SHOWN}
    try:
        common.require(db, "final" if final else "verdict")
        verdicts.record(db, detection_id, reviewer, verdict, reason=reason,
                        note=state.get("note") or None, before=shown["before"], after=shown["after"],
                        final=final, override=state.get("override"))
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    label = verdicts.VERDICTS[verdict] + (f" ({REASONS[reason]})" if reason else "")
    state["flash"] = f"#{detection_id}: {label}" + (" (final)" if final else "")
    _move_on()


def _move_on() -> None:
    state = st.session_state
    state["current_id"] = None
    state["note"] = ""
    for name in ("held", "override", "shown", "seen_verdicts"):
        state.pop(name, None)


def _skip() -> None:
    state = st.session_state
    detection_id = state.get("current_id")
    if detection_id is None:
        return
    db = common.connection()
    try:
        common.require(db, "verdict")
        queue.skip(db, common.reviewer_name(db), detection_id,
                   holder=None if state.get("held") else common.holder())
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    state["flash"] = f"#{detection_id}: skipped (it comes back to you in a few hours)"
    _move_on()


def _undo() -> None:
    state = st.session_state
    db = common.connection()
    reviewer = common.reviewer_name(db)
    detection_id = verdicts.last_decision(db, reviewer)
    if detection_id is None:
        state["flash_error"] = "Nothing of yours to undo."
        return
    try:
        common.require(db, "verdict")
        taken = verdicts.undoable(db, detection_id)
        if taken is not None and taken.get("final"):
            common.require(db, "final")         # as on the command line: a final decision
        verdicts.undo(db, detection_id, reviewer)
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    if state.get("current_id") not in (None, detection_id) and not state.get("held"):
        queue.release(db, common.holder())
    _move_on()
    _open(db, reviewer, detection_id)
    state["flash"] = f"#{detection_id}: verdict undone"


@st.cache_data(ttl=3600, show_spinner=False)
def _wayback_releases(config_url: str) -> list[wayback.Release]:
    return wayback.releases(config_url)


def _wayback_pictures(detection: dict):
    try:
        return preparation.wayback_views(_wayback_releases(settings.wayback_config_url()), detection)
    except ReviewError as exc:
        return [], (f"{exc}. Decide from the imagery shown, or skip this detection until "
                    "Wayback can be reached; the verdict records which imagery it was based on.")
