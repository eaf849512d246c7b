"""Chips prepared ahead of the reviewer, in the background, failures noted with a reason."""
from review.detection.importers import import_file
from review.review_imagery import chip_cache, lookahead
from review.store import connect

from tests.conftest import needs_fixtures
from tests.review_imagery.conftest import detections_file


@needs_fixtures
def test_the_lookahead_prepares_in_the_background(tmp_path, stac):
    db_path = tmp_path / "review.db"
    db = connect(db_path)
    import_file(db, detections_file(tmp_path))
    rows = sorted(db["detections"].rows, key=lambda d: -d["score"])
    cache = chip_cache.cache_for(db)
    lookahead.want(rows, cache)
    for row in rows:
        assert lookahead.wait(row["id"], timeout=120)
    assert cache.lookup(rows[0]).after is not None
    assert cache.failure(rows[1], "sentinel-2") is not None
