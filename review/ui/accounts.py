"""Accounts: who may sign in and with which role (admins only)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ..errors import ReviewError
from ..judging import users
from . import common


def page() -> None:
    db = common.page("Accounts", action="users")
    if db is None:
        return
    if not users.accounts_configured(db):
        st.info("There are no accounts: the dashboard runs with one local user and no sign-in. "
                "Adding the first account (an admin, so someone can manage the others) makes "
                "every page ask people to sign in.")
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    listed = users.listing(db)
    if listed:
        st.dataframe(pd.DataFrame(listed), hide_index=True)
    with st.form("add_account", clear_on_submit=True):
        st.subheader("Add an account")
        name = st.text_input("User name", max_chars=64, key="acc_name")
        roles = users.ROLES if listed else ("admin",)
        role = st.selectbox("Role", roles, key="acc_role",
                            help="reviewer: verdicts and evidence; editor: also import, detect, "
                                 "samples and exports; admin: also accounts")
        password = st.text_input("Password (at least 8 characters)", type="password",
                                 max_chars=users.MAX_PASSWORD, key="acc_password")
        if st.form_submit_button("Add account", type="primary"):
            _act(db, lambda: users.add(db, name, password, role=role),
                 f"Account {name.strip()} added as {role}.")
    if not listed:
        return
    st.subheader("Change an account")
    names = [a["name"] for a in listed]
    chosen = st.selectbox("Account", names, key="acc_chosen")
    left, middle, right = st.columns(3)
    new_role = left.selectbox("New role", users.ROLES, key="acc_new_role")
    if left.button("Change role", key="acc_change_role"):
        _act(db, lambda: users.set_role(db, chosen, new_role), f"{chosen} is now {new_role}.")
    new_password = middle.text_input("New password", type="password", key="acc_new_password",
                                     max_chars=users.MAX_PASSWORD)
    if middle.button("Set password", key="acc_set_password"):
        _act(db, lambda: users.set_password(db, chosen, new_password),
             f"Password of {chosen} changed; their sessions are signed out.")
    if right.button("Remove account", key="acc_remove"):
        _act(db, lambda: users.remove(db, chosen), f"Account {chosen} removed.")


def _act(db, action, done: str) -> None:
    try:
        common.require(db, "users")
        action()
    except ReviewError as exc:
        st.error(str(exc)[0].upper() + str(exc)[1:] + ".")
        return
    st.session_state["flash"] = done
    st.rerun()
