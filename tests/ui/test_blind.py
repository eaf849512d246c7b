"""Blind means blind: a second reviewer, signed in under second opinions, receives none of
the first reviewer's name or note on any page, in the very bytes that reach the browser."""
import re

import pytest

from review.analysis import sites
from review.judging import users, verdicts
from review.store import connect

from tests.conftest import add_detections, local_browser, needs_chromium

FIRST = "Anaximandra"
NOTE = "NOTE-XYZZY-17 ruled by the river"
# Each page, and text its last element carries once it has been drawn (so the capture waits
# for the whole page, however slow the machine).
PAGES = (("/", "Detections by source and status"), ("/Review?detection={id}", "Detection #{id}"),
         ("/Map", "every one drawn"), ("/Sites?site={site}", "Its detections and their verdicts"),
         ("/Sites", "Sites"), ("/Trends", "Detected area by review status"),
         ("/Export", "Evidence pack"), ("/Agreement", "Zeno"), ("/Field_reports", "Field reports"),
         ("/Models", "Models"))


def _idle(page):
    """The page's script run is over (after giving a new run the time to start)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(1000)
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000)


@needs_chromium
def test_a_second_reviewer_receives_no_trace_of_the_first_verdict(streamlit_server):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = streamlit_server
    db = connect(db_path)
    ids = add_detections(db, 4)
    sites.build(db)
    verdicts.set_second_opinion(db, "verified")
    waiting = ids[2]
    verdicts.record(db, waiting, FIRST, "verified", note=NOTE)
    verdicts.record(db, ids[0], "Yara", "false_positive", reason="riverbank", note="settled")
    verdicts.record(db, ids[0], "Zeno", "false_positive", reason="riverbank")
    assert db["detections"].get(waiting)["status"] == "needs_second_opinion"
    site = db.execute("select site_id from site_members where detection_id = ?", [waiting]).fetchone()[0]
    users.add(db, FIRST, "first password", role="editor")
    users.add(db, "bo", "bo's password", role="reviewer")

    received: list[bytes] = []

    def on_socket(socket):
        socket.on("framereceived", lambda payload: received.append(
            payload if isinstance(payload, bytes) else payload.encode()))

    def on_response(response):
        kind = response.headers.get("content-type", "")
        if response.ok and ("json" in kind or "text" in kind or "javascript" not in kind):
            try:
                received.append(response.body())
            except Exception:       # a redirect or a stream: no body to read
                pass

    with sync_playwright() as playwright:
        browser, page = local_browser(playwright)
        page.on("websocket", on_socket)
        page.on("response", on_response)
        page.goto(url + "/")
        page.get_by_label("User name").fill("bo")
        page.get_by_label("Password", exact=True).fill("bo's password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as bo (reviewer)")).to_be_visible()
        for _ in range(60):              # the session cookie is written by the page's next run
            if any(c["name"] == "review_session" and c["value"] for c in page.context.cookies()):
                break
            page.wait_for_timeout(500)
        leaks, total, seen_zeno = [], 0, False
        for path, marker in PAGES:
            received.clear()
            page.goto(url + path.format(id=waiting, site=site))
            _idle(page)
            marker = marker.format(id=waiting).encode()
            for _ in range(90):
                if marker in b"".join(received):
                    break
                page.wait_for_timeout(500)
            page.wait_for_timeout(1000)
            blob = b"".join(received)
            assert marker in blob, f"{path} was not drawn"
            total += len(blob)
            seen_zeno = seen_zeno or b"Zeno" in blob
            for secret in (FIRST.encode(), b"NOTE-XYZZY"):
                at = blob.find(secret)
                if at >= 0:
                    leaks.append((path, secret, blob[max(0, at - 80):at + 60]))
        assert total > 100_000                          # the pages did arrive
        assert seen_zeno                                # a settled detection's names are shown
        assert leaks == []

        # Once bo has decided, he may see the first look: the same capture now finds it.
        received.clear()
        page.goto(url + f"/Review?detection={waiting}")
        _idle(page)
        # The first visit, in a session now gone, still holds it: bo's own other tab.
        expect(page.get_by_text("Open in your other tab since")).to_be_visible()
        page.get_by_role("button", name="Take it here").click()
        _idle(page)
        page.locator('[data-testid="stElementContainer"][data-stale="false"]').get_by_role(
            "button", name="Verified").click()
        for _ in range(60):
            if db["verdicts"].count == 4:
                break
            page.wait_for_timeout(500)
        mine = db["verdicts"].get(4)
        assert (mine["reviewer"], mine["verdict"], mine["override"]) == ("bo", "verified", None)
        # No imagery was on screen here (none stored): his 'verified' confirms nothing yet.
        assert mine["after_source"] == "no imagery was shown"
        assert db["detections"].get(waiting)["status"] == "needs_second_opinion"
        received.clear()
        page.goto(url + f"/Review?detection={waiting}")
        _idle(page)
        page.wait_for_timeout(500)
        assert re.search(b"NOTE-XYZZY", b"".join(received))      # its history, now open to him
        browser.close()
