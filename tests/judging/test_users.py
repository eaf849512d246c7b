"""Accounts, roles, sign-in and session tokens; bad input and attacks get one plain sentence."""
import io
import sys

import pytest

from review.cli import main
from review.judging import users
from review.judging.users import AccountError, PermissionDenied, User
from review.store import connect

KEY = b"test-secret"


@pytest.fixture
def accounts(db):
    users.add(db, "ana", "correct horse", role="reviewer")
    users.add(db, "eda", "battery staple", role="editor")
    users.add(db, "adam", "admin password", role="admin")
    return db


def test_no_accounts_means_one_local_user_who_may_do_everything(db):
    assert not users.accounts_configured(db)
    local = users.local_user()
    assert all(local.can(a) for a in ("verdict", "import", "export", "users"))


def test_passwords_are_stored_hashed_never_in_clear(accounts):
    stored = accounts.execute("select password_hash from users where name = 'ana'").fetchone()[0]
    assert "correct horse" not in stored and stored.startswith("$argon2id$")
    assert users.sign_in(accounts, "ana", "correct horse") == User("ana", "reviewer")


@pytest.mark.parametrize("role, allowed, refused", [
    ("reviewer", {"verdict", "evidence"}, {"import", "detect", "fetch", "sample", "export", "train",
                                          "users"}),
    ("editor", {"verdict", "import", "detect", "fetch", "prepare_imagery", "sample", "export",
                "train"}, {"users"}),
    ("admin", {"verdict", "export", "users"}, set()),
])
def test_roles_build_on_each_other(role, allowed, refused):
    user = User("x", role)
    assert all(user.can(a) for a in allowed) and not any(user.can(a) for a in refused)
    for action in refused:
        with pytest.raises(PermissionDenied, match=f"x is a {role}; this needs an? "):
            user.require(action)


@pytest.mark.parametrize("name, password, message", [
    ("ana", "wrong password", "wrong user name or password"),
    ("nobody", "correct horse", "wrong user name or password"),
    ("ana", "", "wrong user name or password"),
    ("ana", "x" * 10_000_000, "wrong user name or password"),
    ("<script>alert(1)</script>", "whatever1", "wrong user name or password"),
    ("ana'; drop table users; --", "whatever1", "wrong user name or password"),
])
def test_bad_sign_ins_get_one_plain_sentence(accounts, name, password, message):
    with pytest.raises(AccountError) as caught:
        users.sign_in(accounts, name, password)
    assert str(caught.value) == message
    assert accounts["users"].count == 3


@pytest.mark.parametrize("name, password, message", [
    ("<b>bold</b>", "long enough", "a user name is 1 to 64"),
    ("x'; drop table users; --", "long enough", "a user name is 1 to 64"),
    ("", "long enough", "a user name is 1 to 64"),
    ("ben", "", "the password is empty"),
    ("ben", "short", "at least 8 characters"),
    ("ben", "x" * 10_000_000, "at most 1024 characters"),
    ("ana", "long enough", "already an account named ana"),
])
def test_bad_accounts_are_refused_and_nothing_is_stored(accounts, name, password, message):
    with pytest.raises(AccountError, match=message):
        users.add(accounts, name, password)
    assert [u["name"] for u in users.listing(accounts)] == ["adam", "ana", "eda"]


def test_wrong_passwords_slow_sign_in_down(accounts):
    t = 1_000_000.0
    for _ in range(users.FREE_FAILURES):
        with pytest.raises(AccountError, match="wrong"):
            users.sign_in(accounts, "ana", "guess", moment=t)
    with pytest.raises(AccountError, match="too many wrong passwords; try again in"):
        users.sign_in(accounts, "ana", "correct horse", moment=t + 0.5)
    assert users.sign_in(accounts, "ana", "correct horse", moment=t + 2) .name == "ana"
    assert users.retry_after(accounts, "ana", t + 2) == 0          # success clears the count


def test_tokens_survive_reloads_but_not_forgery_expiry_or_a_new_password(accounts):
    ana = users.sign_in(accounts, "ana", "correct horse")
    token = users.issue_token(accounts, ana, key=KEY, ttl_s=60, moment=1000)
    assert users.user_from_token(accounts, token, key=KEY, moment=1030) == ana
    assert users.user_from_token(accounts, token, key=KEY, moment=1061) is None        # expired
    assert users.user_from_token(accounts, token, key=b"other key", moment=1030) is None
    forged = token.replace(token.split(".")[0], "YWRhbQ")        # "adam", same signature
    assert users.user_from_token(accounts, forged, key=KEY, moment=1030) is None
    for junk in ("", "a.b.c", "a.b.c.d", "a.b.c.d.e", "x" * 5000, None):
        assert users.user_from_token(accounts, junk, key=KEY, moment=1030) is None
    users.set_password(accounts, "ana", "a new password")
    assert users.user_from_token(accounts, token, key=KEY, moment=1030) is None        # signed out


def test_a_copied_token_is_dead_after_sign_out_and_other_sessions_live_on(accounts):
    """Someone who copied ana's cookie keeps nothing once she signs out; her session on
    another computer is its own and stays signed in."""
    ana = users.sign_in(accounts, "ana", "correct horse")
    here = users.issue_token(accounts, ana, key=KEY)
    laptop = users.issue_token(accounts, ana, key=KEY)
    copied = str(here)
    assert users.user_from_token(accounts, copied, key=KEY) == ana
    assert users.end_session(accounts, here, key=KEY)
    assert users.user_from_token(accounts, copied, key=KEY) is None
    assert users.user_from_token(accounts, laptop, key=KEY) == ana
    # A token whose signature does not hold ends nothing, and a session id is not enough.
    session = laptop.split(".")[3]
    forged = ".".join(here.split(".")[:3] + [session, here.split(".")[4]])
    assert not users.end_session(accounts, forged, key=KEY)
    assert users.user_from_token(accounts, forged, key=KEY) is None
    assert users.user_from_token(accounts, laptop, key=KEY) == ana


def test_the_last_admin_stays(accounts):
    with pytest.raises(AccountError, match="last admin"):
        users.remove(accounts, "adam")
    with pytest.raises(AccountError, match="last admin"):
        users.set_role(accounts, "adam", "editor")
    users.set_role(accounts, "eda", "admin")
    users.remove(accounts, "adam")
    assert [u["name"] for u in users.listing(accounts)] == ["ana", "eda"]


def test_the_secret_key_is_made_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("REVIEW_SECRET_KEY", raising=False)
    key = users.secret_key()
    assert len(key) == 64 and users.secret_key() == key
    path = tmp_path / "data" / "secret_key"
    assert path.stat().st_mode & 0o077 == 0


def test_user_commands(tmp_path, capsys, monkeypatch):
    path = str(tmp_path / "review.db")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a good password\n"))
    assert main(["user", "add", "ana", "--role", "editor", "--password-stdin", "--db", path]) == 0
    assert "now asks everyone to sign in" in capsys.readouterr().out
    assert main(["user", "list", "--db", path]) == 0
    assert capsys.readouterr().out.split()[:2] == ["ana", "editor"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "passwd", "ana", "--password-stdin", "--db", path]) == 2
    assert capsys.readouterr().err.strip() == "error: a password has at least 8 characters"
    assert users.sign_in(connect(path), "ana", "a good password").role == "editor"
    assert main(["user", "remove", "ana", "--db", path]) == 0
    assert "runs without sign-in" in capsys.readouterr().out
    assert main(["user", "remove", "ana", "--db", path]) == 2
    assert capsys.readouterr().err.strip() == "error: no account named ana"
