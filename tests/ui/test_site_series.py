"""A site's spectral time series in the dashboard (AppTest): the site view's chart and onset
from the database at once, its button fetching the series from a loopback STAC service with
a progress bar (and a plain message when the service cannot be reached), and Review's
compact chart, read from stored rows only, in an expander, and absent when none is stored."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from review.analysis import spectral_series
from review.detection.fetch import Source
from review.store import connect

from tests import stac_server
from tests.conftest import FIXTURES, REPO, assert_plain, needs_fixtures

pytestmark = needs_fixtures
TIMEOUT = 120
REVIEW = str(REPO / "app_pages" / "2_Review.py")
PAIRS = FIXTURES / "imagery" / "amazon_change_pairs_val"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bracketed") / "files"
    return (folder, *stac_server.scenario_scenes("bracketed", PAIRS, folder))


@pytest.fixture
def server(scenes):
    running = stac_server.StacServer(scenes[0], scenes[1])
    yield running
    running.stop()


@pytest.fixture
def site_db(tmp_path, monkeypatch, scenes, cache):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    db = connect(path)
    return path, db, stac_server.site_over_patch(db, scenes[2])


def _section(db_path: str, site_id: int) -> None:
    from review.store import connect as open_db
    from review.ui import site_views

    site_views.series_section(open_db(db_path), site_id)


def _site_view(db_path, site_id) -> AppTest:
    at = AppTest.from_function(_section, args=(str(db_path), site_id), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def test_the_site_view_shows_the_stored_chart_and_onset_at_once(site_db, server):
    path, db, site = site_db
    spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url))
    server.requests.clear()
    at = _site_view(path, site)
    assert server.requests == []                        # drawn from the database alone
    assert len(at.get("plotly_chart")) == 1
    assert any(m.value.startswith("Onset 2021-06: the footprint changed from vegetation")
               and "to bare ground" in m.value for m in at.markdown)
    assert any("35 Sentinel-2 acquisitions stored (2020-01-01 to 2022-12-31), 31 clear" in c.value
               for c in at.caption)
    assert at.button(key=f"sv_series_fetch_{site}").label == "Update the time series"


def test_the_button_fetches_the_series_with_a_progress_bar(site_db, server, monkeypatch):
    path, db, site = site_db
    monkeypatch.setenv("REVIEW_STAC_URL", server.url)
    at = _site_view(path, site)
    assert not at.get("plotly_chart")
    assert at.info[0].value.startswith("No time series is stored for this site yet")
    at.button(key=f"sv_series_fetch_{site}").click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert at.success[0].value.startswith(f"Site {site}, 2020-01-01 to 2022-12-31: 35 observations, "
                                          "31 clear over the footprint")
    assert [w.value for w in at.warning] == [
        "1 scene left out: no data over the place (it lies outside the scene's swath)."]
    assert len(spectral_series.stored(db, spectral_series.site_place(site))) == 35


def test_a_service_that_cannot_be_reached_is_a_plain_message_and_nothing_is_stored(site_db):
    path, db, site = site_db                     # REVIEW_STAC_URL points at a closed port
    at = _site_view(path, site)
    at.button(key=f"sv_series_fetch_{site}").click().run()
    assert not at.exception, at.exception
    message = at.error[0].value
    assert_plain(message)
    assert message.startswith("Could not reach the Sentinel-2 catalogue")
    assert db.execute("select count(*) from series_observations").fetchone()[0] == 0


def _review(site_id_db, detection_id) -> AppTest:
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.session_state["open_detection"] = detection_id
    at.session_state["reviewer"] = "Ana"
    at.run()
    assert not at.exception, at.exception
    return at


def test_review_shows_the_stored_series_compact_in_an_expander_and_nothing_without_one(
        site_db, server):
    path, db, site = site_db
    detection = db.execute("select max(id) from detections").fetchone()[0]
    at = _review(path, detection)
    assert at.subheader[0].value.startswith(f"Detection #{detection}")
    assert not any("Spectral time series" in e.label for e in at.expander)
    assert not at.get("plotly_chart")

    spectral_series.fetch(db, spectral_series.site_place(site), source=Source(url=server.url))
    server.requests.clear()
    at = _review(path, detection)
    labels = [e.label for e in at.expander]
    assert "Spectral time series of the site (31 clear observations) · onset: 2021-06" in labels
    assert any(c.value.startswith("Onset 2021-06: the footprint changed") for c in at.caption)
    assert not at.get("plotly_chart")                   # drawn only when asked for
    at.toggle(key="review_series_chart").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert server.requests == []                        # Review never fetches
