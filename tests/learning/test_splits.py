"""Site splits: detections within 3 km of each other stay on the same side."""
import numpy as np

from review.store import connect

from tests.conftest import needs_fixtures

pytestmark = needs_fixtures


def test_split_keeps_sites_within_3_km_together(pairs_db):
    from review.learning.pairs import training_set
    from review.learning.splits import site_groups, split_by_site

    ts = training_set(connect(pairs_db))
    groups = site_groups(ts.lon, ts.lat)
    assert len(np.unique(groups)) < len(ts)          # some pairs are neighbours
    validation = split_by_site(ts.labels, groups, 0.25, seed=1)
    for group in np.unique(groups):
        assert len(set(validation[groups == group])) == 1
    assert 0.15 < validation.mean() < 0.4
    assert set(ts.labels[validation]) == {0, 1}
