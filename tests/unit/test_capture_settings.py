"""Capture settings from the environment and the start-up error for unknown camera ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.capture.main import CaptureService, CaptureSettings
from services.capture.registry import UnknownCameraError
from services.common.health import HealthState


@pytest.mark.parametrize(
    "raw, expected",
    [("", []), ("cam-1", ["cam-1"]), (" cam-1, cam-2 ,", ["cam-1", "cam-2"]), ('["a", "b"]', ["a", "b"])],
)
def test_camera_ids_env_accepts_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("PLATEWATCH_CAMERA_IDS", raw)
    assert CaptureSettings().camera_ids == expected


def test_unknown_camera_id_fails_at_start_with_the_known_ids(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n  - {id: gate-1, agency_id: pd, lat: 0, lon: 0, heading_deg: 0, source: x.mp4}\n"
    )
    settings = CaptureSettings(cameras_file=path, camera_ids=["gate-2"])
    with pytest.raises(UnknownCameraError, match=r"'gate-2'.*gate-1"):
        CaptureService(settings, HealthState())
