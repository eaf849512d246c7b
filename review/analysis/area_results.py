"""The estimate of an assessment design from its units' labels so far.

Each stratum contributes the longest prefix of its units, in the order drawn, whose every
unit is settled (mining, not mining, or can't tell): that prefix is a simple random sample
of the stratum, however the labelling went. A unit labelled after one still waiting is
kept for later, not used now, and the notes say so. "Can't tell" units are left out of the
estimate and reported; the notes say which way that may bias it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import area_estimate
from .assessment import Design, covered_area_ha, footprints, get, listing, region_of

SETTLED = ("mining", "not_mining", "unsure")
# How the estimate was made, in one paragraph (shown under it on Trends and Assessment).
METHOD = ("Estimated mined area: points drawn at random over the whole region in strata (the "
          "detections' footprints, a ring around them, the rest), each labelled by eye; the "
          "stratified estimator of Stehman 2014 (Olofsson et al. 2014's good practice) gives the "
          "area, its standard error and the ±1.96 SE interval. That interval is too narrow when "
          "a stratum shows little or no mining, so the headline interval is the robust one: each "
          "stratum's mining share from Jeffreys and Clopper-Pearson bounds, combined by "
          "simulation. Mapped: the ground under the detections' footprints in the design's "
          "region (EPSG:6933); verified: under those people confirmed. Points judge ground, so "
          "these are footprint areas, which differ from the table above where a source gives "
          "its own mined-area attribute.")


@dataclass
class StratumLabels:
    name: str
    area_ha: float
    n: int
    mapped: bool
    used: list[bool] = field(default_factory=list)     # mining or not, in drawn order
    unsure: int = 0
    later: int = 0              # settled units after the first one still waiting


def stratum_labels(db, design: Design) -> list[StratumLabels]:
    strata = {s["name"]: StratumLabels(s["name"], s["area_ha"], s["n"], bool(s["mapped"]))
              for s in design.strata}
    waiting: set[str] = set()
    for name, status in db.execute("select stratum, status from assessment_units where "
                                   "assessment_id = ? order by stratum, position", [design.id]):
        stratum = strata[name]
        if name in waiting or status not in SETTLED:
            waiting.add(name)
            stratum.later += status in SETTLED
        elif status == "unsure":
            stratum.unsure += 1
        else:
            stratum.used.append(status == "mining")
    return list(strata.values())


@dataclass
class AssessmentResult:
    design: Design
    strata: list[StratumLabels]
    estimate: area_estimate.AreaEstimate

    def notes(self) -> list[str]:
        notes = list(self.estimate.to_json().get("notes") or [])
        unsure = sum(s.unsure for s in self.strata)
        if unsure:
            by = ", ".join(f"{s.unsure} in {s.name}" for s in self.strata if s.unsure)
            notes.append(f"{unsure} unit{'s' if unsure != 1 else ''} labelled \"can't tell\" ({by}) "
                         "are left out: if such places are more often mining than the rest (cloud, "
                         "fresh clearings), the estimate is too low, and too high if less often.")
        later = sum(s.later for s in self.strata)
        if later:
            notes.append(f"{later} unit{'s' if later != 1 else ''} labelled after one still waiting "
                         "in the drawn order are not used yet: a prefix of the order is a random "
                         "sample, a hand-picked subset is not. Label the waiting ones first.")
        return notes

    def to_json(self) -> dict:
        figures = self.estimate.to_json()
        for row, stratum in zip(figures["strata"], self.strata):
            row["unsure"] = stratum.unsure
        return {"design": self.design.name, **figures, "period": self.design.period.label,
                "unsure": sum(s.unsure for s in self.strata), "notes": self.notes()}

    def table(self) -> str:
        f = self.to_json()
        lines = [f"assessment {f['design']} ({f['period']}): {f['labelled']} of {f['n']} units "
                 f"labelled{'' if f['complete'] else ' (incomplete)'}"]
        lines.append("stratum,area_ha,n,labelled,mining,unsure")
        for s in f["strata"]:
            lines.append(f"{s['name']},{s['area_ha']:.1f},{s['n']},{s['labelled']},{s['mining']},"
                         f"{s['unsure']}")
        mining = f["mining"]
        if mining["area_ha"] is None:
            lines.append("mined area: no estimate yet")
        else:
            se = "" if mining["se_ha"] is None else f", SE {mining['se_ha']:,.1f} ha"
            interval = ("" if mining["ci95_low_ha"] is None else
                        f", 95% {mining['ci95_low_ha']:,.1f} to {mining['ci95_high_ha']:,.1f} ha")
            lines.append(f"mined area: {mining['area_ha']:,.1f} ha{se}{interval} (±1.96 SE, "
                         "Olofsson et al. 2014)")
            robust = mining.get("robust") or {}
            if robust.get("low_ha") is not None:
                lines.append(f"robust 95% interval: {robust['low_ha']:,.1f} to {robust['high_ha']:,.1f} ha "
                             f"({robust['method']})")
        lines.append(f"mapped area (detections): {f['mapped_area_ha']:,.1f} ha")
        for key, words in (("users_accuracy", "user's accuracy"),
                           ("producers_accuracy", "producer's accuracy"),
                           ("overall_accuracy", "overall accuracy")):
            value = f[key]
            if value is None or value.get("value") is None:
                lines.append(f"{words}: not known yet")
            else:
                se = "" if value.get("se") is None else f" (SE {value['se']:.3f})"
                lines.append(f"{words}: {value['value']:.3f}{se}")
        lines += [f"note: {n}" for n in f["notes"]]
        return "\n".join(lines)


def estimate(db, design: Design, seed: int = 1) -> AssessmentResult:
    strata = stratum_labels(db, design)
    result = area_estimate.stratified_estimate(
        [area_estimate.Stratum(s.name, s.area_ha, s.n, s.used) for s in strata],
        mapped=tuple(s.name for s in strata if s.mapped), seed=seed)
    return AssessmentResult(design, strata, result)


def trend_rows(db) -> list[dict]:
    """Per assessment: its period, the mapped and verified area in its region, and the
    estimate with both intervals and the accuracies (what Trends shows beside the map)."""
    rows = []
    for listed in listing(db):
        design = get(db, listed["name"])
        figures = estimate(db, design).to_json()
        region, sources = region_of(db, design.id)
        verified = covered_area_ha(region, footprints(db, region, design.period, sources or None,
                                                      statuses=("verified",)))
        mining = figures["mining"]
        robust = mining.get("robust") or {}
        rows.append({
            "assessment": design.name, "period": design.period.label,
            "mapped_area_ha": figures["mapped_area_ha"], "verified_area_ha": verified,
            "estimated_area_ha": mining["area_ha"], "se_ha": mining["se_ha"],
            "ci95_low_ha": mining["ci95_low_ha"], "ci95_high_ha": mining["ci95_high_ha"],
            "robust_low_ha": robust.get("low_ha"), "robust_high_ha": robust.get("high_ha"),
            "users_accuracy": (figures["users_accuracy"] or {}).get("value"),
            "producers_accuracy": (figures["producers_accuracy"] or {}).get("value"),
            "overall_accuracy": (figures["overall_accuracy"] or {}).get("value"),
            "labelled": figures["labelled"], "n": figures["n"]})
    return rows
