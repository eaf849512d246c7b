"""The Sites page (AppTest) and the helpers it reads in review.analysis.sites and review.ui.site_views: a site list with
filters, the build action for editors, one site through time (map, area per period,
before/after chips of each period, the verdicts of its detections) and trends by site;
ways in from Review, Map and Trends."""
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from review.analysis import sites
from review.analysis.site_trends import site_trend_table
from review.detection.imagery import open_tile
from review.detection.importers import import_file
from review.detection.runs import scene_record
from review.judging import users, verdicts
from review.store import add_scene, connect
from review.ui import site_views

from tests.conftest import FIXTURES, REPO, import_squares, mine_tile, needs_fixtures

TIMEOUT = 120
SITES, REVIEW, MAP, TRENDS = (str(REPO / "app_pages" / p) for p in (
    "6_Sites.py", "2_Review.py", "3_Map.py", "4_Trends.py"))
HOME = str(REPO / "app.py")
PASSWORDS = {"ana": "reviewer password", "eda": "editor password"}


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    monkeypatch.setenv("REVIEW_DB", str(path))
    return path


def _square(lon, lat, side):
    return shapely.box(lon - side / 2, lat - side / 2, lon + side / 2, lat + side / 2)


def _place(db, tmp_path, with_scenes=True):
    """One mine seen three years, growing (2022, 2023, 2024), over stored scenes of each
    year, and a lone detection far away. Returns the tile's centre (lon, lat)."""
    tiles = {year: mine_tile(tmp_path / f"scene{year}.tif", seed=year,
                             tags={"PERIOD_START": f"{year}-01-01", "PERIOD_END": f"{year}-12-31"})
             for year in (2022, 2023, 2024)}
    west, south, east, north = open_tile(tiles[2022]).lonlat_bounds()
    lon, lat = (west + east) / 2, (south + north) / 2
    rows = []
    for number, (year, side) in enumerate(((2022, 0.001), (2023, 0.0016), (2024, 0.0018))):
        rows.append(_row(number, _square(lon, lat, side), year))
    rows.append(_row(3, _square(-57.0, -5.0, 0.004), 2023))
    db["detections"].insert_all(rows)
    if with_scenes:
        for path in tiles.values():
            add_scene(db, scene_record(open_tile(path)))
    return lon, lat


def _row(number, box, year):
    west, south, east, north = box.bounds
    return {"source": "field", "external_id": f"d{number}", "geometry": shapely.to_geojson(box),
            "lon": box.centroid.x, "lat": box.centroid.y, "west": west, "south": south,
            "east": east, "north": north, "score": 0.9 - number / 10, "threshold": 0.5,
            "period_start": f"{year}-01-01", "period_end": f"{year}-12-31"}


def _open(site_id=None, **state) -> AppTest:
    at = AppTest.from_file(SITES, default_timeout=TIMEOUT)
    if site_id is not None:
        at.query_params["site"] = str(site_id)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------------- roles


def test_editors_build_sites_and_reviewers_file_field_reports():
    assert users.can("editor", "sites") and users.can("admin", "sites")
    assert not users.can("reviewer", "sites")
    assert users.minimum_role("sites") == "editor"
    assert users.can("reviewer", "report") and users.minimum_role("report") == "reviewer"


# --------------------------------------------------------------------- the helpers


def test_helpers_find_a_detections_site_its_members_and_its_last_verdicts(db, tmp_path):
    _place(db, tmp_path)
    assert sites.site_of(db, 1) is None and sites.periods(db) == []      # not built yet
    sites.build(db)
    assert sites.periods(db) == ["2022", "2023", "2024"]
    assert sites.site_of(db, 1) == sites.site_of(db, 3) == 1 and sites.site_of(db, 4) == 2
    verdicts.record(db, 2, "ana", "verified", note="<b>pits</b> by the river")
    site = sites.summary(db, 1)
    assert (site["status"], site["detections"], site["verified"], site["pending"]) == ("verified", 3, 1, 2)
    assert (site["first_period"], site["last_period"]) == ("2022", "2024")
    table = sites.member_table(db, 1)
    assert table["id"].tolist() == [1, 2, 3] and table["period"].tolist() == ["2022", "2023", "2024"]
    assert table.set_index("id").loc[2, ["last_reviewer", "last_verdict", "last_note"]].tolist() == [
        "ana", "verified", "<b>pits</b> by the river"]
    assert table.set_index("id").loc[1, "status"] == "pending"
    with pytest.raises(sites.SiteError, match="there is no site 99"):
        sites.summary(db, 99)


def test_a_merged_site_says_where_it_went(db):
    db["detections"].insert_all([_row(0, _square(-57.0, -5.0, 0.002), 2022),
                                 _row(1, _square(-57.01, -5.0, 0.002), 2022)])
    sites.build(db)
    assert sites.site_of(db, 1) == 1 and sites.site_of(db, 2) == 2
    db["detections"].insert(_row(2, shapely.box(-57.01, -5.0005, -57.0, -4.9995), 2023))
    sites.build(db)
    with pytest.raises(sites.SiteError, match="site 2 was merged into site 1"):
        sites.summary(db, 2)
    assert [(m["absorbed_id"], m["into_id"]) for m in sites.summary(db, 1)["merges"]] == [(2, 1)]


def test_map_data_fits_the_site_and_colours_footprints_by_state(db, tmp_path):
    lon, lat = _place(db, tmp_path)
    sites.build(db)
    data = site_views.map_data(db, 1)
    assert data["lon"] == pytest.approx(lon, abs=1e-4) and data["lat"] == pytest.approx(lat, abs=1e-4)
    assert 14 < data["zoom"] < 18                      # a 200 m site fills the map, not the world
    colours = [f["properties"]["colour"][:3] for f in data["footprints"]["features"]]
    assert colours == [site_views.STATE_COLOURS[s] for s in ("new", "expanding", "expanding")]
    assert len(data["outline"]["features"]) == 1


def test_timeline_gives_each_periods_before_and_after_of_the_same_ground(db, tmp_path):
    _place(db, tmp_path)
    sites.build(db)
    views = site_views.timeline(db, 1)
    assert [(v.period, v.state) for v in views] == [("2022", "new"), ("2023", "expanding"),
                                                      ("2024", "expanding")]
    assert views[0].message is None and [c.imagery.start for c in views[0].chips] == ["2022-01-01"]
    for view in views[1:]:
        before, after = view.chips
        assert before.imagery.end < after.imagery.start
        assert after.imagery.start[:4] == view.period
        assert before.image.size == after.image.size == views[0].chips[0].image.size
    far = site_views.timeline(db, 2)                        # no stored scene there
    assert [(v.period, v.chips, v.message) for v in far] == [("2023", [], "no stored scene covers this site")]


def test_timeline_does_not_pass_another_years_scene_off_as_this_periods(db, tmp_path):
    tile = mine_tile(tmp_path / "only2024.tif", tags={"PERIOD_START": "2024-01-01",
                                                      "PERIOD_END": "2024-12-31"})
    west, south, east, north = open_tile(tile).lonlat_bounds()
    db["detections"].insert(_row(0, _square((west + east) / 2, (south + north) / 2, 0.001), 2022))
    add_scene(db, scene_record(open_tile(tile)))
    sites.build(db)
    (view,) = site_views.timeline(db, 1)
    assert view.chips == [] and view.message == "no stored scene of 2022 covers this site"


# ------------------------------------------------------------------------- the page


def test_sites_page_before_any_build_offers_the_build_and_builds(db_path, tmp_path):
    _place(connect(db_path), tmp_path)
    at = _open()
    assert "Sites have not been built yet" in at.info[0].value
    at.number_input(key="sb_distance").set_value(150.0)
    at.button(key="sb_build").click().run()
    assert not at.exception and not at.error
    assert "2 sites from 4 detections" in at.success[0].value
    assert sites.last_build(connect(db_path))["distance_m"] == 150.0
    assert any("2 sites, 5 rows" in c.value for c in at.caption)


def test_site_view_shows_the_site_through_time(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    verdicts.record(db, 2, "<img src=x onerror=alert(1)>", "verified", note="<script>x</script>")
    at = _open(1)
    assert not at.error
    assert at.subheader[0].value == f"Site #1 · verified · {sites.summary(db, 1)['area_ha']:,.2f} ha"
    assert any(c.value.startswith("3 detections (1 verified, 2 pending) · first seen 2022 · "
                                  "last seen 2024") for c in at.caption)
    assert len(at.get("deck_gl_json_chart")) == 1
    area = at.get("plotly_chart")[0]
    assert "Area per period" in area.proto.spec
    captions = [i.caption for element in at.get("image") for i in element.proto.imgs]
    assert [c.split(",")[0] for c in captions] == [
        "After: scene2022.tif (GeoTIFF)", "Before: scene2022.tif (GeoTIFF)",
        "After: scene2023.tif (GeoTIFF)", "Before: scene2023.tif (GeoTIFF)",
        "After: scene2024.tif (GeoTIFF)"]
    members = at.dataframe[0].value
    assert members["id"].tolist() == [1, 2, 3]
    assert members.set_index("id").loc[2, "last_note"] == "<script>x</script>"     # text, as typed
    assert not [m for m in at.markdown if "<script>" in m.value or "<img" in m.value]
    at.button(key="sv_close").click().run()
    assert not at.subheader and "site" not in at.query_params                # back to the list
    nav = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    nav.session_state["reviewer"] = "Ana"
    nav.session_state["open_site"] = 1
    nav.run().switch_page("app_pages/6_Sites.py").run()
    nav.selectbox(key="sv_open_id").select(3)
    nav.button(key="sv_open").click().run()
    assert not nav.exception, nav.exception
    assert nav.subheader[0].value.startswith("Detection #3")               # in Review


def test_site_view_without_imagery_is_a_plain_sentence(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path, with_scenes=False)
    sites.build(db)
    at = _open(2)
    assert "No stored imagery covers this site yet" in at.info[0].value
    assert not at.get("image") and not at.error


def test_a_bad_or_unknown_site_in_the_address_is_a_message(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    assert [e.value for e in _open(77).error] == ["there is no site 77"]
    assert [e.value for e in _open("x1").error] == ["'x1' is not a site id."]


def test_site_list_filters_by_state_period_and_status_and_opens_by_detection(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    verdicts.record(db, 4, "ana", "false_positive", reason="riverbank")
    at = _open()
    table = at.dataframe[0].value
    assert table[["site_id", "period", "state"]].values.tolist() == [
        [1, "2022", "new"], [1, "2023", "expanding"], [1, "2024", "expanding"],
        [2, "2023", "new"], [2, "2024", "not_seen"]]
    at.selectbox(key="sl_state").select("expanding").run()
    assert at.dataframe[0].value["period"].tolist() == ["2023", "2024"]
    at.selectbox(key="sl_period").select("2024").run()
    assert at.dataframe[0].value["site_id"].tolist() == [1]
    at.selectbox(key="sl_state").select("all").run()
    at.selectbox(key="sl_status").select("false_positive").run()
    assert at.dataframe[0].value[["site_id", "period"]].values.tolist() == [[2, "2024"]]
    at.number_input(key="si_detection").set_value(3)
    at.button(key="si_open").click().run()
    assert at.subheader[0].value.startswith("Site #1 ·") and at.query_params["site"] == "1"
    at.number_input(key="si_detection").set_value(99)
    at.button(key="si_open").click().run()
    assert "Detection #99 belongs to no site" in at.sidebar.error[0].value


def test_trends_by_site_are_on_the_sites_page(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    at = _open()
    (shown,) = [d.value for d in at.dataframe if "sites_new" in d.value.columns]
    expected = site_trend_table(db)
    assert shown["period"].tolist() == ["2022", "2023", "2024"]
    assert shown["sites_new"].tolist() == expected["sites_new"].tolist() == [1, 1, 0]
    assert shown["area_ha_cumulative"].round(4).tolist() == expected["area_ha_cumulative"].round(4).tolist()
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum(any(t in spec for t in ("New and expanding area", "Cumulative mined area",
                                        "New sites per period")) for spec in titles) == 3


def test_review_map_and_trends_open_the_site(db_path, tmp_path):
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    review = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    review.session_state["reviewer"] = "Ana"
    review.session_state["open_detection"] = 2
    review.run().switch_page("app_pages/2_Review.py").run()
    assert review.subheader[0].value.startswith("Detection #2")
    review.button(key="open_site_link").click().run()
    assert not review.exception, review.exception
    assert [t.value for t in review.title] == ["Sites"]                  # the Sites page, on the site
    assert review.subheader[0].value.startswith("Site #1 ·") and review.query_params["site"] == "1"

    fmap = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    fmap.switch_page("app_pages/3_Map.py").run()
    fmap.number_input(key="open_id").set_value(4).run()
    fmap.button(key="open_its_site").click().run()
    assert not fmap.exception, fmap.exception
    assert fmap.subheader[0].value.startswith("Site #2 ·") and fmap.query_params["site"] == "2"
    trends = AppTest.from_file(TRENDS, default_timeout=TIMEOUT).run()
    assert not trends.exception and trends.button(key="open_site_trends")


def test_review_page_says_nothing_of_sites_before_they_are_built(db_path, tmp_path):
    _place(connect(db_path), tmp_path)
    review = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    review.session_state["reviewer"] = "Ana"
    review.run()
    assert review.subheader[0].value.startswith("Detection #")
    assert not [b for b in review.button if "through time" in b.label]
    fmap = AppTest.from_file(MAP, default_timeout=TIMEOUT).run()
    fmap.number_input(key="open_id").set_value(1).run()
    fmap.button(key="open_its_site").click().run()
    assert any("belongs to no site yet" in i.value for i in fmap.info)


# ------------------------------------------------------------------------ accounts


@pytest.fixture
def accounts(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_SECRET_KEY", "test key")
    db = connect(db_path)
    import_squares(db, tmp_path)
    for (name, password), role in zip(PASSWORDS.items(), ("reviewer", "editor")):
        users.add(db, name, password, role=role)
    return db_path


def _signed_in(name: str) -> AppTest:
    at = AppTest.from_file(SITES, default_timeout=TIMEOUT).run()
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(PASSWORDS[name])
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_only_editors_build_sites(accounts):
    reviewer = _signed_in("ana")
    assert [t.value for t in reviewer.title] == ["Sites"]
    assert not [b for b in reviewer.button if b.label == "Build sites"]
    assert "An editor builds them" in reviewer.info[0].value
    editor = _signed_in("eda")
    editor.button(key="sb_build").click().run()
    assert "6 sites from 6 detections" in editor.success[0].value


def test_the_server_refuses_a_reviewer_who_reaches_the_build(accounts, monkeypatch):
    """Whatever the page showed, the build checks the role on the server before it runs."""
    from review.ui import sites as page

    monkeypatch.setattr(page, "_may_build", lambda db: True)         # a page that shows it anyway
    reviewer = _signed_in("ana")
    reviewer.button(key="sb_build").click().run()
    assert [e.value for e in reviewer.error] == ["ana is a reviewer; this needs an editor"]
    assert sites.last_build(connect(accounts)) is None


# ------------------------------------------------------------------------ real data


@needs_fixtures
def test_sites_page_on_the_2022_to_2024_website_layers(db_path):
    db = connect(db_path)
    for year in (2022, 2023, 2024):
        import_file(db, FIXTURES / "detections" / "earthrise" / f"mining_{year}00_simplified.geojson")
    built = sites.build(db)
    frame = sites.sites_frame(db)
    at = _open()
    assert not at.error
    listed = at.dataframe(key="sl_table_all_all_all").value      # the list selects rows: a widget
    assert listed["site_id"].nunique() == built.sites == len(frame)
    assert len(listed) == len(sites.site_table(db))
    biggest = int(frame.sort_values("detections").iloc[-1]["id"])
    view = _open(biggest)
    assert not view.error
    assert view.subheader[0].value.startswith(f"Site #{biggest} · pending · ")
    (members,) = [d.value for d in view.dataframe if "last_verdict" in d.value.columns]
    assert len(members) == len(sites.members(db, biggest))
    assert "No stored imagery covers this site yet" in view.info[0].value


def test_the_site_list_says_how_many_sites_it_cannot_list_for_want_of_a_period(db_path, tmp_path):
    """Sites of detections without a period have no period row: the list says how many it
    leaves out, so its count is not a second, unexplained figure beside the build's."""
    db = connect(db_path)
    _place(db, tmp_path)
    far = _row(9, _square(-50.0, -10.0, 0.002), 2023)
    far.update(external_id="undated", period_start=None, period_end=None)
    db["detections"].insert(far)
    sites.build(db)
    at = _open()
    caption = " ".join(c.value for c in at.caption)
    assert "2 sites, 5 rows" in caption
    assert "1 more site of detections without a period is not listed" in caption


def test_the_site_list_and_trends_by_site_follow_verdicts_and_builds_made_elsewhere(db_path, tmp_path):
    """The page keeps the site list between clicks; a verdict or a new build made in
    another tab or the shell shows on the next run."""
    db = connect(db_path)
    _place(db, tmp_path)
    sites.build(db)
    at = _open()
    at.selectbox(key="sl_status").select("verified").run()
    assert at.dataframe[0].value.empty
    verdicts.record(db, 1, "ana", "verified")                          # elsewhere
    at.run()
    assert set(at.dataframe[0].value["site_id"]) == {1}
    trends_before = at.dataframe[1].value["sites_seen"].tolist()
    db["detections"].insert(_row(7, _square(-50.0, -12.0, 0.002), 2025))
    sites.build(db)                                                    # a new build, elsewhere
    at.selectbox(key="sl_status").select("all").run()
    assert "2025" in set(at.dataframe[0].value["period"])
    assert at.dataframe[1].value["sites_seen"].tolist() != trends_before
