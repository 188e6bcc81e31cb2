"""End to end: the demo footage through capture -> inference (real Triton) -> normalizer -> hotlist
-> writer (embedded ClickHouse) -> search -> API, every service its own process, as `make run` runs
them. A read must become searchable, with its crop, and the hotlisted plate must raise a live alert."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from services.stack import DEMO_HOTLIST_NAME, DEMO_MANIFEST, Stack, wait_until


def _get_bytes(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def test_demo_footage_becomes_searchable_reads_and_a_live_alert(
    stack_factory: Callable[..., Stack], triton_url: str
) -> None:
    manifest = yaml.safe_load(DEMO_MANIFEST.read_text())
    hotlist_plate = manifest["hotlist_plate"]
    stack = stack_factory(triton_url=triton_url, extra_env={"PLATEWATCH_LOOP_FILES": "false"})

    stack.start_services(["storage", "hotlist", "normalizer", "inference", "api", "notifier"])
    assert stack.put_demo_plate_on_hotlist() == hotlist_plate
    # A second `make run` on the same data reuses the demo list rather than adding a twin.
    assert stack.put_demo_plate_on_hotlist() == hotlist_plate
    started = time.monotonic()
    stack.start_services(["capture"])

    found = wait_until(
        lambda: stack.api_get(f"/api/v1/reads?plate={hotlist_plate}")["reads"],
        timeout=240,
        what=f"a stored read of {hotlist_plate}",
    )
    read = found[0]
    assert read["plate"] == hotlist_plate
    assert read["camera_id"]
    content_type, crop = _get_bytes(f"http://127.0.0.1:{stack.ports.api}{read['crop_url']}")
    assert content_type == "image/jpeg" and crop[:2] == b"\xff\xd8"

    alerts = wait_until(
        lambda: [a for a in stack.api_get("/api/v1/alerts")["alerts"] if a["plate"] == hotlist_plate],
        timeout=120,
        what=f"an alert for {hotlist_plate}",
    )
    assert alerts[0]["hotlist_name"] == DEMO_HOTLIST_NAME
    assert len({a["read_id"] for a in alerts}) == len(alerts), "one alert per read and entry"
    print(f"read-to-alert path took {time.monotonic() - started:.1f}s from capture start")

    # Most of the other demo vehicles are read exactly too (recognition quality is issue 3's job;
    # this guards against a pipeline that only ever emits one plate).
    # (A pattern of only wildcards is refused by search, so ask for each plate.)
    expected = {str(v["plate"]) for v in manifest["vehicles"]}
    stored = {p for p in expected if stack.api_get(f"/api/v1/reads?plate={p}")["reads"]}
    assert len(stored) >= len(expected) // 2, (expected, stored)

    # Graceful SIGTERM everywhere: each process drains and exits 0.
    for name in reversed(list(stack.processes)):
        stack.processes[name].stop()
        assert stack.processes[name].exit_code() == 0, (name, _tail(stack.processes[name].log_path))


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
