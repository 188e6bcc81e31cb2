"""The web console in real headless Chromium against the running pipeline (every service its own
process, as `make run`): sign in, receive a live alert from the footage, confirm it, run a
partial-plate search with a purpose and open the vehicle's timeline on the map. Screenshots of each
step are kept under test-artifacts/browser/<test>/."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.stack import DEMO_HOTLIST_NAME, DEMO_MANIFEST, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DEV_USER = "officer"
DEV_PASSWORD = "platewatch-dev"
DEV_OTP = "123456"
PURPOSE_CODE = "stolen-vehicle"
CASE_NUMBER = "CASE-2026-0042"

# True once the element's crop is shown from a blob: URL (fetched with the Authorization and purpose
# headers). Takes the element handle: playwright-only selectors (:text-is) do not work in querySelector.
CROP_SHOWN = (
    "el => { const img = el && el.querySelector('img.crop');"
    " return !!img && img.src.startsWith('blob:') && img.naturalWidth > 0; }"
)


def _api_status(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _sign_in(page: Any, base: str) -> str | None:
    """Sign in through the console; returns the bearer token it keeps (None on an API without login)."""
    page.goto(f"{base}/console/")
    page.wait_for_selector("#login-form")
    identity = _api_status(f"{base}/auth/me")[0] != 404
    page.fill("#login-username", DEV_USER)
    if identity:
        page.fill("#login-password", "wrong password")
        page.fill("#login-otp", DEV_OTP)
        page.click("#login-submit")
        page.wait_for_selector("#login-status.error")
        assert "refused" in page.inner_text("#login-status").lower()
        page.fill("#login-password", DEV_PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav:not([hidden])")
    page.wait_for_selector('#stream-status[data-state="open"]', timeout=30_000)
    token = page.evaluate("sessionStorage.getItem('platewatch.token')")
    assert bool(token) == identity, "the console keeps a bearer token exactly when the API has a login"
    return str(token) if token else None


def _give_purpose(page: Any) -> None:
    page.wait_for_selector("#purpose-dialog[open]")
    page.fill("#purpose-code", PURPOSE_CODE)
    page.fill("#case-number", CASE_NUMBER)
    page.click("#purpose-ok")
    page.wait_for_selector("#purpose-dialog:not([open])", state="attached")


def test_console_live_alert_confirm_search_and_timeline(
    stack_factory: Callable[..., Stack], triton_url: str, page: Any, artifacts: Path
) -> None:
    manifest = yaml.safe_load(DEMO_MANIFEST.read_text())
    plate = str(manifest["hotlist_plate"])
    stack = stack_factory(triton_url=triton_url, extra_env={"PLATEWATCH_LOOP_FILES": "false"})
    metrics = [f"http://127.0.0.1:{stack.ports.metrics[name]}/metrics" for name in ("capture", "normalizer")]
    stack.extra_env["PLATEWATCH_CONSOLE_METRICS_URLS"] = ",".join(metrics)
    stack.start_services(["storage", "hotlist", "normalizer", "inference", "api"])
    # Playwright's sync API keeps an event loop running in this thread; asyncio.run needs another.
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(stack.put_demo_plate_on_hotlist).result() == plate
    base = f"http://127.0.0.1:{stack.ports.api}"

    # 1. Sign in; the live stream is connected before any footage runs, so the alert below can only
    #    have arrived through the stream, without a reload.
    token = _sign_in(page, base)
    page.wait_for_selector("#alerts-empty:not([hidden])")
    page.screenshot(path=str(artifacts / "01-signed-in.png"))
    stack.start_services(["capture"])

    card_selector = f'li.alert-card:has(h2 .plate:text-is("{plate}"))'
    card = page.wait_for_selector(card_selector, timeout=300_000)
    assert "new" in (card.get_attribute("class") or ""), "the alert came through the live stream"
    assert card.get_attribute("data-status") == "unconfirmed"
    assert DEMO_HOTLIST_NAME in card.inner_text()
    assert "list age" in card.inner_text()
    # Image views need a purpose: the card asks once, then the crop is fetched with the
    # Authorization and purpose headers and shown from a blob: URL.
    if token:
        card.query_selector(".crop-holder button").click()
        _give_purpose(page)
    page.wait_for_function(CROP_SHOWN, arg=card)
    assert page.inner_text("#announcer").startswith(f"New alert: plate {plate}")
    page.screenshot(path=str(artifacts / "02-live-alert.png"))

    # 2. Confirm it visually; the card shows the new status and who confirmed.
    alert_id = card.get_attribute("data-alert-id")
    card.query_selector('button[data-action="confirm_visual"]').click()
    page.wait_for_selector(f'li.alert-card[data-alert-id="{alert_id}"][data-status="confirmed_visual"]')
    confirmed = page.inner_text(f'li.alert-card[data-alert-id="{alert_id}"] .workflow-status')
    assert re.search(r"confirmed by \S+", confirmed), confirmed
    page.screenshot(path=str(artifacts / "03-confirmed.png"))
    status, body = _api_status(f"{base}/api/v1/alerts", token)
    assert status == 200
    assert {a["alert_id"]: a["status"] for a in body["alerts"]}[alert_id] == "confirmed_visual"

    # 3. Partial-plate search: the purpose prompt comes first, then results with crops. The alert can
    #    come from an early read while the vehicle is still in view, before its pass is stored, so
    #    wait (through the API) until the read is searchable.
    wait_until(lambda: any(r["plate"] == plate for r in stack.demo_reads()), 180, f"the read of {plate}")
    page.click('#nav a[data-view="search"]')
    page.fill("#search-plate", plate[:4])
    page.check('input[name="mode"][value="partial"]')
    page.click("#search-submit")
    page.wait_for_selector("#purpose-dialog[open]")
    page.screenshot(path=str(artifacts / "04-purpose-prompt.png"))
    _give_purpose(page)
    row_selector = f'#search-results tr:has(.plate:text-is("{plate}"))'
    row = page.wait_for_selector(row_selector, timeout=60_000)
    assert f"for *{plate[:4]}*" in page.inner_text("#search-status")
    page.wait_for_function(CROP_SHOWN, arg=row)
    page.screenshot(path=str(artifacts / "05-search-results.png"), full_page=True)

    # 4. The vehicle's timeline: sightings listed and drawn on the (tile-less) map.
    page.click(f"{row_selector} button:text-is('Timeline')")
    page.wait_for_selector("#timeline-status.ok", timeout=60_000)
    assert re.match(rf"\d+ sighting\(s\) of {plate}\.", page.inner_text("#timeline-status"))
    assert page.locator("#timeline-list li").count() >= 1
    assert page.locator("#timeline-map path.leaflet-interactive").count() >= 1
    assert page.locator("#timeline-map .leaflet-tile").count() == 0, "no tile server by default"
    page.locator("#timeline-title").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "06-timeline.png"), full_page=True)

    # 5. Cameras: the demo camera with its live status from the capture and normalizer metrics.
    page.click('#nav a[data-view="cameras"]')
    page.wait_for_selector('#cameras-table tr[data-camera-id="demo-cam-1"]')
    camera_row = page.inner_text('#cameras-table tr[data-camera-id="demo-cam-1"]')
    assert re.search(r"online|stale|offline", camera_row), camera_row
    page.screenshot(path=str(artifacts / "07-cameras.png"))

    # Tablet width: the alert list still renders without horizontal scrolling of the page.
    page.set_viewport_size({"width": 820, "height": 1180})
    page.click('#nav a[data-view="alerts"]')
    page.wait_for_selector(card_selector)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(artifacts / "08-tablet-alerts.png"))
