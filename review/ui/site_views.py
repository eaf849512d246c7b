"""What the Sites page draws for one site: its map (footprints coloured by state and status,
a centre and a zoom that fit them) and its timeline of before/after chips per period.

Read from review.analysis.sites and review.review_imagery; no Streamlit here, so the page
module stays about layout and tests can check the drawing data directly.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..analysis import sites
from ..errors import ReviewError
from ..review_imagery.preparation import scene_views

# (r, g, b) of a period's state and of a site's status, shared by the map and the charts.
STATE_COLOURS = {"new": [215, 48, 31], "expanding": [253, 174, 97], "stable": [43, 131, 186],
                 "not_seen": [189, 189, 189]}
STATUS_COLOURS = {"verified": [215, 48, 31], "false_positive": [43, 131, 186],
                  "unsure": [253, 174, 97], "pending": [158, 158, 158],
                  "needs_second_opinion": [247, 104, 161], "disputed": [122, 1, 119]}


def zoom_to_fit(west: float, south: float, east: float, north: float, pixels: int = 300) -> float:
    """A deck.gl / MapLibre (Web Mercator, 512-pixel world at zoom 0) zoom at which the box
    spans about `pixels` on its longer side: at zoom z a degree of longitude is
    512 * 2**z / 360 pixels, a degree of latitude that divided by cos(latitude)."""
    lat = math.radians((south + north) / 2)
    span = max(east - west, (north - south) / max(math.cos(lat), 0.01), 1e-6)
    return float(max(1.0, min(18.0, math.log2(360 * pixels / 512 / span))))


def map_data(db, site_id: int) -> dict:
    """What a map of one site draws: the dissolved footprint (coloured by the site's
    status), each member footprint (coloured by the state of its period), a centre and a
    zoom that fit them. All GeoJSON in lon/lat."""
    site = sites.summary(db, site_id)
    footprints = []
    for detection_id, geometry, period, state, status in sites.member_footprints(db, site_id):
        footprints.append({"type": "Feature", "geometry": json.loads(geometry), "properties": {
            "label": f"detection {detection_id} · {period or 'no period'} · {state or '-'} · {status}",
            "colour": STATE_COLOURS.get(state, [120, 120, 120]) + [110]}})
    outline = {"type": "Feature", "geometry": json.loads(site["geometry"]), "properties": {
        "label": f"site {site_id} · {site['status']} · {site['area_ha']:,.1f} ha",
        "colour": STATUS_COLOURS[site["status"]] + [255]}}
    west, south, east, north = site["west"], site["south"], site["east"], site["north"]
    return {"outline": {"type": "FeatureCollection", "features": [outline]},
            "footprints": {"type": "FeatureCollection", "features": footprints},
            "lon": (west + east) / 2, "lat": (south + north) / 2,
            "zoom": zoom_to_fit(west, south, east, north)}


@dataclass
class PeriodView:
    """One period of a site's timeline: the before and after chips of the site's ground
    from stored scenes ([] when none covers it), or why they cannot be shown."""

    period: str
    state: str | None
    area_ha: float
    chips: list
    message: str | None = None


def timeline(db, site_id: int) -> list[PeriodView]:
    """Per period the site was seen in: before/after chips of the whole site (its dissolved
    footprint outlined, the same ground in every period) from the stored scenes, picked as
    for one detection of that period (preparation.scene_views)."""
    site = sites.summary(db, site_id)
    views = []
    for period, start, end, state, area in sites.period_spans(db, site_id):
        place = {"id": f"site {site_id}", "geometry": site["geometry"], "west": site["west"],
                 "south": site["south"], "east": site["east"], "north": site["north"],
                 "period_start": start, "period_end": end}
        try:
            chips = scene_views(db, place)
        except ReviewError as exc:
            views.append(PeriodView(period, state, area, [], f"stored imagery could not be shown: {exc}"))
            continue
        message = None if chips else "no stored scene covers this site"
        after = chips[-1].imagery if chips else None
        if after is not None and after.start and not (
                after.start <= end and (after.end or after.start) >= start):
            chips, message = [], f"no stored scene of {period} covers this site"
        views.append(PeriodView(period, state, area, chips, message))
    return views
