"""The Models page: trained models, their curves beside the published model's, embedding."""
import json
import shutil

from streamlit.testing.v1 import AppTest

from review.cli import main

from tests.conftest import MODELS, REPO, needs_fixtures


def _page():
    return AppTest.from_file(str(REPO / "app_pages" / "8_Models.py"), default_timeout=240)


def _pairs_and_a_trained_model(tmp_path, monkeypatch, *flags):
    """The 111 fixture pairs reviewed in a database and a small features model trained on
    them in the models folder, both set for the page; returns the models folder."""
    from bench.train import load_pairs

    db = tmp_path / "r.db"
    load_pairs(tmp_path, str(db))
    folder = tmp_path / "models"
    folder.mkdir()
    assert main(["train", "--db", str(db), "--out", str(folder / "change.keras"), "--kinds",
                 "features", "--draws", "1", "--quiet", *flags]) == 0
    monkeypatch.setenv("REVIEW_DB", str(db))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(folder))
    return folder


def test_without_a_trained_model_it_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "r.db"))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "models"))
    page = _page().run()
    assert not page.exception
    assert "python -m review train" in page.info[0].value and "train one above" in page.info[0].value


@needs_fixtures
def test_evaluate_shows_curves_and_the_published_comparison(tmp_path, monkeypatch):
    folder = _pairs_and_a_trained_model(tmp_path, monkeypatch, "--no-refit")
    shutil.copy(MODELS / "44px_v2.6_rgb_ir_2021-11-11.h5", folder)
    page = _page().run()
    assert not page.exception
    assert page.selectbox(key="m_model").value.startswith("change")
    # The card's figures are said to be nested, with their interval and choices, and the
    # labels-saved curve is drawn from the card.
    card = json.loads((folder / "change.json").read_text())
    auc = next(m for m in page.metric if m.label == "ROC AUC on new places")
    assert auc.value == f"{card['validation']['roc_auc'][0]:.3f}"
    captions = " ".join(c.value for c in page.caption)
    assert "nested cross-validation by site" in captions and "5 choices" in captions
    assert "Simulated on this database's verdicts" in captions
    assert len(page.get("plotly_chart")) == 1              # before Evaluate: the curve alone
    page.button(key="m_evaluate").click().run()
    assert not page.exception and not page.error
    texts = " ".join(m.value for m in page.markdown)
    assert "change on" in texts and "44px_v2.6_rgb_ir on" in texts and "ROC AUC" in texts
    page.button(key="m_embed").click().run()
    assert not page.exception and not page.error


@needs_fixtures
def test_a_model_trained_on_everything_says_why_it_cannot_be_evaluated_here(tmp_path, monkeypatch):
    _pairs_and_a_trained_model(tmp_path, monkeypatch)
    page = _page().run()
    assert not page.exception
    trained_on = next(m for m in page.metric if m.label == "Trained on")
    assert trained_on.value == "111"
    page.button(key="m_evaluate").click().run()
    assert not page.exception
    assert "trained on every reviewed detection here (111)" in page.error[0].value
    assert "without the refit" in page.error[0].value


def _determinism_and_seeds() -> dict:
    from tests.learning.test_worker import process_globals

    return {k: v for k, v in process_globals().items() if "state" not in k}


def _form_button(page):
    return next(b for b in page.button if b.label == "Train")


def test_training_waits_for_ten_verdicts_of_each_label(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "r.db"))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "models"))
    page = _page().run()
    assert not page.exception
    assert "0 verified and 0 false-positive detections are reviewed" in page.caption[0].value
    assert _form_button(page).disabled


@needs_fixtures
def test_train_from_the_page_then_rescore_the_queue(tmp_path, monkeypatch):
    """A reviewer's database, trained from the page with a progress bar; the new model is
    selected, and rescoring orders the pending detections by it."""
    from bench.train import load_pairs
    from review.store import connect

    db_path = tmp_path / "r.db"
    load_pairs(tmp_path, str(db_path))
    for detection in range(1, 9):                # eight still to review
        assert main(["verdict", str(detection), "undo", "--reviewer", "labels",
                     "--db", str(db_path)]) == 0
    monkeypatch.setenv("REVIEW_DB", str(db_path))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "models"))
    page = _page().run()
    assert not page.exception
    assert "verified and" in page.caption[0].value and not _form_button(page).disabled
    dashboard = _determinism_and_seeds()
    page.text_input[0].set_value("from-the-page")
    page.multiselect[0].set_value(["features"])
    page.number_input[1].set_value(2)                    # fold draws: 2 instead of 10
    _form_button(page).click().run()
    assert not page.exception and not page.error
    assert ("features model trained on 103 of 103 reviewed detections; on places it never "
            "saw (nested cross-validation by site, 2 fold draws") in page.success[0].value
    assert (tmp_path / "models" / "from-the-page.keras").is_file()
    card = json.loads((tmp_path / "models" / "from-the-page.json").read_text())
    assert card["training_set"]["size"] == 103 and card["kind"] == "features"
    assert page.selectbox(key="m_model").value == "from-the-page (from-the-page.keras)"
    # Trained in a process of its own: the dashboard's process detects as it did.
    assert _determinism_and_seeds() == dashboard
    page.button(key="m_rescore").click().run()
    assert not page.exception and not page.error
    assert "8 of 8 pending detections scored by from-the-page" in page.success[0].value
    assert connect(db_path)["model_scores"].count == 8
    # Review shows a reviewer the trained model's score beside the source's.
    review = AppTest.from_file(str(REPO / "app_pages" / "2_Review.py"), default_timeout=240).run()
    review.text_input(key="reviewer").input("Ana").run()
    assert not review.exception
    assert "· trained model 0." in review.subheader[0].value
    assert "(from-the-page, threshold 0." in review.subheader[0].value
    # The same name again is refused, and the model already there is left alone.
    before = (tmp_path / "models" / "from-the-page.keras").stat().st_mtime_ns
    page.text_input[0].set_value("from-the-page")
    _form_button(page).click().run()
    assert "already exists" in page.error[0].value
    assert (tmp_path / "models" / "from-the-page.keras").stat().st_mtime_ns == before
