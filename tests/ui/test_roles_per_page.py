"""Role checks on the real pages (app.py and app_pages/*): for every page and every action
that changes something, a session one role too low is refused on the server, and nothing is
written. Below a reviewer comes a session that is signed out (here: signed out elsewhere,
its token still in the tab).

Two ways in for each action of the table below:
- by the page's address: the lower role is told why, or the control is simply not there
  (or drawn disabled, and then clicked anyway: a crafted rerun);
- a crafted rerun: the page is drawn for a role that may act, the session's role drops
  (an admin demotes the account, or the session is signed out elsewhere), and the control
  is used anyway. The server must check on that rerun, not trust what it drew before.

A new page or action is one more row in ACTIONS."""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import shapely
from streamlit.testing.v1 import AppTest

from review import settings
from review.analysis import assessment, sites
from review.judging import queue, unit_labels, users, verdicts
from review.store import connect

from tests.conftest import REPO, add_detections, import_squares

TIMEOUT = 120
KEY = b"test key"
PASSWORD = "a long enough password"
# One account per role; a second admin lets the first be demoted.
NAMES = {"reviewer": "ana", "editor": "eda", "admin": "adam"}
SIGNED_OUT = "signed out"
LOWER = {"reviewer": SIGNED_OUT, "editor": "reviewer", "admin": "editor"}

HOME, DETECT, REVIEW, MAP = "app.py", "app_pages/1_Detect.py", "app_pages/2_Review.py", "app_pages/3_Map.py"
TRENDS, EXPORT, AGREEMENT, SITES = ("app_pages/4_Trends.py", "app_pages/5_Export.py",
                                    "app_pages/6_Agreement.py", "app_pages/6_Sites.py")
ASSESSMENT = "app_pages/4_Assessment.py"
REPORTS, MODELS, ACCOUNTS = "app_pages/7_Field_reports.py", "app_pages/8_Models.py", "app_pages/9_Accounts.py"
ALL_PAGES = (HOME, DETECT, REVIEW, MAP, TRENDS, ASSESSMENT, EXPORT, AGREEMENT, SITES, REPORTS,
             MODELS, ACCOUNTS)

SIGN_IN = "Sign in"
DETECT_REFUSAL = "Detect is for editors"
EXPORT_REFUSAL = "Exports are for editors"
ACCOUNTS_REFUSAL = "Accounts is for admins"
NEEDS_EDITOR = "is a reviewer; this needs an editor"


# ------------------------------------------------------------------ data some actions need


def _disputed(db) -> None:
    """Detection 1 disputed: verified by one reviewer, a false positive for the second."""
    verdicts.set_second_opinion(db, "verified")
    verdicts.record(db, 1, "ana", "verified")
    verdicts.record(db, 1, "ben", "false_positive", reason="riverbank")


def _final_by_eda(db) -> None:
    _disputed(db)
    verdicts.record(db, 1, "eda", "verified", final=True)


def _ana_verified(db) -> None:
    verdicts.record(db, 2, "ana", "verified")


def _held_by_ben(db) -> None:
    queue.claim(db, "ben", 1, holder="ben's tab")


def _sites_built(db) -> None:
    sites.build(db)


def _a_trained_model(db) -> None:
    """A trained (before/after) model's card in the models folder: the page lists it and
    offers its actions; the checkpoint itself is never loaded by a refused action."""
    folder = settings.model_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "change.keras").write_bytes(b"not loaded by a refused action")
    (folder / "change.json").write_text(json.dumps({
        "id": "change", "patch_size": 16, "bands": ["B2", "B3", "B4", "B8"], "input": "pair"}))


def _a_verified_and_a_model(db) -> None:
    _ana_verified(db)
    _a_trained_model(db)


def _enough_to_train(db) -> None:
    """Ten verified and ten false-positive detections: the Train button is enabled."""
    for number in range(20):
        verdicts.record(db, add_detections(db, 1, source=f"t{number}")[0], "ana",
                        "verified" if number < 10 else "false_positive",
                        reason=None if number < 10 else "riverbank")


REGION = shapely.box(-60.05, -5.05, -57.9, -4.9)        # around the imported squares


def _region_geojson() -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(REGION))}]}).encode()


def _a_design(db) -> None:
    """An area assessment over the squares, with its points to label (design 1)."""
    strata = assessment.make_strata(db, REGION, assessment.parse_period("2023"),
                                    *assessment.parse_strata(None))
    assessment.create(db, "squares 2023", strata, [2, 2, 2], "Sizes as given.")


def _geojson() -> bytes:
    box = shapely.box(-50, -5, -49.99, -4.99)
    return json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"pred": 0.8},
        "geometry": json.loads(shapely.to_geojson(box))}]}).encode()


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Action:
    page: str
    name: str
    needs: str                                  # the lowest role that may do it
    control: tuple[str, str, str]               # (widget kind, "key" | "label" | "prefix", value)
    fills: tuple = ()                           # (widget kind, key, value) set before the trigger
    told: str | None = None                     # shown after the crafted rerun (None: the control is gone)
    told_at_address: str | None = None          # shown to the lower role reaching the page
    prepare: Callable | None = None             # data the action needs
    state: dict = field(default_factory=dict)   # session state before the first run
    empty: bool = False                         # on a database with no detections
    offered: Callable | None = None             # whether the page offers it (default: the control, enabled)
    not_kept: tuple = ()                        # session state the action would have left

    def __str__(self) -> str:
        return f"{Path(self.page).stem}: {self.name}"


def _disputes_offered(at) -> bool:
    """The editor's queue of disputes is among the orders (the verdict keys are everyone's)."""
    orders = [s for s in at.selectbox if s.key == "order"]
    return bool(orders) and any(o.startswith("disputed") for o in orders[0].options)


ACTIONS = [
    # Home
    Action(HOME, "import a file of detections", "editor", ("button", "key", "import_button"),
           fills=(("file_uploader", "import_file", ("more.geojson", _geojson(), "application/geo+json")),)),
    Action(HOME, "load the example detections", "editor",
           ("button", "label", "Load the example detections"), empty=True),
    # Detect
    Action(DETECT, "run the detector on a tile", "editor", ("button", "label", "Run detector"),
           fills=(("text_input", "tile_path", "/nowhere/tile.tif"),), told=DETECT_REFUSAL,
           told_at_address=DETECT_REFUSAL),
    Action(DETECT, "fetch an area and detect", "editor", ("button", "label", "Run detector"),
           fills=(("text_input", "area_bbox", "-57.0,-5.0,-56.95,-4.95"),), told=DETECT_REFUSAL,
           told_at_address=DETECT_REFUSAL),
    # Review
    Action(REVIEW, "verified", "reviewer", ("button", "key", "verdict_verified"), told=SIGN_IN),
    Action(REVIEW, "unsure", "reviewer", ("button", "key", "verdict_unsure"), told=SIGN_IN),
    Action(REVIEW, "false positive", "reviewer", ("button", "key", "fp_riverbank"), told=SIGN_IN),
    Action(REVIEW, "skip", "reviewer", ("button", "key", "verdict_skip"), told=SIGN_IN),
    Action(REVIEW, "undo one's verdict", "reviewer", ("button", "key", "verdict_undo"),
           told=SIGN_IN, prepare=_ana_verified),
    Action(REVIEW, "review anyway", "reviewer", ("button", "key", "review_anyway"), told=SIGN_IN,
           prepare=_held_by_ben, state={"open_detection": 1}),
    Action(REVIEW, "final decision: verified", "editor", ("button", "key", "verdict_verified"),
           told=NEEDS_EDITOR, prepare=_disputed, state={"order": "disputed"}, offered=_disputes_offered),
    Action(REVIEW, "final decision: false positive", "editor", ("button", "key", "fp_riverbank"),
           told=NEEDS_EDITOR, prepare=_disputed, state={"order": "disputed"}, offered=_disputes_offered),
    Action(REVIEW, "undo a final decision", "editor", ("button", "key", "verdict_undo"),
           told=NEEDS_EDITOR, prepare=_final_by_eda),
    # Map
    Action(MAP, "open a detection in Review", "reviewer", ("button", "key", "open_button"),
           state={"open_id": 1}, told=SIGN_IN, not_kept=("open_detection",)),
    # Sites
    Action(SITES, "build sites", "editor", ("button", "key", "sb_build"), told="An editor builds them",
           told_at_address="An editor builds them"),
    Action(SITES, "rebuild sites", "editor", ("button", "key", "sb_build"), prepare=_sites_built),
    # Trends
    Action(REVIEW, "label an assessment point", "reviewer", ("button", "key", "unit_mining"),
           told=SIGN_IN, prepare=_a_design, state={"order": "assess:1"}),
    Action(REVIEW, "undo one's label", "reviewer", ("button", "key", "unit_undo"), told=SIGN_IN,
           prepare=lambda db: (_a_design(db), unit_labels.record(db, 1, "ana", "mining")),
           state={"order": "assess:1"}),
    Action(ASSESSMENT, "create an assessment design", "editor", ("button", "label", "Draw the points"),
           fills=(("text_input", "as_name", "crafted"), ("text_input", "as_period", "2023"),
                  ("file_uploader", "as_region", ("aoi.geojson", _region_geojson(), "application/geo+json")))),
    Action(TRENDS, "leave an import out of Trends", "editor", ("checkbox", "prefix", "t_show_")),
    Action(TRENDS, "draw a random sample", "editor", ("button", "label", "Draw sample"),
           fills=(("text_input", "s_name", "crafted"),)),
    # Field reports
    Action(REPORTS, "file a report", "reviewer", ("button", "key", "fr_save"),
           fills=(("text_area", "fr_text_0", "a new pit beside the river"),), told=SIGN_IN),
    # Export
    Action(EXPORT, "prepare the file", "editor", ("button", "key", "x_prepare"),
           told=EXPORT_REFUSAL, told_at_address=EXPORT_REFUSAL,
           prepare=_ana_verified, not_kept=("export_file",)),
    Action(EXPORT, "prepare training samples", "editor", ("button", "key", "x_samples"),
           told=EXPORT_REFUSAL, told_at_address=EXPORT_REFUSAL,
           prepare=_ana_verified),
    Action(EXPORT, "make the evidence picture", "reviewer", ("button", "key", "x_evidence"),
           told=SIGN_IN, prepare=_ana_verified),
    # Models
    Action(MODELS, "train a model", "editor", ("button", "label", "Train"), prepare=_enough_to_train),
    Action(MODELS, "evaluate a trained model", "reviewer", ("button", "key", "m_evaluate"),
           told=SIGN_IN, prepare=_a_trained_model, not_kept=("m_evaluation",)),
    Action(MODELS, "rescore pending detections", "editor", ("button", "key", "m_rescore"),
           prepare=_a_verified_and_a_model, not_kept=("m_rescored",)),
    Action(MODELS, "compute the embedding", "reviewer", ("button", "key", "m_embed"),
           told=SIGN_IN, prepare=_a_trained_model, not_kept=("m_embedding",)),
    # Accounts
    Action(ACCOUNTS, "add an account", "admin", ("button", "label", "Add account"),
           fills=(("text_input", "acc_name", "mallory"), ("text_input", "acc_password", PASSWORD)),
           told=ACCOUNTS_REFUSAL, told_at_address=ACCOUNTS_REFUSAL),
    Action(ACCOUNTS, "change a role", "admin", ("button", "key", "acc_change_role"),
           fills=(("selectbox", "acc_chosen", "ana"), ("selectbox", "acc_new_role", "admin")),
           told=ACCOUNTS_REFUSAL, told_at_address=ACCOUNTS_REFUSAL),
    Action(ACCOUNTS, "set a password", "admin", ("button", "key", "acc_set_password"),
           fills=(("selectbox", "acc_chosen", "ana"), ("text_input", "acc_new_password", "mallory's password")),
           told=ACCOUNTS_REFUSAL, told_at_address=ACCOUNTS_REFUSAL),
    Action(ACCOUNTS, "remove an account", "admin", ("button", "key", "acc_remove"),
           fills=(("selectbox", "acc_chosen", "ana"),), told=ACCOUNTS_REFUSAL, told_at_address=ACCOUNTS_REFUSAL),
]


# ------------------------------------------------------------------ the database and sessions


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Two databases built once: accounts with the six imported squares, and accounts alone."""
    folder = tmp_path_factory.mktemp("roles")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REVIEW_DATA_DIR", str(folder / "data"))
        made = {}
        for kind in ("squares", "empty"):
            db = connect(folder / f"{kind}.db")
            for role, name in [*NAMES.items(), ("admin", "root")]:
                users.add(db, name, PASSWORD, role=role)
            if kind == "squares":
                import_squares(db, folder)
            db.close()
            made[kind] = folder / f"{kind}.db"
    return made


@pytest.fixture
def database(templates, tmp_path, monkeypatch):
    """A copy of a template for this test, set for the pages (REVIEW_DB)."""
    def make(empty: bool) -> Path:
        path = tmp_path / "review.db"
        with closing(sqlite3.connect(templates["empty" if empty else "squares"])) as source, \
                closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        monkeypatch.setenv("REVIEW_DB", str(path))
        return path

    monkeypatch.setenv("REVIEW_SECRET_KEY", KEY.decode())
    monkeypatch.setenv("REVIEW_CHIP_SOURCES", "scenes")        # nothing to fetch
    return make


def _token(path: Path, role: str) -> str:
    name = NAMES["reviewer" if role == SIGNED_OUT else role]
    with closing(connect(path)) as db:
        token = users.issue_token(db, users.User(name, role), key=KEY)
        if role == SIGNED_OUT:
            users.end_session(db, token, key=KEY)
    return token


def _drop(path: Path, role: str, token: str) -> None:
    """The session's role drops to the next lower one, its tab still open: the account is
    demoted by an admin, or (below a reviewer) the session is signed out elsewhere."""
    lower = LOWER[role]
    with closing(connect(path)) as db:
        if lower == SIGNED_OUT:
            assert users.end_session(db, token, key=KEY)
        else:
            users.set_role(db, NAMES[role], lower)


VOLATILE = {"sessions", "sign_in_failures"}            # signing in and out, not acting
CLAIM_COLUMNS = ("detection_id", "reviewer", "holder")  # renewals move only the times


def _stored(path: Path) -> dict:
    """Everything the action could have written: every table, and the files in the data
    and models folders."""
    found = {}
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table' "
                                           "and name not like 'sqlite_%'")]
        for table in tables:
            if table in VOLATILE:
                continue
            columns = [r[1] for r in db.execute(f"pragma table_info('{table}')")]
            keep = [c for c in columns if table not in ("claims", "unit_claims")
                    or c in (*CLAIM_COLUMNS, "unit_id")]
            rows = db.execute(f"select {', '.join(keep)} from '{table}'").fetchall()
            if table in ("claims", "unit_claims"):
                # This test's own sessions claim what their (redrawn) queue shows; nobody
                # else's claim may be taken.
                rows = [r for r in rows if not r[2].startswith("session-")]
            found[table] = sorted(map(repr, rows))
    for folder in (settings.data_dir(), settings.model_cache_dir()):
        found[str(folder)] = sorted(
            (str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).parts[0] != "chips")
    return found


# ------------------------------------------------------------------ pages and controls


def _page(row: Action, token: str) -> AppTest:
    at = AppTest.from_file(str(REPO / row.page), default_timeout=TIMEOUT)
    at.session_state["_session_token"] = token
    for key, value in row.state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _matches(widget, how: str, value: str) -> bool:
    key = getattr(widget, "key", None) or ""
    if how == "key":
        return key == value
    if how == "prefix":
        return key.startswith(value)
    return getattr(widget, "label", None) == value


def _controls(at: AppTest, row: Action) -> list:
    kind, how, value = row.control
    return [w for w in getattr(at, kind) if _matches(w, how, value)]


def _offered(at: AppTest, row: Action) -> bool:
    if row.offered is not None:
        return row.offered(at)
    return any(not w.disabled for w in _controls(at, row))


def _fill(at: AppTest, row: Action) -> None:
    for kind, key, value in row.fills:
        widget = getattr(at, kind)(key=key)
        if kind == "file_uploader":
            widget.upload(*value)
        elif kind in ("text_input", "text_area"):
            widget.input(value)
        elif kind == "selectbox":
            widget.select(value)
        else:
            widget.set_value(value)


def _trigger(at: AppTest, row: Action) -> None:
    """Use the control, whatever the page drew it as (a crafted message does the same)."""
    (widget, *_) = _controls(at, row)
    widget.proto.disabled = False          # a crafted browser ignores what the page drew
    if row.control[0] == "checkbox":
        widget.set_value(not widget.value)
    else:
        widget.click()


def _shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("title", "warning", "error", "info", "markdown", "caption")
                     for e in at.get(kind))


def _refused(at: AppTest, row: Action, told: str | None, before: dict, path: Path) -> None:
    assert not at.exception, at.exception
    assert _stored(path) == before, "the refused action wrote something"
    for key in row.not_kept:
        assert key not in at.session_state, f"{key} was kept for a refused session"
    if told:
        assert told in _shown(at), _shown(at)
    else:
        assert not _offered(at, row), "the page still offers it"


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("row", ACTIONS, ids=str)
def test_a_lower_role_reaching_the_page_is_not_offered_the_action(database, row):
    path = database(row.empty)
    lower = LOWER[row.needs]
    if row.prepare:
        with closing(connect(path)) as db:
            row.prepare(db)
    at = _page(row, _token(path, lower))
    if lower == SIGNED_OUT:
        assert [t.value for t in at.title] == [SIGN_IN]
    if row.told_at_address:
        assert row.told_at_address in _shown(at), _shown(at)
    assert not _offered(at, row), f"{row} is offered to a {lower}"
    if _controls(at, row) and row.offered is None:
        # Drawn disabled: a crafted message uses it anyway (and nothing happens).
        _fill(at, row)
        before = _stored(path)
        _trigger(at, row)
        at.run()
        _refused(at, row, None, before, path)


@pytest.mark.parametrize("row", ACTIONS, ids=str)
def test_a_crafted_rerun_after_the_role_dropped_is_refused_on_the_server(database, row):
    path = database(row.empty)
    if row.prepare:
        with closing(connect(path)) as db:
            row.prepare(db)
    token = _token(path, row.needs)
    at = _page(row, token)
    assert _offered(at, row), f"{row} is not offered to a {row.needs}: the row is out of date"
    _fill(at, row)
    _drop(path, row.needs, token)
    before = _stored(path)
    _trigger(at, row)
    at.run()
    _refused(at, row, row.told, before, path)


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: Path(p).stem)
def test_a_session_signed_out_elsewhere_sees_only_the_sign_in(database, page):
    path = database(False)
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)
    at.session_state["_session_token"] = _token(path, SIGNED_OUT)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == [SIGN_IN]
    assert {w.key for w in at.text_input} == {"sign_in_name", "sign_in_password"}
    assert [b.label for b in at.button] == [SIGN_IN]
    assert not at.dataframe and not at.metric and not at.checkbox and not at.selectbox
