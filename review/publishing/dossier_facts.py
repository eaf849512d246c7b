"""The facts of a site's dossier, as the JSON twin of its PDF holds them.

One dict, read from the database at one moment, is both the JSON file and what the PDF
lays out (publishing.dossier_pdf), so the two cannot say different things. Pictures are
added by publishing.dossier, which names each embedded image by its SHA-256 here.

Publication rules, chosen for a file that leaves the newsroom:

- Reviewer and reporter names appear only when asked (`with_names`); otherwise each
  person is "reviewer 1", "reporter 2"... in order of first appearance in this dossier,
  so a second opinion still visibly comes from someone else. A verdict's `override`
  (which names who held the detection) is then said without the name.
- A detection waiting for a second opinion shows no verdict: the first look stays
  blind until someone else has judged it, as on the Sites page; its verdicts are
  counted as withheld.
- Every verdict shown carries its place in the verdict log signed just before
  (transparency_log.snapshot): log index, leaf hash and RFC 9162 inclusion proof, and the
  exact log entry when names are shown (what `verify-export` checks, field by field; the
  entry holds the name, so it is left out otherwise). The leaf hash alone proves the
  verdict is in the signed log; whoever holds the database can disclose the entry to a
  court, which checks it against that hash. A leaf hash is no secret: someone who
  guesses a reviewer's name can confirm the guess.
"""
from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone

import numpy as np
import shapely
from pyproj import Transformer

from .. import __version__
from ..analysis import sites
from ..analysis.equal_area import EQUAL_AREA
from ..judging import agreement as judging_agreement
from ..judging import merkle, project_settings
from ..judging.transparency_log import Snapshot
from ..judging.verdicts import REASONS, VERDICTS
from ..store import has_table, identity
from . import reports

FORMAT = "mining-review site dossier"
VERSION = 1
NAMES_SHOWN, NAMES_WITHHELD = "shown", "withheld"


def utm_zone(lon: float, lat: float) -> tuple[int, str, str]:
    """(zone number, hemisphere letter N or S, EPSG code) of the UTM zone of a place."""
    zone = min(60, int(math.floor((lon + 180) / 6)) + 1)
    north = lat >= 0
    return zone, "N" if north else "S", f"EPSG:{(32600 if north else 32700) + zone}"


def place(site: dict) -> dict:
    """Where the site is: centre in lon/lat and UTM, its box, its footprint (GeoJSON)."""
    lon, lat = float(site["lon"]), float(site["lat"])
    zone, hemisphere, epsg = utm_zone(lon, lat)
    easting, northing = Transformer.from_crs("EPSG:4326", epsg, always_xy=True).transform(lon, lat)
    geometry = shapely.orient_polygons(shapely.from_geojson(site["geometry"]), exterior_cw=False)
    return {"lon": round(lon, 6), "lat": round(lat, 6),
            "utm": {"zone": f"{zone}{hemisphere}", "crs": epsg, "easting": round(easting, 1),
                    "northing": round(northing, 1)},
            "bbox": [round(float(site[k]), 6) for k in ("west", "south", "east", "north")],
            "footprint": json.loads(shapely.to_geojson(geometry))}


class Names:
    """People as the dossier names them: themselves, or 'reviewer 1', 'reporter 1'..."""

    def __init__(self, shown: bool):
        self.shown = shown
        self.seen: dict[tuple[str, str], str] = {}

    def __call__(self, role: str, name: str | None) -> str | None:
        if name is None or self.shown:
            return name
        key = (role, name)
        if key not in self.seen:
            self.seen[key] = f"{role} {sum(1 for r, _ in self.seen if r == role) + 1}"
        return self.seen[key]


def _rows(db, sql: str, params=()) -> list[dict]:
    cursor = db.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _in(ids) -> str:
    return ", ".join(str(int(i)) for i in ids) or "null"


def periods(db, site_id: int) -> list[dict]:
    """Area per period: the union of the period's footprints, counted once (sites.build)."""
    spans = {p: (start, end) for p, start, end, _, _ in sites.period_spans(db, site_id)}
    found = []
    for row in _rows(db, "select period, area_ha, area_ha_cumulative, state, detections from "
                         "site_periods where site_id = ? order by period", [site_id]):
        start, end = spans.get(row["period"], (None, None))
        found.append({"period": row["period"], "start": start, "end": end, "state": row["state"],
                      "detections": row["detections"], "area_ha": round(row["area_ha"], 4),
                      "area_ha_cumulative": round(row["area_ha_cumulative"], 4)})
    return found


def _verdicts(db, ids: list[int], log: Snapshot, names: Names) -> dict[int, list[dict]]:
    """Each detection's verdicts covered by the log snapshot, as exports show them, with
    the proof of each (see the module docstring for what names change)."""
    found: dict[int, list[dict]] = {i: [] for i in ids}
    for row in _rows(db, f"select * from verdicts where detection_id in ({_in(ids)}) and id <= ? "
                         f"order by id", [log.last_id]):
        proof = log.proof(row["id"])
        leaf = merkle.leaf_hash(proof["log_entry"].encode("utf-8"))
        shown = {"log_index": proof["log_index"], "log_leaf_hash": base64.b64encode(leaf).decode(),
                 "inclusion_proof": proof["inclusion_proof"]}
        if names.shown:                 # the entry holds the reviewer's name
            shown["log_entry"] = proof["log_entry"]
        override = row["override"]
        if override and not names.shown:
            override = "reviewed while another reviewer held the detection"
        found[row["detection_id"]].append({
            "id": row["id"], "reviewer": names("reviewer", row["reviewer"]),
            "verdict": row["verdict"], "reason": row["reason"], "note": row["note"],
            "time": row["created_at"],
            "before": {"source": row["before_source"], "start": row["before_start"],
                       "end": row["before_end"]},
            "after": {"source": row["after_source"], "start": row["after_start"],
                      "end": row["after_end"]},
            "model": row["model_id"], "threshold": row["threshold"], "via": row["via"],
            "final": bool(row["final"]), "override": override, "hash": row["hash"], **shown})
    return found


def detections(db, site_id: int, log: Snapshot, names: Names) -> list[dict]:
    """The site's detections by period, each with its verdicts (none while it waits for a
    second opinion: `verdicts_withheld` says how many)."""
    rows = _rows(db, "select d.*, m.period from site_members m join detections d on "
                     "d.id = m.detection_id where m.site_id = ? order by m.period, d.id", [site_id])
    waiting = {r["id"] for r in rows if r["status"] == "needs_second_opinion"}
    # Withheld verdicts are never read into the names: no number is spent on their reviewers.
    histories = _verdicts(db, [r["id"] for r in rows if r["id"] not in waiting], log, names)
    withheld = dict(db.execute(f"select detection_id, count(*) from verdicts where detection_id in "
                               f"({_in(waiting)}) and id <= ? group by detection_id", [log.last_id]))
    found = []
    for row in rows:
        found.append({
            "id": row["id"], "period": row["period"], "period_start": row["period_start"],
            "period_end": row["period_end"], "source": row["source"],
            "external_id": row["external_id"], "run_id": row["run_id"],
            "model": row["model_id"], "threshold": row["threshold"], "score": row["score"],
            "area_ha": row["area_ha"], "area_source": row["area_source"],
            "status": row["status"], "lon": round(row["lon"], 6), "lat": round(row["lat"], 6),
            "footprint": json.loads(row["geometry"]),
            "verdicts": histories.get(row["id"], []),
            "verdicts_withheld": withheld.get(row["id"], 0)})
    return found


def agreement(db, found: list[dict]) -> dict:
    """How far reviewers agreed: on this site's detections judged by two reviewers (first
    two standing verdicts, as judging.agreement counts them), and over the whole project."""
    judged = judging_agreement.latest_verdicts(db)
    shown = {d["id"] for d in found if not d["verdicts_withheld"]}
    twice = []
    for detection_id in sorted(shown):
        rows = judged.get(detection_id, [])
        if len(rows) >= 2:
            first, second = rows[0][1], rows[1][1]
            twice.append({"detection_id": detection_id, "first": first, "second": second,
                          "alike": first == second})
    overall = judging_agreement.agreement(db).to_json()["overall"]
    return {"second_opinion_mode": project_settings.get(db, "second_opinion"),
            "site": {"detections_judged_twice": len(twice),
                     "alike": sum(t["alike"] for t in twice), "detections": twice},
            "project": overall}


def _metres_from(site_geometry, lon: float | None, lat: float | None) -> float | None:
    if lon is None or lat is None:
        return None
    _, _, epsg = utm_zone(lon, lat)
    to_utm = Transformer.from_crs("EPSG:4326", epsg, always_xy=True)

    def project(geometry):
        return shapely.transform(geometry, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))

    return round(float(project(site_geometry).distance(project(shapely.Point(lon, lat)))), 1)


def field_reports(db, site_id: int, site_geometry, names: Names) -> list[dict]:
    """Reports on the site or its detections, with each photo's EXIF time and place and how
    far that place lies from the site's footprint."""
    found = []
    for row in reports.for_site(db, site_id):
        photos = []
        for photo in row["photos"]:
            info = db.execute("select format, width, height from photos where sha256 = ?",
                              [photo["sha256"]]).fetchone()
            photos.append({"sha256": photo["sha256"], "format": info[0], "width": info[1],
                           "height": info[2], "exif_time": photo["taken_at"],
                           "exif_lon": photo["lon"], "exif_lat": photo["lat"],
                           "exif_metres_from_site": _metres_from(site_geometry, photo["lon"], photo["lat"])})
        found.append({"id": row["id"], "detection_id": row["detection_id"], "site_id": row["site_id"],
                      "reporter": names("reporter", row["reporter"]), "seen": row["seen"],
                      "reported_at": row["created_at"], "text": row["text"], "lon": row["lon"],
                      "lat": row["lat"], "position_from": row["position_from"],
                      "metres_from_site": _metres_from(site_geometry, row["lon"], row["lat"]),
                      "photos": photos})
    return found


def context(db, site_id: int) -> dict:
    """Context polygons the site overlaps (review.analysis.context: by layer and field value,
    hectares in EPSG:6933, ground seen in several periods once), each detection's own
    overlaps, and the layers they were measured against."""
    from ..analysis import context as context_layers

    by_detection = [{"detection_id": r["detection_id"], "layer": r["layer"], "value": r["value"],
                     "overlap_ha": round(float(r["overlap_ha"]), 4)}
                    for r in context_layers.overlaps(db, site_id=site_id)]
    site_rows = [{"layer": r["layer"], "value": r["value"], "overlap_ha": round(float(r["overlap_ha"]), 4)}
                 for r in context_layers.site_overlaps(db, site_id)]
    layers = _rows(db, "select name, field, source_file, sha256, source_crs, features, added_at "
                       "from context_layers order by name") if has_table(db, "context_layers") else []
    return {"site": site_rows, "detections": by_detection, "layers": layers}


def onset(db, site_id: int) -> dict:
    """The month the site turned bare or wet, from its stored time series, with the
    observations it rests on (review.analysis.onset, spectral_series)."""
    from ..analysis import onset as site_onset
    from ..analysis import spectral_series

    found = site_onset.for_site(db, site_id)
    place_name = spectral_series.site_place(site_id)
    observations = spectral_series.stored(db, place_name)
    keep = ("acquired", "item_id", "source", "kind", "clear", "clear_share", "ndvi", "ring_ndvi",
            "bsi", "ring_bsi", "mndwi", "ring_mndwi")
    return {"status": found.status, "month": found.month, "last_before": found.last_before,
            "first_after": found.first_after, "to": found.to, "clear_observations": found.clear,
            "words": found.words,
            "series": {"place": place_name, "windows": spectral_series.windows(db, place_name),
                       "observations": [{k: row.get(k) for k in keep} for row in observations]}}


def models(db, found: list[dict]) -> dict:
    """The models and thresholds behind the site's detections: per model, threshold and
    source how many; the detector runs (with the model file's checksum) and the imported
    files (with theirs) they came from."""
    groups: dict[tuple, dict] = {}
    for d in found:
        key = (d["model"], d["threshold"], d["source"])
        group = groups.setdefault(key, {"model": d["model"], "threshold": d["threshold"],
                                        "source": d["source"], "detections": 0,
                                        "score_min": None, "score_max": None})
        group["detections"] += 1
        if d["score"] is not None:
            group["score_min"] = d["score"] if group["score_min"] is None else min(group["score_min"], d["score"])
            group["score_max"] = d["score"] if group["score_max"] is None else max(group["score_max"], d["score"])
    run_ids = sorted({d["run_id"] for d in found if d["run_id"] is not None})
    runs = _rows(db, f"select r.id, r.model_id, r.model_sha256, r.t_raw, r.t_main, r.t_iso, r.device, "
                     f"r.software, r.started_at, r.finished_at, s.name as scene, s.sha256 as scene_sha256, "
                     f"s.product, s.period_start, s.period_end from runs r left join scenes s on "
                     f"s.id = r.scene_id where r.id in ({_in(run_ids)}) order by r.id")
    sources = sorted({d["source"] for d in found})
    imports = [{**r, "path": r["path"].replace("\\", "/").rsplit("/", 1)[-1]} for r in _rows(
        db, f"select source, path, sha256, features, vintage, imported_at from imports where source in "
            f"({', '.join('?' * len(sources)) or 'null'}) order by id", sources)]
    return {"by_model": sorted(groups.values(), key=lambda g: [str(v) for v in g.values()]),
            "runs": runs, "imports": imports}


def method(facts: dict) -> list[str]:
    """The method in plain words, from what this dossier's facts say was done."""
    from ..analysis import onset as onset_rule
    from ..analysis import spectral_series

    build = facts["site"]["build"]
    windows = facts["onset"]["series"]["windows"]
    ring = ((windows[-1]["ring_inner_m"], windows[-1]["ring_outer_m"])
            if windows and windows[-1]["ring_outer_m"] else spectral_series.RING)
    used = ", ".join(sorted({f"{g['model'] or 'an unnamed model'} (threshold {g['threshold']})"
                             if g["threshold"] is not None else (g["model"] or f"source {g['source']}")
                             for g in facts["models"]["by_model"]})) or "none recorded"
    mode = facts["agreement"]["second_opinion_mode"]
    second = {"off": "One verdict decides a detection's status.",
              "verified": "A 'verified' verdict counts only once a second reviewer agrees; a "
                          "disagreement leaves the detection disputed until an editor settles it.",
              "all": "Both 'verified' and 'false positive' verdicts count only once a second "
                     "reviewer agrees; a disagreement leaves the detection disputed until an "
                     "editor settles it."}[mode]
    return [
        f"Detections are footprints a detector model marked as likely mining in Sentinel-2 "
        f"imagery, or footprints imported from a published source. Models and thresholds "
        f"behind this site's detections: {used}.",
        f"Footprints of every period that overlap or lie within {build['distance_m']:g} m of "
        f"each other form one site (sites built {build['built_at'][:10]}, by {build['by']}). "
        f"A period's area is the union of that period's footprints, counted once, measured in "
        f"an equal-area projection ({EQUAL_AREA}), in hectares; a period is 'expanding' when "
        f"the area grew by more than {build['growth']:.0%} over the previous period seen.",
        "People judged each detection by eye on before/after imagery and recorded a verdict: "
        "verified (mining), false positive (with a reason) or unsure. Each verdict records the "
        "imagery shown (source and dates) and the model behind the detection. " + second,
        f"The onset is read from every Sentinel-2 acquisition over the footprint and a ring "
        f"{ring[0]:g}-{ring[1]:g} m around it, counting those with at least "
        f"{spectral_series.CLEAR_SHARE:.0%} of the footprint clear of cloud and shadow (judged "
        f"pixel by pixel from the scene classification). It is the first clear acquisition from "
        f"which {onset_rule.PERSIST} in a row lie at least {onset_rule.DROP:g} below the vegetation "
        f"index (NDVI) of the {onset_rule.BASELINE} or more clear acquisitions before it (their "
        f"median at least {onset_rule.VEGETATION:g}: vegetation), both on their own and against the "
        f"ring, which sees the same season and haze; so a drought or one cloud shadow is no onset. "
        f"Its bracket is the last clear acquisition before and that first one after; when they lie "
        f"more than {onset_rule.MAX_BRACKET_DAYS} days apart the answer is 'not enough clear "
        f"observations'.",
        f"Context overlaps are the hectares of the site's footprint inside each polygon of a "
        f"context layer (territories, protected areas, concessions), measured in {EQUAL_AREA}.",
        "Every verdict is an entry of an append-only log whose Merkle tree (RFC 9162) was signed "
        "when this dossier was made. The checkpoint and the verifier key are printed at the end; "
        "each verdict's inclusion proof shows it is in the signed tree, so the verdicts cannot "
        "have been changed, removed or reordered since without the checkpoint failing.",
    ]


def facts(db, site_id: int, log: Snapshot, with_names: bool = False) -> dict:
    """Every fact of a site's dossier (no pictures yet: publishing.dossier adds them)."""
    site = sites.summary(db, site_id)          # SiteError for an unknown or merged-away id
    build = sites.last_build(db)
    names = Names(with_names)
    found = detections(db, site_id, log, names)
    geometry = shapely.from_geojson(site["geometry"])
    out = {
        "dossier": {"format": FORMAT, "version": VERSION, "software": f"mining-review {__version__}",
                    "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "database": identity(db), "names": NAMES_SHOWN if with_names else NAMES_WITHHELD},
        "site": {"id": int(site_id), "status": site["status"], "area_ha": round(site["area_ha"], 4),
                 "first_period": site["first_period"], "last_period": site["last_period"],
                 "detections": int(site["detections"]),
                 "counts": {s: int(site[s]) for s in sites.SITE_STATUSES},
                 "merges": site["merges"],
                 "build": {k: build[k] for k in ("built_at", "distance_m", "growth", "by")},
                 "place": place(site)},
        "periods": periods(db, site_id),
        "onset": onset(db, site_id),
        "imagery": [],                  # publishing.dossier adds the chips it embeds
        "detections": found,
        "agreement": agreement(db, found),
        "field_reports": field_reports(db, site_id, geometry, names),
        "context": context(db, site_id),
        "models": models(db, found),
        "verdict_log": {"checkpoint": log.kept.note, "key": log.kept.key,
                        "tree_size": log.kept.checkpoint.size,
                        "root_hash": base64.b64encode(log.kept.checkpoint.root).decode()},
        "labels": {"verdicts": VERDICTS, "reasons": REASONS},
    }
    out["method"] = method(out)
    return out
