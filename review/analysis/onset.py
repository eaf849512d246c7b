"""When a site changed from vegetation to bare ground or water: its onset, read from its
spectral time series (review.analysis.spectral_series), with the two clear observations that
bracket it.

The rule, chosen over a change-point method (ruptures' PELT and the like) because a reader
can check it by hand against the chart and it has no penalty to tune per site:

1. Only clear observations count: acquisitions (not composites: a year's median has no
   month) with at least half the footprint clear and an NDVI for footprint and ring; one
   per day, the clearest.
2. The contrast c = NDVI(footprint) - NDVI(ring). The ring (100-500 m around) sees the same
   season, haze and sensor as the site, so c holds its level while the site keeps its cover,
   and falls when the site alone loses it.
3. The onset is at the first clear observation k with at least BASELINE (3) clear
   observations before it whose median NDVI (the baseline) is vegetation (at least
   VEGETATION, 0.5), from which PERSIST (3) clear observations in a row all lie at least DROP
   (0.2) below the baseline, both in NDVI and in contrast (the median c before k). A drop of
   the site's own NDVI alone is not enough (a drought, a burnt region: the ring drops too),
   nor is one low value (an unmasked cloud shadow).
4. Its bracket is the last clear observation before k and k itself; the onset month is the
   month of the bracket's middle, so it is within a month of the truth while the bracket
   spans at most MAX_BRACKET_DAYS (62). A wider bracket (clouds hid the change) gives "not
   enough clear observations", with the bracket said in words.
5. "Not enough clear observations" also when there are fewer than BASELINE + PERSIST of
   them, or the drop starts within the last PERSIST; "not found" when the site was not
   vegetated at its first clear observations, or never dropped so.
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

import pandas as pd

from . import spectral_series

BASELINE = 3
PERSIST = 3
VEGETATION = 0.5
DROP = 0.2
MAX_BRACKET_DAYS = 62
STATUSES = ("found", "not_found", "not_enough")
SHORT = {"not_found": "not found", "not_enough": "not enough clear observations"}


@dataclass(frozen=True)
class Onset:
    status: str                  # found | not_found | not_enough
    month: str | None            # YYYY-MM when found
    last_before: str | None      # the last clear observation before the change (YYYY-MM-DD)
    first_after: str | None      # the first clear observation after it
    words: str                   # the answer as a sentence
    clear: int = 0               # clear observations the rule read
    to: str | None = None        # "bare ground" or "water" when found

    @property
    def short(self) -> str:
        """The month, or the answer in two or four words (the `onset` column)."""
        return self.month if self.status == "found" else SHORT[self.status]

    @property
    def bracket(self) -> str | None:
        """LAST_BEFORE/FIRST_AFTER (the `onset_bracket` column), when there is one."""
        return f"{self.last_before}/{self.first_after}" if self.last_before and self.first_after else None


def _clear(rows: list[dict]) -> list[dict]:
    by_day: dict[str, dict] = {}
    for row in rows:
        if (row.get("kind") or "acquisition") != "acquisition" or row.get("ring_ndvi") is None:
            continue
        if not spectral_series.is_clear(row):
            continue
        day = row["acquired"][:10]
        if day not in by_day or row["clear_share"] > by_day[day]["clear_share"]:
            by_day[day] = row
    return [{**by_day[day], "c": by_day[day]["ndvi"] - by_day[day]["ring_ndvi"]} for day in sorted(by_day)]


def _middle_month(first: str, last: str) -> str:
    a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return (a + (b - a) / 2).strftime("%Y-%m")


def find(rows: list[dict]) -> Onset:
    """The onset of a series' rows (spectral_series.stored), by the rule above."""
    obs = _clear(rows)
    n = len(obs)
    need = BASELINE + PERSIST
    if n < need:
        said = "No observation" if n == 0 else f"Only {n} observation{'s' if n > 1 else ''}"
        return Onset("not_enough", None, None, None,
                     f"{said} of the footprint {'is' if n <= 1 else 'are'} clear: not enough clear "
                     f"observations to date a change (it takes at least {need}).", n)
    start = statistics.median(o["ndvi"] for o in obs[:BASELINE])
    if start < VEGETATION:
        return Onset("not_found", None, None, None,
                     f"Not found: the footprint was not vegetated at its first clear observations "
                     f"(median NDVI {start:.2f}, {obs[0]['acquired']} to "
                     f"{obs[BASELINE - 1]['acquired']}), so any change came before the series begins.", n)
    for k in range(BASELINE, n):
        base_ndvi = statistics.median(o["ndvi"] for o in obs[:k])
        base_c = statistics.median(o["c"] for o in obs[:k])
        if base_ndvi < VEGETATION:
            continue

        def low(o):
            return o["ndvi"] <= base_ndvi - DROP and o["c"] <= base_c - DROP

        run = obs[k:k + PERSIST]
        if not all(low(o) for o in run):
            continue
        before, after = obs[k - 1]["acquired"], obs[k]["acquired"]
        if len(run) < PERSIST:
            return Onset("not_enough", None, before, after,
                         f"NDVI fell from {after} on, but there {'are' if len(run) > 1 else 'is'} "
                         f"only {len(run)} clear observation{'s' if len(run) > 1 else ''} from then "
                         f"on: not enough clear observations to call the change lasting (it takes "
                         f"{PERSIST}).", n)
        gap = (dt.date.fromisoformat(after) - dt.date.fromisoformat(before)).days
        if gap > MAX_BRACKET_DAYS:
            return Onset("not_enough", None, before, after,
                         f"The footprint changed between {before} and {after}, but clouds hid the "
                         f"{gap} days in between: not enough clear observations to name the month.", n)
        water = [o["mndwi"] for o in run if o.get("mndwi") is not None]
        to = "water" if water and statistics.median(water) > 0 else "bare ground"
        month = _middle_month(before, after)
        return Onset("found", month, before, after,
                     f"Onset {month}: the footprint changed from vegetation (NDVI {base_ndvi:.2f}) to "
                     f"{to} (NDVI {statistics.median(o['ndvi'] for o in run):.2f}, the ring "
                     f"{statistics.median(o['ring_ndvi'] for o in run):.2f}) between {before} and "
                     f"{after}, the last clear observation before and the first after.", n, to)
    return Onset("not_found", None, None, None,
                 f"Not found: in {n} clear observations from {obs[0]['acquired']} to "
                 f"{obs[-1]['acquired']}, the footprint's NDVI never fell lastingly by {DROP:g} "
                 "below its own earlier level and below its surroundings'.", n)


def for_site(db, site_id: int) -> Onset:
    """A site's onset from its stored series ("not_enough", saying so, when none is stored)."""
    place = spectral_series.site_place(site_id)
    spectral_series.place_of(db, place)          # an unknown site is an error, not an answer
    rows = spectral_series.stored(db, place)
    if not rows:
        return Onset("not_enough", None, None, None,
                     f"No time series of site {int(site_id)} is stored yet, so there are not enough "
                     f"clear observations: fetch it on the site's page or with "
                     f"`python -m review timeseries {int(site_id)}`.")
    return find(rows)


def for_sites(db, site_ids=None) -> dict[int, Onset]:
    """The onset of every site with a stored series (of these sites, when given), read in
    one query; sites without a series are left out."""
    wanted = None if site_ids is None else {int(i) for i in site_ids}
    columns = ", ".join(spectral_series.COLUMNS)
    cursor = db.execute(f"select place, {columns} from series_observations where place like "
                        "'site:%' order by place, acquired, item_id")
    names = [d[0] for d in cursor.description]
    grouped: dict[int, list[dict]] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        site_id = int(row["place"].split(":", 1)[1])
        if wanted is None or site_id in wanted:
            grouped.setdefault(site_id, []).append(row)
    return {site_id: find(rows) for site_id, rows in grouped.items()}


def new_sites_by_month(db) -> pd.DataFrame:
    """For Trends: per month (every month from the first onset to the last), the sites whose
    onset is that month, and how many of them are verified (any detection verified). Only
    sites of the last build with an onset found count; `counts` says how many have none."""
    current = {row[0] for row in db.execute("select id from sites")}
    verified = {row[0] for row in db.execute(
        "select distinct m.site_id from site_members m join detections d on d.id = m.detection_id "
        "where d.status = 'verified'")}
    months: dict[str, list[int]] = {}
    for site_id, onset in for_sites(db).items():
        if site_id in current and onset.status == "found":
            months.setdefault(onset.month, []).append(site_id)
    if not months:
        return pd.DataFrame({"month": [], "sites": [], "verified_sites": []}).astype(
            {"sites": int, "verified_sites": int})
    every = pd.period_range(min(months), max(months), freq="M").strftime("%Y-%m")
    return pd.DataFrame({"month": list(every),
                         "sites": [len(months.get(m, ())) for m in every],
                         "verified_sites": [sum(s in verified for s in months.get(m, ())) for m in every]})


def counts(db) -> dict[str, int]:
    """How many sites of the last build have each answer, and how many have no series."""
    current = {row[0] for row in db.execute("select id from sites")}
    found = {k: v for k, v in for_sites(db).items() if k in current}
    out = {status: sum(o.status == status for o in found.values()) for status in STATUSES}
    out["no_series"] = len(current) - len(found)
    return out
