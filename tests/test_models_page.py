"""The Models page: trained models, their curves beside the published model's, embedding."""
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
                 "features", "--epochs", "10", "--quiet", *flags]) == 0
    monkeypatch.setenv("REVIEW_DB", str(db))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(folder))
    return folder


def test_without_a_trained_model_it_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "r.db"))
    monkeypatch.setenv("REVIEW_MODEL_CACHE", str(tmp_path / "models"))
    page = _page().run()
    assert not page.exception
    assert "python -m review train" in page.info[0].value


@needs_fixtures
def test_evaluate_shows_curves_and_the_published_comparison(tmp_path, monkeypatch):
    folder = _pairs_and_a_trained_model(tmp_path, monkeypatch, "--no-refit")
    shutil.copy(MODELS / "44px_v2.6_rgb_ir_2021-11-11.h5", folder)
    page = _page().run()
    assert not page.exception
    assert page.selectbox(key="m_model").value.startswith("change")
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
