"""Field reports: what people on the ground saw, with photos (review.publishing.reports).

File a report (text, photos, date seen) about a detection, a site or a position; the GPS
position and capture time in each photo's EXIF are shown beside it before it is saved,
with where the report would be attached. Reports are listed with their thumbnails, leads
(attached to nothing) on their own. Everything people typed is shown as text (st.text),
never as Markdown or HTML. `thumbnails_for` shows a detection's field photos on the
Review page; `site_reports` a site's reports on the Sites page.
"""
from __future__ import annotations

from datetime import date

import streamlit as st

from ..errors import ReviewError
from ..publishing import reports
from . import common

ABOUT = {"position": "A position: the nearest detection or site within 1 km, else a lead",
         "detection": "A detection (by id)", "site": "A site (by id)"}
PHOTO_TYPES = ["jpg", "jpeg", "png", "heic", "heif"]
LISTED = 50


@st.cache_data(max_entries=500, show_spinner=False)
def _thumbnail(sha256: str, size: int) -> bytes:
    # Photos are stored by checksum and never change, so a thumbnail can be kept.
    return reports.thumbnail_png(sha256, size)


def _photo_images(photos: list[dict], size: int, columns: int = 3) -> None:
    shown = st.columns(columns)
    for index, photo in enumerate(photos):
        try:
            picture = _thumbnail(photo["sha256"], size)
        except ReviewError as exc:
            shown[index % columns].caption(str(exc))
            continue
        taken = f", taken {photo['taken_at'][:16].replace('T', ' ')}" if photo.get("taken_at") else ""
        gps = (f", GPS {photo['lat']:.5f}, {photo['lon']:.5f}" if photo.get("lon") is not None else "")
        shown[index % columns].image(picture, caption=f"sha256 {photo['sha256'][:12]}…{taken}{gps}")


def thumbnails_for(db, detection_id: int, size: int = 160) -> None:
    """The field photos reported on a detection, as thumbnails (nothing when there are none)."""
    photos = reports.photos_for(db, detection_id)
    if not photos:
        return
    st.caption(f"Field photos ({len(photos)})")
    columns = st.columns(min(3, len(photos)))
    for index, photo in enumerate(photos[:6]):
        try:
            picture = _thumbnail(photo["sha256"], size)
        except ReviewError as exc:
            columns[index % 3].caption(str(exc))
            continue
        columns[index % 3].image(picture, caption=f"Field photo · report #{photo['report_id']}"
                                 + (f" · seen {photo['seen']}" if photo["seen"] else ""))


def site_reports(db, site_id: int) -> None:
    """The reports filed on a site, on a site merged into it, or on any of its detections."""
    found = reports.for_site(db, site_id)
    if not found:
        return
    st.markdown(f"**Field reports ({len(found)})**")
    for row in sorted(found, key=lambda r: r["id"], reverse=True):
        _report(row)


def _attached(row: dict) -> str:
    parts = []
    if row["detection_id"] is not None:
        parts.append(f"detection #{row['detection_id']}")
    if row["site_id"] is not None:
        merged = row.get("merged_into")
        parts.append(f"site #{row['site_id']}" + (f" (merged into site #{merged})" if merged else ""))
    where = " and ".join(parts) or "nothing yet (a lead)"
    distance = f", {row['distance_m']:,.0f} m away" if row.get("distance_m") is not None else ""
    position = (f" · position {row['lat']:.5f}, {row['lon']:.5f} ({row['position_from']})"
                if row.get("lon") is not None else "")
    return f"about {where}{distance}{position}"


def _report(row: dict) -> None:
    with st.container(border=True):
        st.caption(f"Report #{row['id']} · seen {row['seen'] or 'date not given'} · filed "
                   f"{row['created_at'][:16].replace('T', ' ')} · {_attached(row)}")
        st.text(f"Reporter: {row['reporter']}")
        st.text(row["text"])
        if row["photos"]:
            _photo_images(row["photos"], 200)


# ------------------------------------------------------------------------------- page


def page() -> None:
    db = common.page("Field reports", action="report")
    if db is None:
        return
    st.caption("What someone on the ground saw: a text, photos, the date. A report is about a "
               "detection, a site, or a position; a position (given, or from a photo's GPS) "
               "attaches it to the nearest detection or site within 1 km, else it is kept as a "
               "lead to look into.")
    if "fr_flash" in st.session_state:
        st.success(st.session_state.pop("fr_flash"))
    reporter = common.reviewer_name(db)
    if reporter:
        _new_report(db, reporter)
    else:
        st.info("Enter your name in the sidebar to file a report.")
    _listing(db)


def _keys() -> int:
    """A counter in the new report's widget keys: a saved report starts a blank form."""
    return st.session_state.setdefault("fr_form", 0)


def _new_report(db, reporter: str) -> None:
    n = _keys()
    st.subheader("New report")
    left, right = st.columns([3, 2])
    with left:
        st.text(f"Reporter: {reporter}")
        text = st.text_area("What did you see?", key=f"fr_text_{n}", max_chars=reports.MAX_TEXT_CHARS)
        seen = st.date_input("Date seen", value=None, max_value=date.today(), key=f"fr_seen_{n}",
                             format="YYYY-MM-DD")
        about = st.radio("About", list(ABOUT), format_func=ABOUT.get, key=f"fr_about_{n}")
        detection_id = site_id = lon = lat = None
        if about == "detection":
            detection_id = st.number_input("Detection id", min_value=1, step=1, value=None,
                                           key=f"fr_detection_{n}")
        elif about == "site":
            site_id = st.number_input("Site id", min_value=1, step=1, value=None, key=f"fr_site_{n}")
        else:
            columns = st.columns(2)
            lon = columns[0].number_input("Longitude", min_value=-180.0, max_value=180.0, value=None,
                                          format="%.6f", key=f"fr_lon_{n}")
            lat = columns[1].number_input("Latitude", min_value=-90.0, max_value=90.0, value=None,
                                          format="%.6f", key=f"fr_lat_{n}")
            st.caption("Leave both empty to use the GPS position of a photo.")
        uploads = st.file_uploader("Photos (JPEG, PNG or HEIC; at most 25 MB each)", type=PHOTO_TYPES,
                                   accept_multiple_files=True, key=f"fr_photos_{n}")
    with right:
        checked = _preview(uploads or [])
        if about == "position":
            _where_it_goes(db, lon, lat, checked)
    if st.button("Save report", type="primary", key="fr_save"):
        try:
            common.require(db, "report")
            stored = reports.add(
                db, text, reporter,
                detection_id=None if detection_id is None else int(detection_id),
                site_id=None if site_id is None else int(site_id), lon=lon, lat=lat, seen=seen,
                photos=[(u.name, u.getvalue()) for u in uploads or []], via="dashboard")
        except ReviewError as exc:
            st.error(str(exc))
            return
        where = _attached({**stored, "seen": None, "created_at": ""})
        st.session_state["fr_flash"] = (f"Report #{stored['id']} saved with "
                                        f"{len(stored['photos'])} photo(s), {where}.")
        st.session_state["fr_form"] = n + 1
        st.rerun()


def _preview(uploads) -> list[reports.Photo]:
    """Each uploaded photo, checked, with what its EXIF says; refusals shown as messages."""
    checked = []
    for upload in uploads:
        try:
            photo = reports.read_photo((upload.name, upload.getvalue()))
            picture = reports.preview_png(photo)
        except ReviewError as exc:
            st.error(str(exc))
            continue
        checked.append(photo)
        st.image(picture, caption=upload.name)
        gps = (f"GPS {photo.lat:.6f}, {photo.lon:.6f}" if photo.lon is not None
               else "no GPS position in the photo")
        taken = f"taken {photo.taken_at.replace('T', ' ')}" if photo.taken_at else "no capture time"
        st.caption(f"{gps} · {taken} · {photo.width}×{photo.height} {photo.format} · "
                   f"sha256 {photo.sha256[:12]}…")
    return checked


def _where_it_goes(db, lon, lat, checked: list[reports.Photo]) -> None:
    source = "the position given"
    if lon is None or lat is None:
        located = next((p for p in checked if p.lon is not None), None)
        if located is None:
            st.caption("Give a position, or add a photo with a GPS position.")
            return
        lon, lat, source = located.lon, located.lat, "the photo's GPS"
    try:
        near = reports.attachment(db, lon, lat)
    except ReviewError as exc:
        st.error(str(exc))
        return
    parts = [f"detection #{near['detection'][0]} ({near['detection'][1]:,.0f} m)"
             if near["detection"] else None,
             f"site #{near['site'][0]} ({near['site'][1]:,.0f} m)" if near["site"] else None]
    found = " and ".join(p for p in parts if p)
    st.info(f"From {source} ({lat:.5f}, {lon:.5f}) the report will be attached to {found}."
            if found else f"Nothing lies within 1 km of {source} ({lat:.5f}, {lon:.5f}): the "
            "report will be kept as a lead.")


def _listing(db) -> None:
    everything = reports.listing(db)
    leads = [r for r in everything if r["detection_id"] is None and r["site_id"] is None]
    st.subheader(f"Reports ({len(everything)})")
    if not everything:
        st.caption("No field reports yet.")
        return
    all_tab, lead_tab = st.tabs([f"All reports ({len(everything)})", f"Leads ({len(leads)})"])
    with all_tab:
        if len(everything) > LISTED:
            st.caption(f"The {LISTED} newest are shown.")
        for row in reversed(everything[-LISTED:]):
            _report(row)
    with lead_tab:
        st.caption("Reports attached to no detection and no site: places to look at next.")
        for row in reversed(leads[-LISTED:]):
            _report(row)
