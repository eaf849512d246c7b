"""What every page shares: page set-up, the session's database connection, the cached
model, the filter sidebar, uploads read through a temporary file, progress bars."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlite_utils
import streamlit as st

from .. import areas, queue, sampling, settings, store, uploads
from ..errors import ReviewError
from ..models import LoadedModel, cached_model, device_description
from ..progress import Progress, fraction, silent
from ..verdicts import STATUSES

_CONNECTION = "_review_db"


def setup(title: str) -> None:
    st.set_page_config(page_title=f"{title} · Mining review", page_icon="⛏", layout="wide")


def connection() -> sqlite_utils.Database:
    """This browser session's connection to the review database, opened (and migrated)
    on first use. One per session, not one shared by all: each session's write
    transactions (claims, verdicts) stay its own."""
    path = settings.db_path()
    held = st.session_state.get(_CONNECTION)
    if held is None or held[0] != path:
        if held is not None:
            held[1].close()
        held = (path, store.connect(path))
        st.session_state[_CONNECTION] = held
    return held[1]


def page(title: str, heading: bool = True) -> sqlite_utils.Database | None:
    """Set the page up and open the database; None (with the reason shown) if it cannot be."""
    setup(title)
    if heading:
        st.title(title)
    try:
        return connection()
    except ReviewError as exc:
        st.error(str(exc))
        return None


@st.cache_resource(show_spinner=False)
def device() -> str:
    return device_description()


def model(spec: str) -> LoadedModel:
    """The model, loaded once per process (shared with every session, as on a Dask worker)."""
    with st.spinner("Loading model…"):
        return cached_model(spec, progress=silent)


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


def filters_sidebar(db, with_status: bool = False, default_status: str = "all") -> queue.Filters:
    """The sidebar's filters; without a status choice the queue's (pending) detections."""
    with st.sidebar:
        sources = st.multiselect("Sources", queue.sources(db), key="f_sources")
        low, high = st.slider("Score", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_score")
        period_from = st.text_input("Period from (YYYY-MM-DD)", key="f_from")
        period_to = st.text_input("Period to (YYYY-MM-DD)", key="f_to")
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
    try:
        with uploaded_file(upload) as path:
            area = None if path is None else areas.read_area(path)
    except ReviewError as exc:
        st.sidebar.error(str(exc))
        area = None
    return queue.Filters(sources=sources, score_min=low if low > 0 else None,
                         score_max=high if high < 1 else None, period_from=period_from or None,
                         period_to=period_to or None, area=area, sample_id=sample_id,
                         status=(None if status == "all" else status) if with_status else "pending")
