"""Accounts, roles and sign-in.

Two modes, one code path. With no accounts in the review database (the embedded default
on one machine) there is one local user and no sign-in. Once an account exists (added
with `python -m review user add`), every page asks people to sign in, and a verdict's
author is the signed-in user.

Passwords are stored as argon2id hashes (argon2-cffi), never in clear. A session survives
reloads through a token signed with the server's secret (HMAC-SHA256) that names a session
kept on the server: it expires, and stops working when the password changes or the
session is signed out (everywhere the token was copied to). Wrong passwords slow sign-in down: after a few
failures for a name, the next attempt is refused until a delay has passed.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass

import argon2
import sqlite_utils

from .. import files, settings
from ..errors import ReviewError
from ..store import now, transaction

ROLES = ("reviewer", "editor", "admin")
# What each role may do; a role may do everything the roles before it may.
ACTIONS = {
    "reviewer": {"verdict", "evidence", "report"},
    "editor": {"import", "detect", "fetch", "prepare_imagery", "sample", "export", "sites",
               "train", "final", "assess"},
    "admin": {"users"},
}
LOCAL_USER = "local"            # the one user of the embedded default, with no accounts
NAME_PATTERN = re.compile(r"^[\w][\w.@ -]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
FREE_FAILURES = 3               # wrong passwords before sign-in slows down
MAX_DELAY_S = 300
TOKEN_TTL_S = 12 * 3600

_hasher = argon2.PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the name is unknown costs as much as a real check, so the
    time taken does not tell whether a name exists. Made on first use, not at import (0.1 s
    on every page's first run)."""
    return _hasher.hash("not a password of anyone")


class AccountError(ReviewError):
    """An account cannot be created, changed or signed in to."""


class PermissionDenied(ReviewError):
    """The signed-in user's role may not do this."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    # Which way the user came in: a signed-in account, the local default user, the CLI.
    via: str = "dashboard"

    def can(self, action: str) -> bool:
        return can(self.role, action)

    def require(self, action: str) -> None:
        if not self.can(action):
            raise PermissionDenied(f"{self.name} is a {self.role}; this needs "
                                   f"{_article(minimum_role(action))} {minimum_role(action)}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def can(role: str, action: str) -> bool:
    if role not in ROLES:
        return False
    return any(action in ACTIONS[r] for r in ROLES[:ROLES.index(role) + 1])


def minimum_role(action: str) -> str:
    return next((r for r in ROLES if action in ACTIONS[r]), "admin")


def local_user() -> User:
    """The single user of a database without accounts: may do everything."""
    return User(LOCAL_USER, "admin", via="dashboard")


def accounts_configured(db: sqlite_utils.Database) -> bool:
    return db["users"].count > 0


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise AccountError("a user name is 1 to 64 letters, digits, spaces or . _ @ -, "
                           "starting with a letter or digit")
    return name


def _check_password(password: str) -> None:
    if not password:
        raise AccountError("the password is empty")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def add(db: sqlite_utils.Database, name: str, password: str, role: str = "reviewer") -> User:
    name, role = check_name(name), _check_role(role)
    _check_password(password)
    digest = _hasher.hash(password)
    with transaction(db):
        if db.execute("select 1 from users where name = ?", [name]).fetchone():
            raise AccountError(f"there is already an account named {name}")
        db["users"].insert({"name": name, "role": role, "password_hash": digest,
                            "created_at": now(), "updated_at": now()})
    return User(name, role)


def set_password(db: sqlite_utils.Database, name: str, password: str) -> None:
    _check_password(password)
    digest = _hasher.hash(password)
    with transaction(db):
        _row(db, name)
        db.execute("update users set password_hash = ?, updated_at = ? where name = ?",
                   [digest, now(), name])
        db.execute("delete from sign_in_failures where name = ?", [name])


def set_role(db: sqlite_utils.Database, name: str, role: str) -> None:
    _check_role(role)
    with transaction(db):
        row = _row(db, name)
        if row["role"] == "admin" and role != "admin":
            _keep_an_admin(db, name)
        db.execute("update users set role = ?, updated_at = ? where name = ?", [role, now(), name])


def remove(db: sqlite_utils.Database, name: str) -> None:
    with transaction(db):
        row = _row(db, name)
        if row["role"] == "admin":
            _keep_an_admin(db, name)
        db.execute("delete from users where name = ?", [name])


def _keep_an_admin(db, leaving: str) -> None:
    others = db.execute("select count(*) from users where name != ?", [leaving]).fetchone()[0]
    admins = db.execute("select count(*) from users where role = 'admin' and name != ?",
                        [leaving]).fetchone()[0]
    if others and not admins:
        raise AccountError(f"{leaving} is the last admin; make another account admin first")


def listing(db: sqlite_utils.Database) -> list[dict]:
    return [{"name": r["name"], "role": r["role"], "created_at": r["created_at"]}
            for r in db["users"].rows_where(order_by="name")]


def _row(db, name: str) -> dict:
    row = db.execute("select name, role, password_hash from users where name = ?",
                     [name]).fetchone()
    if row is None:
        raise AccountError(f"no account named {name}")
    return {"name": row[0], "role": row[1], "password_hash": row[2]}


def retry_after(db: sqlite_utils.Database, name: str, moment: float | None = None) -> float:
    """Seconds before the next sign-in attempt for this name is allowed (0: now)."""
    row = db.execute("select failures, last_failure from sign_in_failures where name = ?",
                     [name]).fetchone()
    if row is None or row[0] < FREE_FAILURES:
        return 0.0
    delay = min(2 ** (row[0] - FREE_FAILURES), MAX_DELAY_S)
    return max(0.0, row[1] + delay - (moment if moment is not None else time.time()))


def sign_in(db: sqlite_utils.Database, name: str, password: str,
            moment: float | None = None) -> User:
    """The account, if the password is right; one plain sentence otherwise."""
    moment = time.time() if moment is None else moment
    name = (name or "").strip()[:64]
    wait = retry_after(db, name, moment)
    if wait > 0:
        raise AccountError(f"too many wrong passwords; try again in {int(wait) + 1} s")
    if not password or len(password) > MAX_PASSWORD:
        _fail(db, name, moment)
        raise AccountError("wrong user name or password")
    row = db.execute("select name, role, password_hash from users where name = ?",
                     [name]).fetchone()
    try:
        _hasher.verify(row[2] if row else _dummy_hash(), password)
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
        row = None
    if row is None:
        _fail(db, name, moment)
        raise AccountError("wrong user name or password")
    with transaction(db):
        db.execute("delete from sign_in_failures where name = ?", [name])
    return User(row[0], row[1])


def _fail(db, name: str, moment: float) -> None:
    with transaction(db):
        db.execute("insert into sign_in_failures (name, failures, last_failure) values (?, 1, ?) "
                   "on conflict(name) do update set failures = failures + 1, last_failure = ?",
                   [name, moment, moment])


# --------------------------------------------------------------------- session tokens


def secret_key() -> bytes:
    """The server's signing key: REVIEW_SECRET_KEY, else a random key kept in data/."""
    if os.environ.get("REVIEW_SECRET_KEY"):
        return os.environ["REVIEW_SECRET_KEY"].encode()
    path = settings.data_dir() / "secret_key"
    if not path.exists():
        files.write_once(path, secrets.token_hex(32).encode(), mode=0o600)
    return path.read_bytes().strip()


def _signature(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _password_tag(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def issue_token(db: sqlite_utils.Database, user: User, key: bytes | None = None,
                ttl_s: float = TOKEN_TTL_S, moment: float | None = None) -> str:
    """A signed token naming the user and a new server-side session, valid for ttl_s, void
    once the password changes or the session ends."""
    key = key or secret_key()
    moment = time.time() if moment is None else moment
    expires = int(moment + ttl_s)
    tag = _password_tag(_row(db, user.name)["password_hash"])
    session = secrets.token_urlsafe(16)
    with transaction(db):
        db.execute("insert into sessions (id, name, created_at, expires_at) values (?, ?, ?, ?)",
                   [session, user.name, moment, expires])
    name = base64.urlsafe_b64encode(user.name.encode()).decode()
    payload = f"{name}.{expires}.{tag}.{session}"
    return f"{payload}.{_signature(key, payload)}"


def _payload(token: str | None, key: bytes | None) -> list[str] | None:
    """The token's parts (name, expiry, password tag, session) if its signature holds."""
    if not token or len(token) > 512 or token.count(".") != 4:
        return None
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature, _signature(key or secret_key(), payload)):
        return None
    return payload.split(".")


def end_session(db: sqlite_utils.Database, token: str | None, key: bytes | None = None,
                moment: float | None = None) -> bool:
    """Sign out: the token's session ends on the server, for every copy of the token."""
    parts = _payload(token, key)
    if parts is None:
        return False
    with transaction(db):
        ended = db.execute("update sessions set ended_at = ? where id = ? and ended_at is null",
                           [time.time() if moment is None else moment, parts[3]]).rowcount
    return ended > 0


def user_from_token(db: sqlite_utils.Database, token: str | None, key: bytes | None = None,
                    moment: float | None = None) -> User | None:
    """The signed-in user a token names, or None when it is forged, expired or stale."""
    parts = _payload(token, key)
    if parts is None:
        return None
    name_b64, expires, tag, session = parts
    try:
        name = base64.urlsafe_b64decode(name_b64.encode()).decode()
        if int(expires) < (time.time() if moment is None else moment):
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    live = db.execute("select 1 from sessions where id = ? and name = ? and ended_at is null",
                      [session, name]).fetchone()
    row = db.execute("select name, role, password_hash from users where name = ?", [name]).fetchone()
    if live is None or row is None or not hmac.compare_digest(tag, _password_tag(row[2])):
        return None
    return User(row[0], row[1])
