"""Who may do what in the dashboard: one local user without accounts; with accounts,
everyone signs in and each role sees (and may use) only its own actions."""
import pytest
from streamlit.testing.v1 import AppTest

from review.judging import users
from review.store import connect

from tests.conftest import REPO, import_squares

TIMEOUT = 120
PAGE = {name: str(REPO / path) for name, path in {
    "home": "app.py", "detect": "app_pages/1_Detect.py", "review": "app_pages/2_Review.py",
    "map": "app_pages/3_Map.py", "trends": "app_pages/4_Trends.py",
    "export": "app_pages/5_Export.py"}.items()}
PASSWORDS = {"ana": "reviewer password", "eda": "editor password", "adam": "admin password"}


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    monkeypatch.setenv("REVIEW_SECRET_KEY", "test key")
    db = connect(path)
    import_squares(db, tmp_path)
    return path


@pytest.fixture
def accounts(db_path):
    db = connect(db_path)
    for (name, password), role in zip(PASSWORDS.items(), users.ROLES):
        users.add(db, name, password, role=role)
    return db_path


def _signed_in(page: str, name: str) -> AppTest:
    at = AppTest.from_file(PAGE[page], default_timeout=TIMEOUT).run()
    assert [t.value for t in at.title] == ["Sign in"]
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(PASSWORDS[name])
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(f"Signed in as **{name}**" in m.value for m in at.sidebar.markdown)
    return at


@pytest.mark.parametrize("page", list(PAGE))
def test_with_accounts_every_page_asks_to_sign_in_first(accounts, page):
    at = AppTest.from_file(PAGE[page], default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.metric and not at.subheader and not at.dataframe


@pytest.mark.parametrize("name, password", [
    ("ana", "wrong password"), ("nobody", "reviewer password"), ("<b>ana</b>", "x"),
    ("ana", ""), ("ana'; delete from users; --", "reviewer password")])


def test_a_failed_sign_in_is_one_plain_sentence(accounts, name, password):
    at = AppTest.from_file(PAGE["home"], default_timeout=TIMEOUT).run()
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert [t.value for t in at.title] == ["Sign in"]
    assert connect(accounts)["users"].count == 3


def test_a_reviewer_reviews_but_sees_no_editor_actions(accounts):
    at = _signed_in("review", "ana")
    assert at.subheader[0].value.startswith("Detection #")
    at.button(key="verdict_verified").click().run()
    (verdict,) = list(connect(accounts)["verdicts"].rows)
    assert (verdict["reviewer"], verdict["via"]) == ("ana", "dashboard")
    detect = _signed_in("detect", "ana")
    assert "Detect is for editors" in detect.warning[0].value
    assert not [b for b in detect.button if b.label == "Run detector"]
    home = _signed_in("home", "ana")
    assert not [h for h in home.subheader if "Import" in h.value]
    export = _signed_in("export", "ana")
    assert not [b for b in export.button if b.label == "Prepare the file"]
    assert [b for b in export.button if b.label == "Make the evidence picture"]
    trends = _signed_in("trends", "ana")
    assert not [b for b in trends.button if b.label == "Draw sample"]


def test_an_editor_gets_the_editor_actions(accounts):
    assert [b for b in _signed_in("detect", "eda").button if b.label == "Run detector"]
    assert [h for h in _signed_in("home", "eda").subheader if "Import" in h.value]
    export = _signed_in("export", "eda")
    export.selectbox(key="f_status").select("all").run()
    export.button(key="x_prepare").click().run()
    assert not export.exception and export.session_state["export_file"][2] == 6


def test_the_server_refuses_a_reviewer_whatever_the_page_showed(accounts):
    """A crafted rerun: the reviewer's session calls an editor's action directly."""
    def crafted():
        import streamlit as st

        from review.errors import ReviewError
        from review.ui import common

        db = common.page("Crafted")
        if db is not None:
            try:
                common.require(db, "import")
            except ReviewError as exc:
                st.error(str(exc))
            else:
                st.success("imported")

    token = users.issue_token(connect(accounts), users.User("ana", "reviewer"), key=b"test key")
    at = AppTest.from_function(crafted, default_timeout=TIMEOUT)
    at.session_state["_session_token"] = token
    at.run()
    assert [e.value for e in at.error] == ["ana is a reviewer; this needs an editor"]
    assert not at.success


def test_a_forged_or_stale_session_is_signed_out(accounts):
    db = connect(accounts)
    token = users.issue_token(db, users.User("ana", "reviewer"), key=b"test key")
    for bad in (token[:-1] + ("0" if token[-1] != "0" else "1"), "forged.token.value.x"):
        at = AppTest.from_file(PAGE["review"], default_timeout=TIMEOUT)
        at.session_state["_session_token"] = bad
        assert [t.value for t in at.run().title] == ["Sign in"]
    users.set_password(db, "ana", "a brand new password")
    at = AppTest.from_file(PAGE["review"], default_timeout=TIMEOUT)
    at.session_state["_session_token"] = token
    assert [t.value for t in at.run().title] == ["Sign in"]


def test_without_accounts_the_name_is_asked_once_and_kept_across_pages(db_path):
    at = AppTest.from_file(PAGE["home"], default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/2_Review.py").run()
    assert "Enter your name" in at.info[0].value
    at.text_input(key="reviewer").input("Ana").run()
    assert at.subheader[0].value.startswith("Detection #")
    at.switch_page("app_pages/3_Map.py").run()
    at.switch_page("app_pages/2_Review.py").run()
    assert at.text_input(key="reviewer").value == "Ana"
    assert at.subheader[0].value.startswith("Detection #")
    at.button(key="verdict_verified").click().run()
    assert [v["reviewer"] for v in connect(db_path)["verdicts"].rows] == ["Ana"]


ACCOUNTS = str(REPO / "app_pages" / "9_Accounts.py")


def test_the_first_account_is_an_admin_and_then_everyone_signs_in(db_path):
    at = AppTest.from_file(ACCOUNTS, default_timeout=TIMEOUT).run()
    assert "no accounts" in at.info[0].value
    assert at.selectbox(key="acc_role").options == ["admin"]
    at.text_input(key="acc_name").input("adam")
    at.text_input(key="acc_password").input("admin password")
    at.button[0].click().run()
    assert [(u["name"], u["role"]) for u in users.listing(connect(db_path))] == [("adam", "admin")]
    assert [t.value for t in at.run().title] == ["Sign in"]


def test_an_admin_manages_accounts_and_a_reviewer_cannot(accounts):
    at = _signed_in("home", "adam")
    at.switch_page("app_pages/9_Accounts.py").run()
    at.text_input(key="acc_name").input("<b>mallory</b>")
    at.text_input(key="acc_password").input("long enough")
    at.button[0].click().run()
    assert at.error[0].value.startswith("A user name is 1 to 64 letters")
    at.text_input(key="acc_name").input("cy")
    at.text_input(key="acc_password").input("long enough")
    at.selectbox(key="acc_role").select("editor")
    at.button[0].click().run()
    assert ("cy", "editor") in [(u["name"], u["role"]) for u in users.listing(connect(accounts))]
    at.selectbox(key="acc_chosen").select("adam")
    at.button(key="acc_remove").click().run()
    assert "last admin" in at.error[0].value
    reviewer = _signed_in("home", "ana")
    reviewer.switch_page("app_pages/9_Accounts.py").run()
    assert "Accounts is for admins" in reviewer.warning[0].value
    assert not reviewer.dataframe and not [b for b in reviewer.button if b.label == "Add account"]
