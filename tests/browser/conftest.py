"""Browser fixtures: Debian's Chromium (installed with apt when missing and we are root) driven by
playwright through `executable_path` (playwright's own browser downloads are never used), and a
folder for screenshots under test-artifacts/ (git-ignored) that CI keeps as artifacts."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
APT_TIMEOUT_S = 900


def _find_chromium() -> str | None:
    configured = os.environ.get("PLATEWATCH_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def _apt_install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"could not install Debian's chromium ({' '.join(argv)}): {exc}")
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-2000:]
            command = " ".join(argv)
            pytest.fail(f"`{command}` failed with {result.returncode}; install chromium by hand:\n{tail}")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of Debian's Chromium; installs the `chromium` package with apt-get when we are root."""
    found = _find_chromium()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(
            "Debian's chromium is not installed and this user cannot install it: "
            "run `apt-get install -y chromium` as root (or set PLATEWATCH_CHROMIUM to a Chromium binary)"
        )
    _apt_install_chromium()
    found = _find_chromium()
    if not found:
        pytest.fail("apt-get installed chromium but no chromium binary was found in /usr/bin")
    return found


@pytest.fixture
def browser(chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium (playwright sync API) for one test. Not longer: while the sync API is
    active its event loop runs in the main thread, and every later asyncio test would fail with
    "cannot be called from a running event loop"."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a dev dependency: pip install playwright"
    )
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/browser/<test name>/, emptied first."""
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def page(browser: Any, artifacts: Path) -> Iterator[Any]:
    """A fresh tab (laptop-sized); browser console errors and page errors are saved next to the
    screenshots, and a last screenshot is taken when the test fails."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    log: list[str] = []
    tab.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        try:
            tab.screenshot(path=str(artifacts / "last.png"), full_page=True)
        except Exception:  # the page may be gone; the log is still worth keeping
            pass
        (artifacts / "browser-console.log").write_text("\n".join(log))
        context.close()
