"""The dossier's PDF: its facts (publishing.dossier_facts) laid out for a reader, with fpdf2.

Text is real text in an embedded Unicode font (DejaVu Sans, shipped under fonts/ with its
licence), so it is searchable and copyable and shows Portuguese, Spanish and Ukrainian
names; the map and the chart are vector drawings (their labels are text too); chips and
photos are embedded as the JPEG files whose SHA-256 the facts give.
"""
from __future__ import annotations

import io
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import shapely
from fpdf import FPDF
from fpdf.fonts import FontFace
from pyproj import Transformer

from ..judging.verdicts import REASONS, VERDICTS

FONTS = Path(__file__).with_name("fonts")
FAMILY = "DejaVu"
WIDTH = 180.0                  # mm between the margins of an A4 page
STATUS_WORDS = {"verified": "verified", "false_positive": "false positive", "unsure": "unsure",
                "pending": "waiting for review", "needs_second_opinion": "waiting for a second opinion",
                "disputed": "disputed", "undo": "undo (takes back the decision before)"}
PERIOD_COLOURS = [(215, 48, 31), (253, 141, 60), (35, 132, 67), (33, 113, 181), (106, 81, 163),
                  (140, 81, 10), (1, 102, 94), (197, 27, 125)]
CONTEXT_COLOUR = (255, 236, 160)
VERDICT_COLOURS = {"verified": (215, 48, 31), "false_positive": (43, 131, 186),
                   "unsure": (253, 174, 97), "undo": (120, 120, 120)}


class _Document(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, size=7)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)


def _number(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _dms(value: float, positive: str, negative: str) -> str:
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return f"{degrees}°{minutes:02d}′{seconds:04.1f}″{hemisphere}"


def _polygons(geometry) -> list:
    """The non-empty polygons of any geometry (collections of collections included)."""
    found, parts = [], [geometry]
    while parts:
        part = parts.pop()
        if part.geom_type == "Polygon" and not part.is_empty:
            found.append(part)
        elif hasattr(part, "geoms"):
            parts.extend(part.geoms)
    return found


def _imagery(side: dict | None) -> str:
    if not side or not side.get("source"):
        return "not recorded"
    dates = " to ".join(d for d in (side.get("start"), side.get("end")) if d) or "dates unknown"
    return f"{side['source']}, {dates}"


class Layout:
    """One dossier being drawn: the document, its facts and its pictures."""

    def __init__(self, facts: dict, images: dict[str, bytes], context_shapes: list[dict]):
        self.facts, self.images, self.context_shapes = facts, images, context_shapes
        pdf = _Document(orientation="P", unit="mm", format="A4")
        pdf.add_font(FAMILY, "", FONTS / "DejaVuSans.ttf")
        pdf.add_font(FAMILY, "B", FONTS / "DejaVuSans-Bold.ttf")
        pdf.set_margins(15, 15, 15)
        pdf.set_auto_page_break(True, margin=16)
        site = facts["site"]
        made = facts["dossier"]["made_at"]
        pdf.footer_text = f"Site {site['id']} dossier, made {made[:16].replace('T', ' ')} UTC"
        pdf.set_title(f"Site {site['id']}: dossier")
        pdf.set_subject("Mining site: place, area, onset, imagery, verdicts, field reports, context")
        pdf.set_creator(facts["dossier"]["software"])
        pdf.set_lang("en")
        pdf.set_creation_date(datetime.fromisoformat(made))
        self.pdf = pdf

    # ----------------------------------------------------------------- text helpers

    def font(self, size: float = 9, bold: bool = False) -> None:
        self.pdf.set_font(FAMILY, "B" if bold else "", size)

    def heading(self, text: str, need: float = 30) -> None:
        """A numbered section's title, on a new page unless `need` mm fit below it."""
        pdf = self.pdf
        if pdf.will_page_break(need):
            pdf.add_page()
        pdf.ln(3)
        pdf.start_section(text)
        self.font(13, bold=True)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(180)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + WIDTH, pdf.get_y())
        pdf.ln(1.5)
        self.font()

    def para(self, text: str, size: float = 9, bold: bool = False, height: float = 4.4) -> None:
        self.font(size, bold)
        self.pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT", align="L")
        self.font()

    def table(self, rows: list[list[str]], widths: tuple, size: float = 8) -> None:
        self.font(size)
        self.pdf.set_fill_color(255)          # cells take the current fill: a drawing's colour
        self.pdf.set_draw_color(150)
        with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=size * 0.5,
                            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
                            padding=0.8) as table:
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(str(value))
        self.font()
        self.pdf.ln(1)

    # --------------------------------------------------------------------- sections

    def title(self) -> None:
        pdf, facts = self.pdf, self.facts
        site = facts["site"]
        pdf.add_page()
        self.font(20, bold=True)
        pdf.multi_cell(0, 10, f"Site {site['id']}: dossier", new_x="LMARGIN", new_y="NEXT")
        seen = (f"seen {site['first_period']} to {site['last_period']}" if site["first_period"]
                else "no dated detection")
        self.para(f"Status: {STATUS_WORDS.get(site['status'], site['status'])} · "
                  f"{_number(site['area_ha'])} ha in all · {seen} · {site['detections']} "
                  f"detection{'s' if site['detections'] != 1 else ''}", size=11, bold=True, height=6)
        names = ("Reviewers and reporters are named." if facts["dossier"]["names"] == "shown" else
                 "Reviewers and reporters are not named: each is 'reviewer 1', 'reporter 1' and "
                 "so on, the same person under the same number throughout.")
        self.para(f"Made {facts['dossier']['made_at'].replace('T', ' ')} with "
                  f"{facts['dossier']['software']} from review database "
                  f"{facts['dossier']['database'][:12]}. {names} A JSON file of the same name "
                  "beside this PDF holds the same facts, with every verdict's proof of inclusion "
                  "in the signed verdict log (see 'Checking this dossier').", size=8)

    def place(self) -> None:
        where = self.facts["site"]["place"]
        self.heading("1. Place")
        utm = where["utm"]
        west, south, east, north = where["bbox"]
        self.table([["", "Longitude, latitude", "Also written"],
                    ["Centre", f"{where['lon']:.6f}, {where['lat']:.6f}",
                     f"{_dms(where['lat'], 'N', 'S')} {_dms(where['lon'], 'E', 'W')}"],
                    ["UTM", f"zone {utm['zone']} ({utm['crs']})",
                     f"E {utm['easting']:,.1f} m, N {utm['northing']:,.1f} m"],
                    ["Box", f"W {west:.6f}, S {south:.6f}", f"E {east:.6f}, N {north:.6f}"]],
                   (18, 60, 102))
        self.map()

    def map(self) -> None:
        """The footprints of every period, the site's outline and the context polygons
        around them, in the site's UTM zone, with a scale bar."""
        pdf, facts = self.pdf, self.facts
        where = facts["site"]["place"]
        to_utm = Transformer.from_crs("EPSG:4326", where["utm"]["crs"], always_xy=True)

        def project(geometry):
            return shapely.transform(geometry, lambda xy: np.column_stack(
                to_utm.transform(xy[:, 0], xy[:, 1])))

        outline = project(shapely.geometry.shape(where["footprint"]))
        minx, miny, maxx, maxy = outline.bounds
        span = max(maxx - minx, maxy - miny, 200.0) * 1.5
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        frame_w, frame_h = WIDTH, 100.0
        scale = min(frame_w / span, frame_h / span)              # mm per metre
        if pdf.will_page_break(frame_h + 14):
            pdf.add_page()
        x0, y0 = pdf.l_margin, pdf.get_y() + 1

        def page_xy(x, y):
            return x0 + frame_w / 2 + (x - cx) * scale, y0 + frame_h / 2 - (y - cy) * scale

        half_w, half_h = frame_w / 2 / scale, frame_h / 2 / scale
        extent = shapely.box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)

        def draw(geometry, style: str, holes: bool = False) -> None:
            for polygon in _polygons(geometry.intersection(extent)):
                pdf.polygon([page_xy(x, y) for x, y in polygon.exterior.coords], style=style)
                if holes:                     # a hole in a territory shows the white page
                    with pdf.local_context(fill_color=(255, 255, 255)):
                        for ring in polygon.interiors:
                            pdf.polygon([page_xy(x, y) for x, y in ring.coords], style=style)

        pdf.set_line_width(0.2)
        pdf.set_draw_color(120)
        pdf.rect(x0, y0, frame_w, frame_h)
        labelled = []
        for shape in self.context_shapes:
            pdf.set_fill_color(*CONTEXT_COLOUR)
            pdf.set_draw_color(200, 160, 0)
            geometry = project(shape["geometry"]).intersection(extent)
            draw(geometry, "DF", holes=True)
            if not geometry.is_empty:
                labelled.append((shape, geometry.representative_point()))
        colours = {p["period"]: PERIOD_COLOURS[i % len(PERIOD_COLOURS)]
                   for i, p in enumerate(facts["periods"])}
        with pdf.local_context(fill_opacity=0.45):
            for detection in facts["detections"]:
                colour = colours.get(detection["period"], (120, 120, 120))
                pdf.set_fill_color(*colour)
                pdf.set_draw_color(*colour)
                draw(project(shapely.geometry.shape(detection["footprint"])), "DF")
        pdf.set_draw_color(0)
        pdf.set_line_width(0.5)
        draw(outline, "D")
        pdf.set_line_width(0.2)
        self.font(6.5)
        for shape, point in labelled:
            pdf.set_text_color(120, 90, 0)
            px, py = page_xy(point.x, point.y)
            pdf.text(px, py, f"{shape['layer']}: {shape['value'] or ''}")
        pdf.set_text_color(0)
        # scale bar: the roundest length near a fifth of the frame
        target = frame_w / 5 / scale
        bar = max(v for v in (10 ** math.floor(math.log10(target)) * k for k in (1, 2, 5)) if v <= target)
        bx, by = x0 + 4, y0 + frame_h - 5
        pdf.set_fill_color(0)
        pdf.rect(bx, by, bar * scale, 1.2, style="F")
        pdf.text(bx, by - 1, f"{bar:,.0f} m" if bar < 1000 else f"{bar / 1000:g} km")
        north = f"↑ N (grid north, UTM {where['utm']['zone']})"
        pdf.text(x0 + frame_w - pdf.get_string_width(north) - 2, y0 + 6, north)
        to_lonlat = Transformer.from_crs(where["utm"]["crs"], "EPSG:4326", always_xy=True)
        lon_w, lat_n = to_lonlat.transform(cx - half_w, cy + half_h)
        lon_e, lat_s = to_lonlat.transform(cx + half_w, cy - half_h)
        pdf.text(x0 + 1, y0 + 3, f"{lat_n:.5f}, {lon_w:.5f}")
        corner = f"{lat_s:.5f}, {lon_e:.5f}"
        pdf.text(x0 + frame_w - pdf.get_string_width(corner) - 1, y0 + frame_h - 1.5, corner)
        pdf.set_y(y0 + frame_h + 1.5)
        legend = ["Footprints by period: " + ", ".join(
            f"{p['period']} ({['red', 'orange', 'green', 'blue', 'purple', 'brown', 'teal', 'pink'][i % 8]})"
            for i, p in enumerate(facts["periods"])) + "; the site's outline in black"]
        if labelled:
            legend.append("context polygons in yellow, named by layer and value")
        self.para("; ".join(legend) + ". No basemap: the drawing is the stored geometry itself.", size=7)

    def periods(self) -> None:
        self.heading("2. Area per period")
        rows = [["Period", "Dates of its detections", "State", "Detections", "Area (ha)",
                 "Cumulative (ha)"]]
        for p in self.facts["periods"]:
            rows.append([p["period"], f"{p['start'] or '?'} to {p['end'] or '?'}", p["state"],
                         str(p["detections"]), _number(p["area_ha"]), _number(p["area_ha_cumulative"])])
        self.table(rows, (22, 48, 24, 22, 30, 34))
        self.para("A period's area is the union of its footprints, counted once, in an "
                  "equal-area projection (EPSG:6933).", size=7)

    def onset(self) -> None:
        onset = self.facts["onset"]
        self.heading("3. Onset", need=110)
        self.para(onset["words"] or "")
        if onset["month"]:
            self.para(f"Onset month: {onset['month']}. Last clear observation before: "
                      f"{onset['last_before'] or '–'}; first after: {onset['first_after'] or '–'}.",
                      bold=True)
        # What the onset rule reads: clear acquisitions (a stored composite has no month).
        observations = [o for o in onset["series"]["observations"]
                        if o["clear"] and (o.get("kind") or "acquisition") == "acquisition"]
        if not onset["series"]["observations"]:
            self.para(f"No time series stored: run `python -m review timeseries {self.facts['site']['id']}` "
                      "to fetch one, then make the dossier again.")
            return
        if not observations:
            self.para(f"The stored time series has {len(onset['series']['observations'])} observations, "
                      "none of them clear over the footprint: there is nothing to chart.")
            return
        self.chart(observations)

    def chart(self, observations: list[dict]) -> None:
        """NDVI of the footprint against its ring, and the footprint's bare-soil index, per
        clear observation; the detection periods shaded, the onset bracket marked."""
        pdf, facts, onset = self.pdf, self.facts, self.facts["onset"]
        frame_w, frame_h = WIDTH - 12, 62.0
        if pdf.will_page_break(frame_h + 20):
            pdf.add_page()
        x0, y0 = pdf.l_margin + 10, pdf.get_y() + 6
        days = [date.fromisoformat(o["acquired"][:10]).toordinal() for o in observations]
        spans = [(date.fromisoformat(p["start"]).toordinal(), date.fromisoformat(p["end"]).toordinal(),
                  p["period"]) for p in facts["periods"] if p["start"] and p["end"]]
        first = min(days + [s for s, _, _ in spans])
        last = max(days + [e for _, e, _ in spans])
        last = max(last, first + 30)
        values = [v for o in observations for v in (o.get("ndvi"), o.get("ring_ndvi"), o.get("bsi"))
                  if v is not None]
        low = max(-1.0, math.floor(min(values + [0.0]) * 5) / 5)
        high = min(1.0, math.ceil(max(values + [0.8]) * 5) / 5)

        def xy(day: float, value: float) -> tuple[float, float]:
            return (x0 + (day - first) / (last - first) * frame_w,
                    y0 + frame_h - (value - low) / (high - low) * frame_h)

        self.font(6.5)
        pdf.set_fill_color(238, 238, 238)
        for start, end, label in spans:
            left, _ = xy(max(start, first), high)
            right, _ = xy(min(end, last), high)
            pdf.rect(left, y0, right - left, frame_h, style="F")
            pdf.set_text_color(110)
            pdf.text(left + 0.5, y0 + frame_h - 1, f"period {label}")
        if onset["last_before"] and onset["first_after"]:
            left, _ = xy(date.fromisoformat(onset["last_before"][:10]).toordinal(), high)
            right, _ = xy(date.fromisoformat(onset["first_after"][:10]).toordinal(), high)
            with pdf.local_context(fill_opacity=0.25):
                pdf.set_fill_color(215, 48, 31)
                pdf.rect(left, y0, max(right - left, 0.4), frame_h, style="F")
            pdf.set_text_color(180, 30, 20)
            pdf.text(left, y0 - 1, f"onset {onset['month'] or ''}".strip())
        pdf.set_text_color(0)
        pdf.set_draw_color(200)
        pdf.set_line_width(0.1)
        tick = low
        while tick <= high + 1e-9:
            _, y = xy(first, tick)
            pdf.line(x0, y, x0 + frame_w, y)
            pdf.text(x0 - 8, y + 1, f"{tick:+.1f}")
            tick += 0.2
        for year in range(date.fromordinal(first).year + 1, date.fromordinal(last).year + 1):
            x, _ = xy(date(year, 1, 1).toordinal(), low)
            pdf.line(x, y0, x, y0 + frame_h)
            pdf.text(x - 3, y0 + frame_h + 3.5, str(year))
        pdf.set_draw_color(90)
        pdf.rect(x0, y0, frame_w, frame_h)
        series = (("ndvi", (35, 120, 50), "NDVI, footprint"), ("ring_ndvi", (140, 200, 120), "NDVI, ring around it"),
                  ("bsi", (150, 90, 30), "bare-soil index (BSI), footprint"))
        for name, colour, _ in series:
            points = [xy(d, o[name]) for d, o in sorted(zip(days, observations)) if o.get(name) is not None]
            pdf.set_draw_color(*colour)
            pdf.set_fill_color(*colour)
            pdf.set_line_width(0.3)
            if len(points) > 1:
                pdf.polyline(points)
            for x, y in points:
                pdf.circle(x, y, 0.5, style="F")
        for detection in facts["detections"]:
            for verdict in detection["verdicts"]:
                day = date.fromisoformat(verdict["time"][:10]).toordinal()
                if first <= day <= last:
                    x, _ = xy(day, high)
                    pdf.set_fill_color(*VERDICT_COLOURS.get(verdict["verdict"], (0, 0, 0)))
                    pdf.polygon([(x - 1, y0 + frame_h + 5.5), (x + 1, y0 + frame_h + 5.5),
                                 (x, y0 + frame_h + 4)], style="F")
        pdf.set_line_width(0.2)
        pdf.set_y(y0 + frame_h + 7)
        self.para("Lines: " + "; ".join(f"{label} ({word})" for (_, _, label), word in
                                        zip(series, ("dark green", "light green", "brown")))
                  + f". One dot per clear acquisition ({len(observations)}). Grey: the detection "
                  "periods. Red band: the onset bracket. Triangles under the axis: verdict dates "
                  "(red verified, blue false positive, orange unsure).", size=7)

    def imagery(self) -> None:
        self.heading("4. Imagery: before and after, per period", need=120)
        pdf = self.pdf
        side = (WIDTH - 4) / 2
        for shown in self.facts["imagery"]:
            if shown.get("after") and pdf.will_page_break(side + 30):
                pdf.add_page()                 # the period's title stays with its pictures
            self.para(f"Period {shown['period']}" + (f", detection {shown['detection_id']}"
                                                      if shown.get("detection_id") else ""), bold=True)
            if not shown.get("after"):
                self.para(shown.get("note") or "No imagery of this period could be shown.", size=8)
                continue
            y = pdf.get_y()
            for index, name in enumerate(("before", "after")):
                picture = shown.get(name)
                x = pdf.l_margin + index * (side + 4)
                if picture is None:
                    pdf.set_xy(x, y + side / 2)
                    self.font(8)
                    pdf.multi_cell(side, 4, "No earlier imagery covers this place.", align="C")
                    continue
                pdf.image(io.BytesIO(self.images[picture["sha256"]]), x=x, y=y, w=side, h=side,
                          keep_aspect_ratio=True, alt_text=f"{name}: {_imagery(picture)}")
            pdf.set_xy(pdf.l_margin, y + side + 1)
            for name in ("before", "after"):
                picture = shown.get(name)
                if picture:
                    self.para(f"{name.capitalize()}: {_imagery(picture)} (JPEG SHA-256 "
                              f"{picture['sha256'][:16]}…)", size=7)
            if shown.get("note"):
                self.para(shown["note"], size=7)
            pdf.ln(2)
        self.para("The detection's footprint is outlined in yellow. Chips are the ones prepared for "
                  "review where there are any (the best source first: stored scenes, Sentinel-2 "
                  "composites, Esri Wayback), else rendered from the stored scenes.", size=7)

    def detections(self) -> None:
        self.heading("5. Detections and verdicts")
        for d in self.facts["detections"]:
            self.para(f"Detection {d['id']} · period {d['period'] or 'none'} · "
                      f"{STATUS_WORDS.get(d['status'], d['status'])}", bold=True)
            self.para(f"Source {d['source']} ({d['external_id']}); model {d['model'] or 'not recorded'}, "
                      f"threshold {_number(d['threshold'], 2)}, score {_number(d['score'], 3)}; "
                      f"{_number(d['area_ha'])} ha ({d['area_source'] or 'footprint'}); dates "
                      f"{d['period_start'] or '?'} to {d['period_end'] or '?'}; centre "
                      f"{d['lat']:.5f}, {d['lon']:.5f}.", size=8)
            if d["verdicts_withheld"]:
                self.para(f"Waiting for a second opinion: its {d['verdicts_withheld']} verdict"
                          f"{'s are' if d['verdicts_withheld'] != 1 else ' is'} not shown until "
                          "someone else has judged it, so the second look stays blind.", size=8)
                continue
            if not d["verdicts"]:
                self.para("Not reviewed yet.", size=8)
                continue
            rows = [["Verdict", "When (UTC)", "Who", "Decision", "Imagery seen", "Note"]]
            for v in d["verdicts"]:
                decision = VERDICTS.get(v["verdict"], STATUS_WORDS.get(v["verdict"], v["verdict"]))
                if v["reason"]:
                    decision += f" ({REASONS.get(v['reason'], v['reason'])})"
                if v["final"]:
                    decision += "; final (an editor's decision)"
                note = v["note"] or ""
                if v["override"]:
                    note = (note + "; " if note else "") + v["override"]
                rows.append([f"#{v['id']}", v["time"][:19].replace("T", " "), v["reviewer"], decision,
                             f"before: {_imagery(v['before'])}; after: {_imagery(v['after'])}", note])
            self.table(rows, (13, 25, 20, 30, 60, 32), size=7)

    def agreement(self) -> None:
        agreement = self.facts["agreement"]
        self.heading("6. Agreement between reviewers")
        site = agreement["site"]
        mode = {"off": "off (one verdict decides)", "verified": "on for 'verified' verdicts",
                "all": "on for 'verified' and 'false positive' verdicts"}[agreement["second_opinion_mode"]]
        self.para(f"Second opinions: {mode}. On this site, {site['detections_judged_twice']} "
                  f"detection{'s were' if site['detections_judged_twice'] != 1 else ' was'} judged by "
                  f"two reviewers; they agreed on {site['alike']}.")
        for row in site["detections"]:
            self.para(f"Detection {row['detection_id']}: first {VERDICTS.get(row['first'], row['first'])}, "
                      f"second {VERDICTS.get(row['second'], row['second'])}"
                      f" ({'agree' if row['alike'] else 'disagree'}).", size=8)
        project = agreement["project"]
        if project["detections"]:
            self.para(f"Across the whole project, {project['detections']:,} detections were judged by "
                      f"two reviewers: {_number(project['percent_agreement'], 1)}% agreement, Gwet's "
                      f"AC1 {_number(project['ac1'])} (95% interval {_number(project['ac1_low'])} to "
                      f"{_number(project['ac1_high'])}), Fleiss' kappa {_number(project['kappa'])}."
                      + (f" Note: {project['too_few']}." if project["too_few"] else "")
                      + (f" {project['prevalence_note']}." if project["prevalence_note"] else ""), size=8)

    def field_reports(self) -> None:
        pdf = self.pdf
        found = self.facts["field_reports"]
        self.heading("7. Field reports")
        if not found:
            self.para("No field report on this site.")
            return
        for report in found:
            where = (f"at {report['lat']:.5f}, {report['lon']:.5f} ({report['position_from'] or 'given'}"
                     + (f", {report['metres_from_site']:,.0f} m from the site's footprint"
                        if report["metres_from_site"] is not None else "") + ")"
                     if report["lat"] is not None else "no position")
            self.para(f"Report {report['id']} by {report['reporter']}, seen {report['seen'] or 'date not given'} "
                      f"(filed {report['reported_at'][:10]}), {where}"
                      + (f", about detection {report['detection_id']}" if report["detection_id"] else ""),
                      bold=True, size=8.5)
            self.para(report["text"])
            for photo in report["photos"]:
                exif = ", ".join(part for part in (
                    f"taken {photo['exif_time'].replace('T', ' ')}" if photo["exif_time"] else "no capture time in EXIF",
                    (f"GPS {photo['exif_lat']:.5f}, {photo['exif_lon']:.5f}"
                     + (f" ({photo['exif_metres_from_site']:,.0f} m from the footprint)"
                        if photo["exif_metres_from_site"] is not None else ""))
                    if photo["exif_lat"] is not None else "no GPS position in EXIF") if part)
                caption = f"Photo {photo['sha256'][:16]}… ({photo['width']}×{photo['height']} {photo['format']}): {exif}."
                embedded = photo.get("embedded_sha256")
                if embedded:
                    height = 60.0
                    if pdf.will_page_break(height + 10):
                        pdf.add_page()
                    y = pdf.get_y()
                    info = pdf.image(io.BytesIO(self.images[embedded]), x=pdf.l_margin, y=y, h=height,
                                     alt_text=caption)
                    pdf.set_y(y + float(info.rendered_height) + 1)
                else:
                    caption += " " + (photo.get("missing") or "The photo file is not here.")
                self.para(caption, size=7)
            pdf.ln(2)

    def context(self) -> None:
        context = self.facts["context"]
        self.heading("8. Context: what the site overlaps")
        if not context["site"]:
            self.para("The site overlaps no polygon of the context layers in the database"
                      + (f" ({', '.join(layer['name'] for layer in context['layers'])})."
                         if context["layers"] else " (none were added)."))
            return
        rows = [["Layer", "Polygon (field value)", "Overlap (ha)"]]
        rows += [[r["layer"], r["value"] or "–", _number(r["overlap_ha"])] for r in context["site"]]
        self.table(rows, (50, 95, 35))
        if context["detections"]:
            self.para("By detection:", size=8, bold=True)
            rows = [["Detection", "Layer", "Polygon (field value)", "Overlap (ha)"]]
            rows += [[str(r["detection_id"]), r["layer"], r["value"] or "–", _number(r["overlap_ha"])]
                     for r in context["detections"]]
            self.table(rows, (22, 45, 80, 33), size=7)
        layers = "; ".join(f"{layer['name']}: {layer['source_file'] or 'file not recorded'} "
                           f"({layer['features']} polygons, {layer['source_crs'] or 'CRS not recorded'}, "
                           f"SHA-256 {(layer['sha256'] or '')[:16]}…)" for layer in context["layers"])
        self.para(f"Layers: {layers}. Hectares measured in EPSG:6933.", size=7)

    def models(self) -> None:
        models = self.facts["models"]
        self.heading("9. Models and thresholds")
        rows = [["Model", "Threshold", "Source", "Detections", "Scores"]]
        rows += [[g["model"] or "not recorded", _number(g["threshold"]), g["source"], str(g["detections"]),
                  f"{_number(g['score_min'], 3)} to {_number(g['score_max'], 3)}"] for g in models["by_model"]]
        self.table(rows, (45, 22, 55, 22, 36))
        for run in models["runs"]:
            self.para(f"Run {run['id']}: model {run['model_id']} (file SHA-256 {run['model_sha256'] or 'not recorded'}), "
                      f"thresholds raw {_number(run['t_raw'])}, main {_number(run['t_main'])}, isolated "
                      f"{_number(run['t_iso'])}; on {run['scene'] or 'a tile'} ({run['product'] or 'GeoTIFF'}, "
                      f"{run['period_start'] or '?'} to {run['period_end'] or '?'}, SHA-256 "
                      f"{(run['scene_sha256'] or '')[:16]}…); {run['software'] or ''} {run['started_at'] or ''}.", size=7)
        for item in models["imports"]:
            self.para(f"Imported from {item['path']} (SHA-256 {item['sha256']}), {item['features']} features, "
                      f"vintage {item['vintage'] or 'not given'}, on {item['imported_at'][:10]}.", size=7)

    def method(self) -> None:
        self.heading("10. Method, in plain words")
        for paragraph in self.facts["method"]:
            self.para(paragraph)
            self.pdf.ln(1)

    def checking(self) -> None:
        log = self.facts["verdict_log"]
        shown = self.facts["dossier"]["names"] == "shown"
        self.heading("11. Checking this dossier")
        self.para(f"The verdict log was signed when this dossier was made: {log['tree_size']:,} verdicts, "
                  f"root hash {log['root_hash']}. The signed checkpoint (a C2SP signed note):")
        self.para(log["checkpoint"], size=7)
        self.para(f"Verifier key: {log['key']}", size=7)
        self.para("Compare the key with the one the publisher published. With the JSON twin, `python -m "
                  "review verify-dossier FILE.json --key KEY` checks the signature and every proof below. "
                  + ("Each verdict's log entry is in the JSON: its fields must say what this PDF says, "
                     "and its leaf hash (SHA-256 of 0x00 and the entry) is the one below."
                     if shown else "Names are withheld, so each verdict is given by its leaf hash (SHA-256 "
                     "of 0x00 and its log entry): the proof shows the entry is in the signed log; the "
                     "entry itself, with the name, can be disclosed by the publisher and checked against "
                     "the hash."), size=8)
        rows = [["Verdict", "Log index", "Leaf hash", "Inclusion proof (RFC 9162), from the leaf up"]]
        for d in self.facts["detections"]:
            for v in d["verdicts"]:
                rows.append([f"#{v['id']}", str(v["log_index"]), v["log_leaf_hash"],
                             " ".join(v["inclusion_proof"]) or "(a tree of one)"])
        if len(rows) > 1:
            self.table(rows, (14, 14, 62, 90), size=5.5)


def render(facts: dict, images: dict[str, bytes], context_shapes: list[dict] | None = None) -> bytes:
    """The dossier as PDF bytes: the facts, the pictures they name (sha256 -> JPEG bytes) and
    the context polygons near the site to draw on its map ({layer, value, geometry})."""
    layout = Layout(facts, images, context_shapes or [])
    for section in (layout.title, layout.place, layout.periods, layout.onset, layout.imagery,
                    layout.detections, layout.agreement, layout.field_reports, layout.context,
                    layout.models, layout.method, layout.checking):
        section()
    return bytes(layout.pdf.output())
