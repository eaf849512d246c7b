"""Agreement: how far reviewers agree (Cohen's and Fleiss' kappa, Gwet's AC1 and
Krippendorff's alpha, with a note when one-sided prevalence makes kappa mislead), how often
each reviewer's first look stood after a second opinion, and which false-positive reasons
a second reviewer disputes most."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ..judging import agreement, project_settings
from ..judging.verdicts import REASONS
from . import common


def page() -> None:
    db = common.page("Agreement")
    if db is None:
        return
    st.caption("Each reviewer's latest verdict per detection, in three categories: verified, "
               "false positive, unsure. Second opinions are "
               f"**{project_settings.get(db, 'second_opinion')}** in this project.")
    result = agreement.agreement(db)
    if not result.detections and not result.pairs:
        st.info("No detection has verdicts from two reviewers yet, so there is no agreement to "
                "measure. An admin can ask for second opinions (from the shell: `python -m review "
                "settings set second_opinion verified`), or review the same detections as "
                "someone else.")
        return
    overall = result.to_json()["overall"]
    if result.too_few:
        st.warning(result.too_few[0].upper() + result.too_few[1:] + ".")
    columns = st.columns(3)
    columns[0].metric("Detections judged by two reviewers", f"{overall['detections']:,}")
    if overall["percent_agreement"] is not None:
        columns[1].metric("Agreement", f"{overall['percent_agreement']:.1f}%")
    if overall["kappa"] is not None:
        columns[2].metric("Fleiss' kappa", f"{overall['kappa']:.2f}", help="first two reviewers' "
                          "latest verdicts per detection; interval by bootstrap over detections")
    more = st.columns(3)
    if overall["ac1"] is not None:
        more[0].metric("Gwet's AC1", f"{overall['ac1']:.2f}", help="first two reviewers' latest "
                       "verdicts per detection; chance agreement from the three categories, so it "
                       "does not collapse when nearly every detection is verified")
    if overall["alpha"] is not None:
        more[1].metric("Krippendorff's alpha", f"{overall['alpha']:.2f}", help="nominal level, on "
                       "the same first two verdicts per detection")
    if result.prevalence_note:
        st.info(result.prevalence_note[0].upper() + result.prevalence_note[1:] + ".")
    figures = [f"{label} {overall[name]:.3f}{_interval(overall, name)}"
               for label, name in (("Fleiss' kappa", "kappa"), ("Gwet's AC1", "ac1"),
                                   ("Krippendorff's alpha", "alpha")) if overall[name] is not None]
    if figures:
        st.caption("; ".join(figures) + ": 1 is perfect agreement, 0 what chance alone gives "
                   "(95% intervals by bootstrap over detections).")
    st.subheader("Pairs of reviewers")
    if result.pairs:
        pairs = pd.DataFrame(result.to_json()["pairs"]).rename(columns={
            "reviewer_a": "reviewer", "reviewer_b": "and reviewer", "detections": "detections both judged",
            "percent_agreement": "agreement (%)", "kappa": "Cohen's kappa", "ac1": "Gwet's AC1",
            "alpha": "Krippendorff's alpha"})
        st.dataframe(pairs, hide_index=True)
    st.subheader("Whose first look stood after a second opinion")
    record = agreement.second_opinion_record(db)
    if record:
        st.dataframe(pd.DataFrame(record).rename(columns={
            "second_opinions": "first looks seen twice", "stood": "stood",
            "stood_percent": "stood (%)"}), hide_index=True)
    else:
        st.caption("No second opinion yet.")
    st.subheader("False-positive reasons a second reviewer disputed")
    reasons = agreement.disputed_reasons(db)
    if reasons:
        table = pd.DataFrame(reasons)
        table["reason"] = table["reason"].map(lambda r: REASONS.get(r, r))
        st.dataframe(table.rename(columns={"second_looks": "second looks"}), hide_index=True)
    else:
        st.caption("No false positive has had a second look yet.")


def _interval(overall: dict, name: str) -> str:
    low, high = overall[f"{name}_low"], overall[f"{name}_high"]
    return "" if low is None else f" (95% interval {low:.2f} to {high:.2f})"
