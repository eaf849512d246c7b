"""The Review page's assessment queue: label sample points of an area assessment by key.

Each point is shown as a crosshair on before/after chips of the design's period, with no
detection outline, score, stratum or unit number on screen (the label must not know what
the map said). M mining, N not mining, U can't tell, S skip, Z undo; each label is
written at once, as a record of the verdict log, with the imagery shown.
"""
from __future__ import annotations

import time

import streamlit as st

from ..errors import ReviewError
from ..judging import unit_labels
from ..judging.verdicts import NO_IMAGERY
from ..review_imagery import chip_cache, lookahead, preparation
from . import common

ORDER_PREFIX = "assess:"
LOOKAHEAD = 8
KEEP_ALIVE_S = 3          # how often the timed fragment looks in
RENEW_EVERY_S = 30        # how often it renews the claim (claims last unit_labels.CLAIM_SECONDS)
VIEWS = {"true": "True colour", "false": "False colour"}
WORDS = {"mining": "mining", "not_mining": "not mining", "unsure": "can't tell"}


def orders(db) -> dict[str, str]:
    """The assessment queues the Review page's order can be: one per design."""
    from ..analysis import assessment

    return {f"{ORDER_PREFIX}{d['id']}": f"assessment points: {d['name']} ({d['period']})"
            for d in assessment.listing(db) if d["units"]}


def design_of(order: str) -> int | None:
    return int(order[len(ORDER_PREFIX):]) if order.startswith(ORDER_PREFIX) else None


@st.fragment
def pane(design_id: int) -> None:
    state = st.session_state
    db = common.connection()
    reviewer = common.reviewer_name(db)
    if "flash" in state:
        st.toast(state.pop("flash"))
    if "flash_error" in state:
        st.error(state.pop("flash_error"))
    if state.get("unit_design") != design_id:
        state["unit_design"], state["current_unit"] = design_id, None
    try:
        unit = _current(db, design_id, reviewer)
    except ReviewError as exc:
        st.error(str(exc))
        return
    can_undo = unit_labels.last_labelled(db, reviewer, design_id) is not None
    left = unit_labels.remaining(db, design_id, reviewer)
    if unit is None:
        state["unit_shown"] = None
        st.title("Assessment points")
        st.success("No point of this assessment is waiting for you: every one is labelled, held "
                   "by someone else, or skipped by you for now.")
        st.button("Undo last label", on_click=_undo, args=(design_id,), shortcut="Z",
                  disabled=not can_undo, key="unit_undo")
        return
    st.subheader("Is the ground at the crosshair mined?")
    st.caption(f"{left:,} points waiting for you in this assessment · {unit['lat']:.5f}, "
               f"{unit['lon']:.5f} · imagery of {unit['period_start']} to {unit['period_end']} "
               "and the year before. Judge the ground under the crosshair's open centre, "
               "whatever is around it.")
    _imagery(db, unit, design_id, reviewer)
    st.text_input("Note (optional, kept with the label)", key="unit_note")
    row = st.columns(5)
    row[0].button("Mining", on_click=_label, args=("mining",), type="primary", shortcut="M",
                  key="unit_mining")
    row[1].button("Not mining", on_click=_label, args=("not_mining",), shortcut="N",
                  key="unit_not_mining")
    row[2].button("Can't tell", on_click=_label, args=("unsure",), shortcut="U", key="unit_unsure")
    row[3].button("Skip", on_click=_skip, shortcut="S", key="unit_skip")
    row[4].button("Undo last", on_click=_undo, args=(design_id,), shortcut="Z", key="unit_undo",
                  disabled=not can_undo)


@st.fragment(run_every=KEEP_ALIVE_S)
def keep_alive() -> None:
    """Keep this session's claim on the point on screen, and redraw the pane when imagery
    being prepared for it has arrived."""
    state = st.session_state
    unit_id = state.get("current_unit")
    if unit_id is None:
        return
    if state.get("waiting_point") == -unit_id and not lookahead.pending(-unit_id):
        state["waiting_point"] = None
        st.rerun()
    if time.time() - state.get("_point_renewed", 0) >= RENEW_EVERY_S:
        state["_point_renewed"] = time.time()
        unit_labels.renew(common.connection(), common.holder(), unit_id)


def _current(db, design_id: int, reviewer: str) -> dict | None:
    state = st.session_state
    unit_id = state.get("current_unit")
    if unit_id is not None:
        if unit_labels.renew(db, common.holder(), unit_id):
            return unit_labels.unit(db, unit_id)
        # The claim lapsed (a sleeping laptop, a dropped connection): still ours if nobody
        # took it meanwhile, else this point is someone else's now and we move on.
        taken = unit_labels.holder_of(db, unit_id)
        if taken is None:
            return unit_labels.claim(db, unit_id, reviewer, common.holder())
        st.info(f"The point you had on screen is being labelled by {taken['reviewer']} now; "
                "here is the next one.")
        state["current_unit"] = None
    chosen = unit_labels.claim_next(db, design_id, reviewer, common.holder(),
                                    skip=tuple(state.get("unit_skips", ())))
    state["current_unit"] = chosen["id"] if chosen else None
    state["_review_claim"] = True
    return chosen


def _imagery(db, unit: dict, design_id: int, reviewer: str) -> None:
    state = st.session_state
    place = preparation.unit_place(unit)
    view_row = st.columns(2)
    view = view_row[0].radio("View", list(VIEWS), format_func=VIEWS.get, horizontal=True,
                             key="unit_view", label_visibility="collapsed")
    dehazed = view_row[1].toggle("Remove haze", key="unit_dehaze")
    left, right = st.columns(2)
    shown = {"id": unit["id"], "before": NO_IMAGERY, "after": NO_IMAGERY}
    prepared, error = lookahead.on_screen(db, place)
    if error:
        st.error(error)
    cache = chip_cache.cache_for(db)
    lookahead.ahead([preparation.unit_place(u) for u in unit_labels.upcoming(
        db, design_id, reviewer, LOOKAHEAD, skip=(unit["id"],))], cache)
    state["waiting_point"] = None
    if prepared is None:
        message = preparation.unavailable(cache, place).replace("this detection", "this point")
        if lookahead.pending(place["id"]):
            state["waiting_point"] = place["id"]
            message = ("Imagery of this point is being prepared; it appears here by itself. You can "
                       "label without it: the label then records that no imagery was shown.")
        left.info(message)
        state["unit_shown"] = shown
        return
    shown.update(common.chip_pair(left, right, prepared, view, dehazed, "this point"))
    state["unit_shown"] = shown


def _label(label: str) -> None:
    state = st.session_state
    unit_id = state.get("current_unit")
    if unit_id is None:
        return
    db = common.connection()
    shown = state.get("unit_shown") or {}
    if shown.get("id") != unit_id:
        shown = {"before": NO_IMAGERY, "after": NO_IMAGERY}
    taken = unit_labels.holder_of(db, unit_id)
    if taken is not None and taken["holder"] != common.holder():
        state["flash_error"] = (f"Nothing recorded: this point was taken over by {taken['reviewer']} "
                                "meanwhile (your claim had lapsed). Here is the next one.")
        _move_on()
        return
    try:
        common.require(db, "verdict")
        unit_labels.record(db, unit_id, common.reviewer_name(db), label,
                           note=state.get("unit_note") or None, before=shown["before"],
                           after=shown["after"], design_id=state.get("unit_design"))
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    state["flash"] = f"Point labelled: {WORDS[label]}"
    _move_on()


def _move_on() -> None:
    state = st.session_state
    state["current_unit"] = None
    state["unit_note"] = ""
    state.pop("unit_shown", None)


def _skip() -> None:
    state = st.session_state
    unit_id = state.get("current_unit")
    if unit_id is None:
        return
    state["unit_skips"] = [*state.get("unit_skips", ()), unit_id]
    unit_labels.release(common.connection(), common.holder())
    state["flash"] = "Point skipped for now (it stays in the sample: someone must label it)"
    _move_on()


def _undo(design_id: int) -> None:
    state = st.session_state
    db = common.connection()
    reviewer = common.reviewer_name(db)
    unit_id = unit_labels.last_labelled(db, reviewer, design_id)
    if unit_id is None:
        state["flash_error"] = "Nothing of yours to undo."
        return
    try:
        common.require(db, "verdict")
        unit_labels.undo(db, unit_id, reviewer, own_only=True)
        unit_labels.claim(db, unit_id, reviewer, common.holder())
    except ReviewError as exc:
        state["flash_error"] = str(exc)
        return
    _move_on()
    state["current_unit"] = unit_id
    state["flash"] = "Label undone"
