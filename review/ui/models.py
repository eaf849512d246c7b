"""Models: training a change classifier on this database's verdicts, how well a trained
one does on them (ROC and precision-recall curves beside the published model's on the
same detections), ordering the queue by it (rescoring pending detections), and what it
sees (an embedding of reviewed and pending detections; a click opens one in Review).

Training and evaluation run in a process of their own (learning.worker), with a progress
bar: the dashboard's own TensorFlow settings and seeds, which every session's detections
use, stay as they were."""
from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from .. import settings
from ..analysis.map_layers import hex_colour
from ..detection.models import local_cards
from ..errors import ReviewError
from ..learning import evaluate, fitting, nested, pairs, splits, train, worker
from . import common

PUBLISHED = "44px_v2.6_rgb_ir"
STATUSES = ("verified", "false_positive", "unsure", "pending")


def page() -> None:
    db = common.page("Models")
    if db is None:
        return
    cards = local_cards()
    pair_cards = [(card, path) for card, path in cards if card.is_pair]
    trained = st.session_state.pop("m_trained", None)
    if trained:
        st.success(trained)
    may_train = common.user(db).can("train")
    if may_train:
        _train_form(db, first=not pair_cards)
    if not pair_cards:
        st.info("No trained model in the models folder yet: "
                + ("train one above, or " if may_train else "an editor can train one here, or ")
                + "with `python -m review train --out data/models/NAME.keras`. Trained models "
                "are listed here and by `python -m review models`.")
        return
    labels = {_label(card, path): (card, path) for card, path in pair_cards}
    choice = st.selectbox("Trained model", list(labels), key="m_model")
    card, path = labels[choice]
    _card(card)
    st.subheader("On this database's verdicts")
    if st.button("Evaluate", type="primary", key="m_evaluate"):
        _evaluate(card, path)
    # Results stay on the page while the other buttons are used.
    held = st.session_state.get("m_evaluation")
    if held and held[0] == str(path):
        _show_evaluation(*held[1:])
    st.subheader("Order the queue by it")
    st.caption("Scores the pending detections that have stored before and after imagery, "
               "beside their source's own score. Review's order \"most uncertain under the "
               "trained model first\" then shows the ones closest to this model's threshold "
               "first. Whether that teaches the next model more than reviewing at random is "
               "what the curve above measures on this database (on the 111 fixture pairs it "
               "was behind until 60 verdicts, then saved 10 of the 80 needed for ROC AUC "
               "0.85).")
    if st.button("Rescore pending detections", key="m_rescore", disabled=not may_train,
                 help=None if may_train else "for editors"):
        _rescore(db, path)
    rescored = st.session_state.get("m_rescored")
    if rescored and rescored[0] == str(path):
        st.success(rescored[1])
    st.subheader("What the model sees")
    st.caption("The model's penultimate layer for reviewed and pending detections, "
               "projected with UMAP; colour is the status. Click a point to open it in Review.")
    if st.button("Compute the embedding", key="m_embed"):
        try:
            with st.spinner("Cutting chips and projecting…"):
                st.session_state["m_embedding"] = (str(path), evaluate.embedding(
                    db, common.model(str(path))))
        except ReviewError as exc:
            st.error(str(exc))
    held = st.session_state.get("m_embedding")
    if held and held[0] == str(path):
        _embedding(held[1])


def _label(card, path) -> str:
    return f"{card.id} ({path.name})"


def _train_form(db, first: bool) -> None:
    verified, false_positive = pairs.label_counts(db)
    enough = min(verified, false_positive) >= pairs.MIN_PER_LABEL
    with st.expander("Train a model on this database's verdicts", expanded=first):
        st.caption(
            f"{verified} verified and {false_positive} false-positive detections are reviewed "
            f"here; training needs at least {pairs.MIN_PER_LABEL} of each (unsure and pending "
            "ones are left out). Each is cut as a before and after chip from the imagery its "
            "verdict was based on, or from stored scenes covering it; detections within "
            f"{splits.SITE_DISTANCE_M / 1000:g} km of each other stay on the same side of "
            "every split. About three minutes on two CPU cores for a hundred detections "
            "with the features kind; each further kind adds minutes.")
        with st.form("m_train_form", border=False):
            name = st.text_input("Name", value=time.strftime("verdicts-%Y%m%d-%H%M"),
                                 help="the model is written to the models folder as NAME.keras "
                                      "with its card NAME.json")
            kinds = st.multiselect(
                "Kinds to compare", list(fitting.KINDS), default=list(train.DEFAULT_KINDS),
                help="features: change statistics, beside a published mine detector's "
                     "view of the after chip (48px_v3.2), and a head of a logistic regression "
                     "and a forest; cnn: a small "
                     "convolutional network on both chips; trunk: a published model's "
                     "convolutional trunk, fine-tuned. The first listed is kept unless "
                     "another is clearly better on an inner validation split; every outer "
                     "fold of the nested estimate trains each kind listed.")
            left, right = st.columns(2)
            seed = left.number_input("Seed", min_value=0, value=1, step=1,
                                     help="the same seed and verdicts give the same model")
            draws = right.number_input(
                "Fold draws", min_value=1, max_value=50, value=nested.DRAWS, step=1,
                help="how many times the detections are split into folds by site for the "
                     "figures on places the model never saw: more draws, steadier figures, "
                     "longer training (the model itself does not change)")
            submitted = st.form_submit_button("Train", type="primary", disabled=not enough)
        if submitted:
            _train(db, name, tuple(kinds), int(seed), int(draws))


def _train(db, name: str, kinds: tuple, seed: int, draws: int) -> None:
    bar = st.progress(0.0, text="Starting the training process…")
    try:
        common.require(db, "train")
        out = train.output_path(settings.model_cache_dir(), name)
        report = worker.train(settings.db_path(), out, kinds=kinds, seed=seed, draws=draws,
                              progress=common.moves(bar, lambda done, total, what:
                                                    f"{what[:1].upper()}{what[1:]}…"))
    except ReviewError as exc:
        common.show_error(exc)
        return
    finally:
        bar.empty()
    from ..detection.models import read_card_beside

    st.session_state["m_trained"] = report.summary()
    st.session_state["m_model"] = _label(read_card_beside(report.path), report.path)
    st.rerun()


def _rescore(db, path) -> None:
    bar = st.progress(0.0, text="Scoring pending detections…")
    try:
        common.require(db, "train")
        counts = evaluate.rescore(db, common.model(str(path)), progress=common.moves(
            bar, lambda done, total, what: f"Scoring pending detections: {done} of {total}"))
    except ReviewError as exc:
        common.show_error(exc)
        return
    finally:
        bar.empty()
    st.session_state["m_rescored"] = (str(path), evaluate.rescore_summary(
        counts, order="Review's order \"most uncertain under the trained model first\"") + ".")


def _card(card) -> None:
    info = card.training or {}
    validation = info.get("validation") or {}
    tset = info.get("training_set") or {}
    nested = validation.get("method") == "nested cross-validation by site"

    def figure(name):
        value, low, high = validation.get(name) or [None, None, None]
        return ("n/a" if value is None else f"{value:.3f}",
                "" if low is None else f"95% {low:.2f} to {high:.2f}")

    cols = st.columns(5)
    for col, (name, label) in zip(cols, [("roc_auc", "ROC AUC"), ("precision", "Precision"),
                                          ("recall", "Recall")]):
        value, interval = figure(name)
        col.metric(label + (" on new places" if nested and name == "roc_auc" else ""), value,
                   help=interval or None)
    cols[3].metric("Threshold", f"{card.t_main:.3f}",
                   help=f"chosen for precision {info.get('threshold_precision')}"
                        + (" by cross-validation inside the detections it trained on"
                           if nested else " on a validation split"))
    cols[4].metric("Trained on", f"{tset.get('train', '?')}",
                   help=f"of {tset.get('size', '?')} reviewed detections"
                        + (f"; {tset.get('validation')} held out by site for Evaluate"
                           if tset.get("validation") else ""))
    if nested:
        roc = validation["roc_auc"]
        st.caption(
            f"How it does on places it never saw, by nested cross-validation by site: "
            f"ROC AUC {roc[0]:.3f} (95% {roc[1]:.2f} to {roc[2]:.2f}) over "
            f"{validation['fold_draws']} fold draws of {validation['outer_folds']} outer folds; "
            f"in each, {validation['choices_compared']} choices ({info.get('selection')}) were "
            f"compared on the outer training detections only. The interval "
            f"resamples sites and fold draws, so it carries the luck of the sample and of the "
            f"choices. Precision and recall are at each fold's own threshold.")
    else:
        st.caption("Trained before nested cross-validation: its figures come from one "
                   "validation split that also chose its kind and threshold, so they are "
                   "optimistic. Train again for figures on places it never saw.")
    st.caption(f"{card.description}. Bands {', '.join(card.bands)} before and after, "
               f"{card.patch_size} px; trained {info.get('date', '?')}; training set sha256 "
               f"{str(tset.get('sha256', ''))[:12]}…")
    if info.get("detector_unused"):
        st.caption(f"Made without a published detector's view of the after chip: "
                   f"{info['detector_unused']}.")
    curve = info.get("labels_curve")
    if curve:
        _labels_curve(curve)


def _labels_curve(curve: dict) -> None:
    """The labels-saved curve from the card: held-out ROC AUC against verdicts, per order."""
    st.subheader("Does the uncertain order save verdicts?")
    figure = go.Figure()
    colours = {"uncertain": "#d62728", "random": "#1f77b4"}
    names = {"uncertain": "most uncertain first", "random": "at random"}
    for order in ("uncertain", "random"):
        line = curve[order]
        figure.add_trace(go.Scatter(
            x=curve["verdicts"] + curve["verdicts"][::-1], y=line["high"] + line["low"][::-1],
            fill="toself", fillcolor=colours[order], opacity=0.15, line={"width": 0},
            hoverinfo="skip", showlegend=False))
        figure.add_trace(go.Scatter(x=curve["verdicts"], y=line["mean"], mode="lines+markers",
                                    name=names[order], line={"color": colours[order]}))
    figure.update_layout(height=380, margin={"t": 20},
                         xaxis_title="verdicts the model learned from",
                         yaxis_title="ROC AUC on held-out sites",
                         legend={"orientation": "h", "y": -0.25})
    st.plotly_chart(figure, width="stretch", key="m_labels_curve")
    parts = []
    for row in curve["saved"]:
        if row["uncertain"] is None or row["random"] is None:
            continue
        saved = row["saved"]
        parts.append(f"ROC AUC {row['roc_auc']:.2f}: {row['uncertain']} verdicts in the "
                     f"uncertain order, {row['random']} at random ("
                     + (f"{saved} saved" if saved > 0 else f"{-saved} more" if saved < 0
                        else "no difference") + ")")
    st.caption(
        f"Simulated on this database's verdicts: {curve['start']} verdicts at random, then "
        f"{curve['step']} at a time, most uncertain first (closest to the threshold, as "
        f"Review's order does) or at random, retraining after each {curve['step']}; every "
        f"model is scored on sites it never learned from. Lines: mean of {curve['draws']} fold "
        f"draws; bands: lowest to highest. To reach "
        + ("; ".join(parts) if parts else "the figures shown, neither order's mean curve "
           "crossed the targets") + ".")


def _evaluate(card, path) -> None:
    bar = st.progress(0.0, text="Starting the evaluation process…")
    try:
        mine, published, why_not = worker.evaluate(
            settings.db_path(), str(path), compare_with=PUBLISHED,
            progress=common.moves(bar, lambda done, total, what: f"{what[:1].upper()}{what[1:]}…"))
    except ReviewError as exc:
        common.show_error(exc)
        return
    finally:
        bar.empty()
    results = [(card.id, mine)]
    if published is not None:
        results.append((f"{PUBLISHED} (published, after image only)", published))
    warning = f"The published model could not be compared: {why_not}" if why_not else None
    st.session_state["m_evaluation"] = (str(path), results, warning)


def _show_evaluation(results, warning) -> None:
    for _, result in results:
        st.write(result.summary())
    if warning:
        st.warning(warning)
    roc, pr = go.Figure(), go.Figure()
    for name, result in results:
        curves = result.curves()
        auc = result.metrics["roc_auc"][0]
        roc.add_trace(go.Scatter(x=curves["fpr"], y=curves["tpr"], mode="lines",
                                 name=f"{name}: AUC {auc:.3f}"))
        pr.add_trace(go.Scatter(x=curves["recall"], y=curves["precision"], mode="lines", name=name))
    roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             name="chance", showlegend=False))
    roc.update_layout(title="ROC", xaxis_title="false-positive rate", yaxis_title="true-positive rate",
                      legend={"orientation": "h", "y": -0.25}, height=420)
    pr.update_layout(title="Precision and recall", xaxis_title="recall", yaxis_title="precision",
                     legend={"orientation": "h", "y": -0.25}, height=420)
    left, right = st.columns(2)
    left.plotly_chart(roc, width="stretch", key="m_roc")
    right.plotly_chart(pr, width="stretch", key="m_pr")


def _embedding(result) -> None:
    figure = go.Figure()
    for status in STATUSES:          # coloured as on the Map
        pick = [i for i, s in enumerate(result.status) if s == status]
        if not pick:
            continue
        figure.add_trace(go.Scatter(
            x=result.x[pick], y=result.y[pick], mode="markers", name=status.replace("_", " "),
            marker={"color": hex_colour(status), "size": 8}, customdata=result.ids[pick],
            hovertemplate="detection %{customdata}<extra>" + status + "</extra>"))
    figure.update_layout(height=520, xaxis_title="UMAP 1", yaxis_title="UMAP 2")
    event = st.plotly_chart(figure, width="stretch", on_select="rerun",
                            selection_mode="points", key="m_scatter")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if points:
        detection = points[0].get("customdata")
        if isinstance(detection, list):
            detection = detection[0]
        if detection is not None:
            st.session_state["open_detection"] = int(detection)
            st.switch_page("app_pages/2_Review.py")
