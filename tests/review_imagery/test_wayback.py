"""Esri Wayback: releases read from its configuration, picked by date, tiles stitched into a
chip with the footprint outlined, and a clear message when it cannot be reached."""
import numpy as np
import pytest
import shapely

from review.review_imagery import wayback

from tests.review_imagery.conftest import COLOURS

SITE = shapely.box(-56.2497, -6.7720, -56.2481, -6.7704)


def test_wayback_releases_are_read_and_picked_by_date(wayback_server):
    found = wayback.releases()
    assert [r.date for r in found] == ["2019-05-02", "2020-11-18", "2024-03-14"]
    before, latest = wayback.pick(found, "2021-01-01")
    assert (before.date, latest.date) == ("2020-11-18", "2024-03-14")
    assert wayback.pick(found, "2019-01-01")[0] is None
    picture = wayback.chip(before, SITE)
    pixels = np.asarray(picture.image)
    assert (pixels == COLOURS["22"]).all(axis=-1).mean() > 0.5       # this release's tiles
    assert (pixels == [255, 214, 0]).all(axis=-1).sum() > 50         # footprint outlined
    assert picture.imagery.start == "2020-11-18" and "Wayback" in picture.imagery.source


def test_wayback_errors_are_clear(monkeypatch):
    monkeypatch.setenv("REVIEW_WAYBACK_CONFIG_URL", "http://127.0.0.1:9/config.json")
    with pytest.raises(wayback.WaybackError, match="Esri Wayback could not be reached") as raised:
        wayback.releases()
    assert "could not fetch http://127.0.0.1:9/config.json" in raised.value.details
