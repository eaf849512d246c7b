"""The queue's read-outs for the pages: sources, counts by source and status, extents,
filter keys, and letting go of a claim."""
import pytest
import shapely

from review import queue, verdicts
from review.errors import StoreError
from review.queue import Filters
from review.store import connect


@pytest.fixture
def db(tmp_path):
    return connect(tmp_path / "review.db")


def _add(db, source, n, lon0=-57.0):
    rows = []
    for i in range(n):
        lon, lat = lon0 + i * 0.01, -5.0 - i * 0.01
        box = shapely.box(lon, lat, lon + 0.004, lat + 0.004)
        rows.append({"source": source, "external_id": f"{source}-{i}", "geometry": shapely.to_geojson(box),
                     "lon": lon + 0.002, "lat": lat + 0.002, "west": lon, "south": lat,
                     "east": lon + 0.004, "north": lat + 0.004, "score": 0.5 + 0.1 * i})
    db["detections"].insert_all(rows)
    return [r["id"] for r in db["detections"].rows_where("source = ?", [source], order_by="id")]


def test_sources_are_distinct_and_sorted(db):
    assert queue.sources(db) == []
    _add(db, "partner", 2)
    _add(db, "earthrise", 3)
    assert queue.sources(db) == ["earthrise", "partner"]


def test_status_by_source_counts_every_status_with_a_total(db):
    assert queue.status_by_source(db).empty
    partner = _add(db, "partner", 2)
    earthrise = _add(db, "earthrise", 3)
    verdicts.record(db, earthrise[0], "ana", "verified")
    verdicts.record(db, earthrise[1], "ana", "false_positive", reason="riverbank")
    verdicts.record(db, partner[0], "ana", "verified")
    table = queue.status_by_source(db)
    assert table.index.tolist() == ["earthrise", "partner"]          # largest first
    assert table.loc["earthrise"].to_dict() == {"false_positive": 1, "pending": 1, "verified": 1, "total": 3}
    assert table.loc["partner"].to_dict() == {"false_positive": 0, "pending": 1, "verified": 1, "total": 2}


def test_extent_covers_every_box(db):
    _add(db, "s", 3, lon0=-60.0)
    rows = queue.listing(db, Filters(status=None))
    assert queue.extent(rows) == pytest.approx((-60.0, -5.02, -59.976, -4.996))
    with pytest.raises(StoreError, match="no detections"):
        queue.extent([])


def test_filter_keys_differ_exactly_when_the_selection_does():
    area = shapely.box(0, 0, 1, 1)
    assert Filters(sources=["a"], area=area).key() == Filters(sources=["a"], area=shapely.box(0, 0, 1, 1)).key()
    assert Filters().key() != Filters(status=None).key()
    assert Filters(score_min=0.5).key() != Filters(score_max=0.5).key()
    assert Filters(area=area).key() != Filters(area=shapely.box(0, 0, 2, 1)).key()
    assert len({Filters(sample_id=1).key(), Filters(sample_id=2).key(), Filters().key()}) == 3


def test_release_lets_go_of_a_reviewers_claim_only(db):
    _add(db, "s", 3)
    ana = queue.claim_next(db, "Ana")
    ben = queue.claim_next(db, "Ben")
    assert ana["id"] != ben["id"]
    queue.release(db, "Ana")
    assert list(db.execute("select detection_id, reviewer from claims")) == [(ben["id"], "Ben")]
    assert queue.claim_next(db, "Cy")["id"] == ana["id"]              # handed out again at once
