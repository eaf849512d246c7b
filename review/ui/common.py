"""What every page shares: page set-up, who is at the keyboard (a remembered name, or a
signed-in account), the session's database connection, the cached model, the filter
sidebar, uploads read through a temporary file, progress bars."""
from __future__ import annotations

import html
import ipaddress
import json
import uuid
from datetime import date
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote, unquote

import sqlite_utils
import streamlit as st

from .. import settings, store
from ..analysis import areas, context, sampling
from ..detection import uploads
from ..detection.models import LoadedModel, cached_model
from ..detection.tensorflow_runtime import device_description
from ..errors import ReviewError
from ..judging import queue, unit_labels, users
from ..judging.verdicts import STATUSES
from ..progress import Progress, fraction

_CONNECTION = "_review_db"


APP_ICON = "⛏"      # the browser tab's icon, an emoji: drawn by the browser, nothing fetched

# Sidebar entries: (file, title, icon, action the page needs). Home is the app's own page.
# The icons come from the Material Symbols font inside Streamlit (offline); see navigation().
PAGES = (("app_pages/1_Detect.py", "Detect", ":material/radar:", "detect"),
         ("app_pages/2_Review.py", "Review", ":material/fact_check:", "verdict"),
         ("app_pages/3_Map.py", "Map", ":material/map:", None),
         ("app_pages/6_Sites.py", "Sites", ":material/hub:", None),
         ("app_pages/4_Trends.py", "Trends", ":material/monitoring:", None),
         ("app_pages/4_Assessment.py", "Assessment", ":material/target:", None),
         ("app_pages/7_Field_reports.py", "Field reports", ":material/photo_camera:", "report"),
         ("app_pages/5_Export.py", "Export", ":material/download:", None),
         ("app_pages/8_Models.py", "Models", ":material/model_training:", None),
         ("app_pages/6_Agreement.py", "Agreement", ":material/groups:", None),
         ("app_pages/9_Accounts.py", "Accounts", ":material/group:", "users"))


def navigation(home) -> st.navigation:
    """The sidebar's pages, named as pages; those the signed-in role may not use are left
    out of it (and refuse to work if reached by their address)."""
    # The tab's icon is set before the navigation is sent: a page's `:material/...:` icon
    # (drawn in the sidebar from the Material Symbols font Streamlit bundles) would otherwise
    # become the favicon, which Streamlit's frontend fetches from fonts.gstatic.com.
    st.set_page_config(page_icon=APP_ICON, layout="wide")
    try:
        db = connection()
        current = user(db)
    except ReviewError:
        current = None
    entries = [st.Page(home, title="Home", icon=":material/home:", url_path="home", default=True)]
    for path, title, icon, action in PAGES:
        allowed = current is None or action is None or current.can(action)
        entries.append(st.Page(path, title=title, icon=icon, url_path=title.replace(" ", "_"),
                               visibility="visible" if allowed else "hidden"))
    return st.navigation(entries)


def setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Mining review", page_icon=APP_ICON, layout="wide")


class _Held:
    """The session's connection, kept in session state as itself: Streamlit deep-copies
    session state at times, and a connection cannot (and must not) be copied."""

    def __init__(self, path, db: sqlite_utils.Database):
        self.path, self.db = path, db

    def __deepcopy__(self, memo) -> "_Held":
        return self


def connection() -> sqlite_utils.Database:
    """This browser session's connection to the review database, opened (and migrated)
    on first use. One per session, not one shared by all: each session's write
    transactions (claims, verdicts) stay its own."""
    path = settings.db_path()
    held = st.session_state.get(_CONNECTION)
    if held is None or held.path != path:
        if held is not None:
            held.db.close()
        held = _Held(path, store.connect(path))
        st.session_state[_CONNECTION] = held
    return held.db


def page(title: str, heading: bool = True, action: str | None = None) -> sqlite_utils.Database | None:
    """Set the page up, open the database and make sure someone may use it: with accounts,
    a signed-in user whose role may do `action`. None (with the reason shown) otherwise."""
    setup(title)
    _flush_cookies()
    try:
        db = connection()
    except ReviewError as exc:
        if heading:
            st.title(title)
        st.error(str(exc))
        return None
    if title != "Review" and st.session_state.pop("_review_claim", None):
        # Leaving the Review page lets go of the detection (or point) this session held there.
        queue.release(db, holder())
        unit_labels.release(db, holder())
    current = user(db)
    if current is None:
        if users.accounts_configured(db):
            _sign_in_form(db)
        else:
            _accounts_needed()
        return None
    if current.via == "network":
        st.warning("Anyone who can reach this address reviews here without an account "
                   "(REVIEW_ALLOW_ANONYMOUS_NETWORK is on): verdicts carry the names people type.")
    _identity_sidebar(db, current)
    if heading:
        st.title(title)
    if action and not current.can(action):
        st.warning(f"{title} is for {users.minimum_role(action)}s; you are signed in as "
                   f"{current.name} ({current.role}).")
        return None
    return db


# ----------------------------------------------------------------- who is at the keyboard

SESSION_COOKIE = "review_session"     # a signed, expiring token (accounts configured)
NAME_COOKIE = "review_name"           # the remembered name (no accounts: one local user)


def user(db) -> users.User | None:
    """Who uses this session. Without accounts: the local user under the name they gave
    (remembered across pages and reloads); with accounts: the signed-in user, checked on
    every run, so a changed password or a removed account signs the session out."""
    state = st.session_state
    if not users.accounts_configured(db):
        if from_network() and not settings.anonymous_network():
            return None
        if "reviewer_name" not in state:
            state["reviewer_name"] = (state.get("reviewer") or _cookie(NAME_COOKIE)).strip()[:64]
        name = state["reviewer_name"]
        if from_network():
            # Allowed by the operator: a reviewer, never the admin of this machine.
            return users.User(name or "anonymous", "reviewer", via="network")
        return users.User(name or users.LOCAL_USER, "admin", via="dashboard")
    token = state.get("_session_token") or _cookie(SESSION_COOKIE)
    current = users.user_from_token(db, token)
    if current is None:
        state.pop("_session_token", None)
    else:
        state["_session_token"] = token
    return current


def from_network() -> bool:
    """Whether this browser reaches the server from another machine (Streamlit gives no
    address for a visitor on localhost)."""
    address = st.context.ip_address
    if not address or not isinstance(address, str):       # localhost; or no browser at all
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True


def _cookie(name: str) -> str:
    value = st.context.cookies.get(name)
    return unquote(value) if isinstance(value, str) else ""     # no browser: no cookie


def reviewer_name(db) -> str:
    """The name a verdict is recorded under ('' when a name is still to be given)."""
    current = user(db)
    if current is None:
        return ""
    if users.accounts_configured(db):
        return current.name
    return st.session_state.get("reviewer_name", "")


def require(db, action: str) -> users.User:
    """The current user, if their role may do `action`; PermissionDenied otherwise (the
    server refuses, whatever the page showed)."""
    current = user(db)
    if current is None:
        raise users.PermissionDenied("sign in first")
    current.require(action)
    return current


def _set_cookie(name: str, value: str, max_age: int) -> None:
    # Written by the browser on the next run: st.rerun() would stop this run before an
    # element could reach it.
    st.session_state.setdefault("_cookies", []).append((name, value, max_age))


def _flush_cookies() -> None:
    pending = st.session_state.pop("_cookies", [])
    if not pending:
        return
    secure = "; Secure" if str(st.context.url or "").startswith("https") else ""
    script = "".join(
        f"document.cookie = {json.dumps(f'{name}={quote(value)}; path=/; max-age={age}; SameSite=Strict{secure}')};"
        for name, value, age in pending)
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def _remember_name() -> None:
    name = (st.session_state.get("reviewer") or "").strip()[:64]
    st.session_state["reviewer_name"] = name
    _set_cookie(NAME_COOKIE, name, 365 * 24 * 3600)


def _identity_sidebar(db, current: users.User) -> None:
    state = st.session_state
    with st.sidebar:
        if not users.accounts_configured(db):
            # The name lives on in reviewer_name (and a cookie): an empty box (a fresh
            # session, another page) is filled from it; what is typed is never overwritten.
            if not state.get("reviewer"):
                state["reviewer"] = state.get("reviewer_name", "")
            st.text_input("Your name (recorded with every verdict)", key="reviewer",
                          on_change=_remember_name, max_chars=64)
            return
        st.markdown(f"Signed in as **{html.escape(current.name)}** ({current.role})")
        st.button("Sign out", key="sign_out", on_click=_sign_out)


def _sign_out() -> None:
    # Ended on the server: the same cookie, copied to another browser, signs nobody in.
    token = st.session_state.pop("_session_token", None) or _cookie(SESSION_COOKIE)
    users.end_session(connection(), token)
    _set_cookie(SESSION_COOKIE, "", 0)


def _accounts_needed() -> None:
    st.title("An account is needed")
    st.write("This dashboard has no accounts yet, so it works only on the computer it runs "
             "on. Whoever runs it adds accounts first (`python -m review user add NAME --role "
             "admin`, then one per person); then everyone signs in here.")


def _sign_in_form(db) -> None:
    st.title("Sign in")
    st.caption("This review database has accounts: sign in to review.")
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name", max_chars=64)
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 max_chars=users.MAX_PASSWORD)
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        signed_in = users.sign_in(db, name, password)
    except ReviewError as exc:
        st.error(str(exc).capitalize() + ".")
        return
    token = users.issue_token(db, signed_in)
    st.session_state["_session_token"] = token
    _set_cookie(SESSION_COOKIE, token, users.TOKEN_TTL_S)
    st.rerun()


@st.cache_resource(show_spinner=False)
def _device_check() -> Future:
    # Importing TensorFlow takes seconds: pages that only mention the device do not wait.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="device").submit(device_description)


def device(wait: bool = True) -> str:
    """'CPU' or 'GPU (...)'; without `wait`, a plain note while TensorFlow is still loading."""
    check = _device_check()
    if wait or check.done():
        return check.result()
    return "being checked (TensorFlow is loading)"


def model(spec: str) -> LoadedModel:
    """The model, loaded once per process (shared with every session, as on a Dask worker);
    a first download shows its progress."""
    bar = st.empty()

    def downloading(done: int, total: int | None, what: str) -> None:
        size = f" of {total / 1e6:,.1f} MB" if total else ""
        bar.progress(fraction(done, total), text=f"Downloading {what} (first use only): "
                                                 f"{done / 1e6:,.1f}{size}")

    try:
        with st.spinner("Loading model…"):
            return cached_model(spec, progress=downloading)
    finally:
        bar.empty()


def chip_pair(left, right, prepared, view: str, dehazed: bool, what: str) -> dict:
    """Draw prepared before/after chips in two columns (a note where a side is missing);
    returns what was shown, {"before": Imagery, "after": Imagery} for the sides drawn: what
    a verdict or a label records."""
    shown = {}
    for column, side, word in ((left, prepared.before, "Before"), (right, prepared.after, "After")):
        if side is None:
            column.info(prepared.note or f"No earlier imagery covers {what}.")
            continue
        imagery = side.shown(view, dehazed)
        hint = " · looks hazy: try Remove haze" if side.hazy and not dehazed else ""
        column.image(str(side.path(view, dehazed)), caption=f"{word}: {imagery.label()}{hint}")
        shown[word.lower()] = imagery
    if view == "false" and "false" not in prepared.views:
        st.caption("These scenes have no short-wave infrared band: shown in true colour.")
    return shown


def show_error(exc: BaseException, prefix: str = "", names: dict[str, str] | None = None) -> None:
    """A domain error as one plain sentence, with the underlying details (if any) in an
    expander below it. `names` spells kept files as the person knows them (an upload's
    own name for the path it was kept under)."""
    from ..errors import sentence

    def spelt(text: str) -> str:
        for kept, known in (names or {}).items():
            text = text.replace(kept, known)
        return text

    st.error(sentence(spelt(prefix + str(exc))))
    details = getattr(exc, "details", None)
    if details:
        with st.expander("Details"):
            st.code(spelt(details), language=None, wrap_lines=True)


def holder() -> str:
    """This browser session's claim holder: claims belong to a session, not to a name, so
    two tabs under one name never get the same detection."""
    return st.session_state.setdefault("_claim_holder", f"session-{uuid.uuid4().hex[:12]}")


def moves(bar, label) -> Progress:
    """A Progress callback that moves a st.progress bar, with the text label(done, total, what)."""
    return lambda done, total, what: bar.progress(fraction(done, total), text=label(done, total, what))


@contextmanager
def uploaded_file(upload) -> Iterator:
    """An uploaded file as a path in a temporary folder (None without an upload)."""
    if upload is None:
        yield None
        return
    with uploads.temporary_copy(upload.getvalue(), upload.name) as path:
        yield path


EARLIEST_PERIOD = date(1972, 7, 23)     # Landsat 1's launch: no imagery is older


def period_picker(label: str, key: str, help: str | None = None) -> str | None:
    """A day picked on a calendar, empty by default, as YYYY-MM-DD (None when empty)."""
    picked = st.date_input(label, value=None, min_value=EARLIEST_PERIOD,
                           max_value=date(date.today().year + 1, 12, 31), format="YYYY-MM-DD",
                           key=key, help=help)
    return picked.isoformat() if picked else None


def filters_sidebar(db, with_status: bool = False, default_status: str = "all") -> queue.Filters:
    """The sidebar's filters; without a status choice the queue's (pending) detections."""
    with st.sidebar:
        sources = st.multiselect("Sources", queue.sources(db), key="f_sources")
        low, high = st.slider("Score", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_score")
        # Calendar pickers: typed nonsense cannot become a filter that silently matches
        # nothing (or, in another format, nothing at all).
        period_from = period_picker("Period from", "f_from",
                                    help="detections whose period ends on or after this day")
        period_to = period_picker("Period to", "f_to",
                                  help="detections whose period starts on or before this day")
        if period_from and period_to and period_from > period_to:
            st.warning("“Period from” is after “Period to”: no detection can match. "
                       "Swap them, or clear one.")
        status = None
        if with_status:
            options = ["all", *STATUSES]
            status = st.selectbox("Status", options, index=options.index(default_status), key="f_status")
        upload = st.file_uploader("Area of interest (GeoJSON)", type=["geojson", "json"], key="f_aoi")
        samples = {s["id"]: s["name"] for s in reversed(sampling.listing(db))}
        sample_id = None
        if samples:
            sample_id = st.selectbox("Only a random sample", [None, *samples], key="f_sample",
                                     format_func=lambda i: "(all detections)" if i is None
                                     else f"{i}: {samples[i]}")
        layer, value = context_choice(db, "f_context")
    try:
        with uploaded_file(upload) as path:
            area = None if path is None else areas.read_area(path)
    except ReviewError as exc:
        st.sidebar.error(str(exc))
        area = None
    return queue.Filters(sources=sources, score_min=low if low > 0 else None,
                         score_max=high if high < 1 else None,
                         period_from=period_from, period_to=period_to, area=area,
                         sample_id=sample_id,
                         status=(None if status == "all" else status) if with_status else "pending",
                         context=layer, context_value=value)


def filters_in_words(filters: queue.Filters) -> str:
    """The sidebar's filters that narrow the detections, as a short phrase ("" for none)."""
    parts = []
    if filters.status:
        parts.append(f"status {filters.status.replace('_', ' ')}")
    if filters.sources:
        parts.append("source " + ", ".join(filters.sources))
    if filters.score_min is not None or filters.score_max is not None:
        parts.append(f"score {filters.score_min or 0:.2f} to {filters.score_max or 1:.2f}")
    if filters.period_from or filters.period_to:
        parts.append(f"period {filters.period_from or '…'} to {filters.period_to or '…'}")
    if filters.area is not None:
        parts.append("inside the area of interest")
    if filters.sample_id is not None:
        parts.append(f"random sample {filters.sample_id}")
    if filters.context:
        parts.append(f"inside {filters.context}" + (f" ({filters.context_value})"
                                                     if filters.context_value else ""))
    return "; ".join(parts)


def context_choice(db, key: str) -> tuple[str | None, str | None]:
    """The choice of a context layer (shown only when there are layers) and, once one is
    chosen, of one of its values: (layer, value), None for any. Call inside the sidebar."""
    layers = context.layer_names(db)
    if not layers:
        return None, None
    layer = st.selectbox("Inside a context layer", [None, *layers], key=key,
                         format_func=lambda name: "(anywhere)" if name is None else name,
                         help="only detections whose footprint overlaps the layer's polygons")
    if layer is None:
        return None, None
    try:
        with st.spinner("Checking new detections against the context layers…"):
            found = dict(context.values(db, layer))
    except ReviewError as exc:          # removed meanwhile, by someone else
        st.error(str(exc))
        return None, None
    # One value box per layer: a value chosen in one layer means nothing in another.
    value = st.selectbox(f"…in which of {layer}", [None, *found], key=f"{key}_value_{layer}",
                         format_func=lambda v: "(any)" if v is None else
                         f"{v} ({found[v]:,} detection{'' if found[v] == 1 else 's'})")
    return layer, value
