"""Areas people give the dashboard: drawn rectangles, typed boxes, uploaded areas of interest."""
import json

import pytest
import shapely

from review.analysis import areas
from review.detection.fetch import ALL_BANDS, FetchError
from review.errors import ReviewError


def test_a_drawn_rectangle_becomes_bbox_text_that_parses_back():
    drawn = {"type": "Polygon", "coordinates": [[[-56.25, -6.78], [-56.2, -6.78], [-56.2, -6.7],
                                                 [-56.25, -6.7], [-56.25, -6.78]]]}
    text = areas.bbox_text(drawn)
    assert text == "-56.25000,-6.78000,-56.20000,-6.70000"
    request = areas.fetch_request(text, "2021-01-01", "2021-12-31", max_km2=400)
    assert request.bbox == (-56.25, -6.78, -56.2, -6.7)


def test_a_broken_drawing_is_a_review_error():
    with pytest.raises(ReviewError, match="not a usable geometry"):
        areas.bbox_text({"type": "Polygon"})


def test_a_fetch_larger_than_the_limit_is_refused_with_the_command_to_use():
    with pytest.raises(areas.AreaTooLarge, match="run this area from the command line") as caught:
        areas.fetch_request("-60,-10,-50,0", "2021-01-01", "2021-12-31", max_km2=400)
    assert "--" not in str(caught.value)       # the dashboard shows no CLI flags; the details do
    assert "--bbox=-60,-10,-50,0 --start 2021-01-01 --end 2021-12-31" in caught.value.details
    assert isinstance(caught.value, FetchError)
    with pytest.raises(FetchError, match="W,S,E,N"):
        areas.fetch_request("nonsense", "2021-01-01", "2021-12-31", max_km2=400)


def test_a_request_is_narrowed_to_the_model_bands_in_fetch_order():
    request = areas.fetch_request("-56.25,-6.78,-56.2,-6.7", "2021-01-01", "2021-12-31", 400)
    narrowed = areas.for_model(request, ("B8", "B4", "B3", "B2"))
    assert narrowed.bands == ("B2", "B3", "B4", "B8")
    assert narrowed.bbox == request.bbox and request.bands != narrowed.bands
    assert [b for b in ALL_BANDS if b in narrowed.bands] == list(narrowed.bands)


def test_an_area_of_interest_file_is_the_union_of_its_polygons_in_lon_lat(tmp_path):
    boxes = [shapely.box(500000, 9250000, 510000, 9260000), shapely.box(510000, 9250000, 520000, 9260000)]
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32721"}},
        "features": [{"type": "Feature", "properties": {"name": f"part {i}"},
                      "geometry": json.loads(shapely.to_geojson(b))} for i, b in enumerate(boxes)]}))
    area = areas.read_area(path)
    assert area.geom_type == "Polygon"                      # the two touching boxes are one
    west, south, east, north = area.bounds
    assert -57.1 < west < -56.9 and -56.9 < east < -56.6 and -6.8 < south < north < -6.6
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}))
    with pytest.raises(ReviewError, match="must be polygons"):
        areas.read_area(points)
