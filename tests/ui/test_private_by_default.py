"""Private by default: the README's launch listens on loopback only, and a visitor from
another machine, with no accounts, records and creates nothing."""
import socket
import tomllib
import urllib.request

import pytest

from review.store import connect

from tests.conftest import CHROMIUM, REPO, add_detections, needs_chromium, run_streamlit


def _outside_address() -> str | None:
    """This machine's address on its network (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))          # no packet is sent for UDP
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _reaches(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def test_the_config_binds_to_loopback():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_the_readme_launch_listens_on_loopback_only(tmp_path):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback to try from")
    server = run_streamlit(tmp_path, address=None)          # as the README runs it
    url, _ = next(server)
    try:
        port = url.rsplit(":", 1)[1]
        assert _reaches(url)
        assert not _reaches(f"http://{outside}:{port}")
    finally:
        server.close()


def _network_page(outside, port):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page()
    page.set_default_timeout(60_000)

    def this_server_only(route):
        if route.request.url.startswith((f"http://{outside}:{port}", f"ws://{outside}:{port}",
                                         "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", this_server_only)
    return playwright, browser, page


@needs_chromium
@pytest.mark.parametrize("allow", [False, True])
def test_a_network_visitor_without_accounts_records_nothing(tmp_path, allow):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback to visit from")
    from playwright.sync_api import expect

    db = connect(tmp_path / "review.db")
    add_detections(db, 3)
    extra = {"REVIEW_ALLOW_ANONYMOUS_NETWORK": "1"} if allow else {}
    server = run_streamlit(tmp_path, address="0.0.0.0", **extra)
    url, _ = next(server)
    port = url.rsplit(":", 1)[1]
    playwright, browser, page = _network_page(outside, port)
    try:
        base = f"http://{outside}:{port}"
        if not allow:
            for path in ("/", "/Review", "/Accounts", "/Export"):
                page.goto(base + path)
                expect(page.get_by_role("heading", name="An account is needed")).to_be_visible()
                expect(page.get_by_text("works only on the computer it runs on")).to_be_visible()
            assert page.get_by_role("button", name="Verified").count() == 0
            page.keyboard.press("v")
        else:
            page.goto(base + "/Accounts")
            expect(page.get_by_text("without an account")).to_be_visible()
            expect(page.get_by_text("Accounts is for admins")).to_be_visible()
            assert page.get_by_role("button", name="Add account").count() == 0
            page.goto(base + "/Review")
            expect(page.get_by_text("without an account")).to_be_visible()
        assert db["verdicts"].count == 0 and db["users"].count == 0
    finally:
        browser.close()
        playwright.stop()
        server.close()
