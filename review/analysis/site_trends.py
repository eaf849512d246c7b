"""Sites through time, period by period: how many were seen, new, expanding or not seen,
and their area, counted once (the Trends page's sites chart and `python -m review trends --sites`)."""
from __future__ import annotations

import pandas as pd

from .sites import SiteError, require_build, sites_frame

SITE_TREND_COLUMNS = ["period", "sites_seen", "sites_new", "sites_expanding", "sites_not_seen",
                      "area_ha_seen", "area_ha_new", "area_ha_expanding", "area_ha_cumulative",
                      "sites_new_verified", "area_ha_new_verified", "area_ha_expanding_verified",
                      "area_ha_cumulative_verified"]


def site_trend_table(db, by: str | None = None) -> pd.DataFrame:
    """Sites through time (`sites`), one row per period of the last build:

    sites seen, new, expanding and not seen; area_ha_seen, the area of the sites seen
    then; area_ha_new, the area of sites first seen then; area_ha_expanding, how much the
    expanding sites grew over the previous period each was seen in; area_ha_cumulative,
    the union of every site's footprints seen up to then, counted once. The `_verified`
    columns count only sites whose status is verified. `by` (year or quarter), when given,
    must be what the sites were built by.
    """
    built = require_build(db)
    if by is not None and by != built["by"]:
        raise SiteError(f"the sites were built by {built['by']}; rebuild them by {by} "
                          f"to follow them by {by}")
    rows = pd.read_sql_query("select site_id, period, area_ha, area_ha_cumulative, state, "
                             "detections from site_periods order by site_id, period", db.conn)
    if rows.empty:
        return pd.DataFrame(columns=SITE_TREND_COLUMNS)
    verified = set(sites_frame(db, status="verified")["id"])
    rows["verified"] = rows["site_id"].isin(verified)
    seen = rows[rows["detections"] > 0].copy()
    seen["previous"] = seen.groupby("site_id")["area_ha"].shift(1)
    rows["growth"] = (seen["area_ha"] - seen["previous"]).where(seen["state"] == "expanding")
    rows["growth"] = rows["growth"].fillna(0.0)
    out = []
    for period, part in rows.groupby("period", sort=True):
        new = part[part["state"] == "new"]
        mine = part[part["verified"]]
        out.append({
            "period": period, "sites_seen": int((part["detections"] > 0).sum()),
            "sites_new": len(new), "sites_expanding": int((part["state"] == "expanding").sum()),
            "sites_not_seen": int((part["state"] == "not_seen").sum()),
            "area_ha_seen": part["area_ha"].sum(), "area_ha_new": new["area_ha"].sum(),
            "area_ha_expanding": part["growth"].sum(),
            "area_ha_cumulative": part["area_ha_cumulative"].sum(),
            "sites_new_verified": int((mine["state"] == "new").sum()),
            "area_ha_new_verified": mine.loc[mine["state"] == "new", "area_ha"].sum(),
            "area_ha_expanding_verified": mine["growth"].sum(),
            "area_ha_cumulative_verified": mine["area_ha_cumulative"].sum()})
    return pd.DataFrame(out, columns=SITE_TREND_COLUMNS)
