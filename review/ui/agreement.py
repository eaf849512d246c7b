"""Agreement: how far reviewers agree (Cohen's and Fleiss' kappa), how often each
reviewer's first look stood after a second opinion, and which false-positive reasons a
second reviewer disputes most."""
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
                "measure. Switch second opinions on, or review the same detections as someone else.")
        return
    overall = result.to_json()["overall"]
    if result.too_few:
        st.warning(result.too_few[0].upper() + result.too_few[1:] + ".")
    columns = st.columns(3)
    columns[0].metric("Detections judged by two reviewers", f"{overall['detections']:,}")
    if overall["percent_agreement"] is not None:
        columns[1].metric("Agreement", f"{overall['percent_agreement']:.1f}%")
    if overall["kappa"] is not None:
        interval = ("" if overall["kappa_low"] is None
                    else f" (95% interval {overall['kappa_low']:.2f} to {overall['kappa_high']:.2f})")
        columns[2].metric("Fleiss' kappa", f"{overall['kappa']:.2f}", help="first two reviewers' "
                          "latest verdicts per detection; interval by bootstrap over detections")
        st.caption(f"Fleiss' kappa {overall['kappa']:.3f}{interval}: 1 is perfect agreement, "
                   "0 what chance alone gives.")
    st.subheader("Pairs of reviewers")
    if result.pairs:
        pairs = pd.DataFrame(result.to_json()["pairs"]).rename(columns={
            "reviewer_a": "reviewer", "reviewer_b": "and reviewer", "detections": "detections both judged",
            "percent_agreement": "agreement (%)", "kappa": "Cohen's kappa"})
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
