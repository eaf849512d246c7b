"""The site view's dossier: a button that makes a site's dossier (publishing.dossier) and
download buttons for its PDF and its JSON twin.

Anyone who may make evidence pictures (a reviewer) may make a dossier without names; one
that names reviewers and reporters is an export of people's names, so it is an editor's
(the `export` action). The role is checked again when the button is pressed.
"""
from __future__ import annotations

import streamlit as st

from ..errors import ReviewError
from ..publishing import dossier
from . import common

PLAIN, NAMED = "evidence", "export"        # the actions of a dossier without and with names


def dossier_button(db, site_id: int) -> None:
    """Draw 'Make the dossier (PDF)' for one site, then the downloads of what it made."""
    current = common.user(db)
    if current is None or not current.can(PLAIN):
        return
    key = f"dossier_{int(site_id)}"
    named = False
    if current.can(NAMED):
        named = st.checkbox("Name the reviewers and reporters", key=f"{key}_named",
                            help="Without this, each is 'reviewer 1', 'reporter 1' and so on.")
    if st.button("Make the dossier (PDF)", key=f"{key}_make",
                 help="A PDF to publish with its JSON twin: the site's place, area per period, "
                      "onset, imagery, verdicts with their proofs in the signed verdict log, "
                      "field reports and context."):
        try:
            made_by = common.require(db, NAMED if named else PLAIN)
            with st.spinner("Making the dossier…"):
                made = dossier.build(db, site_id, with_names=named, by=made_by.name)
        except ReviewError as exc:
            common.show_error(exc)
            return
        st.session_state[key] = made
    made = st.session_state.get(key)
    if made is None:
        return
    name = f"site-{int(site_id)}-dossier"
    names = "with names" if made.facts["dossier"]["names"] == "shown" else "names withheld"
    st.caption(f"Made {made.facts['dossier']['made_at'].replace('T', ' ')} ({names}): "
               f"{len(made.pdf) / 1024:,.0f} KB. Publish the JSON beside the PDF; readers check it "
               f"with `python -m review verify-dossier {name}.json --key KEY`.")
    left, right = st.columns(2)
    left.download_button("Download the PDF", made.pdf, f"{name}.pdf", mime="application/pdf",
                         key=f"{key}_pdf")
    right.download_button("Download the JSON twin", made.json, f"{name}.json",
                          mime="application/json", key=f"{key}_json")
