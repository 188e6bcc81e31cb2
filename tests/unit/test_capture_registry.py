"""Camera registry validation: clear errors naming camera and field, duplicates, selection, sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.capture.registry import (
    RegistryError,
    UnknownCameraError,
    load_registry,
    parse_registry,
    resolve_source,
)
from services.common.frames import MAX_ROLL_DEG
from services.common.settings import REPO_ROOT


def _camera(**fields: object) -> dict[str, object]:
    camera: dict[str, object] = {
        "id": "cam-1",
        "agency_id": "pd",
        "name": "Main St",
        "site": "main",
        "lat": 52.0,
        "lon": 4.0,
        "heading_deg": 90,
        "source": "footage/clip.mp4",
    }
    camera.update(fields)
    return camera


def test_shipped_registry_has_the_demo_camera() -> None:
    registry = load_registry(REPO_ROOT / "deploy" / "cameras.yaml")
    camera = registry.get("demo-cam-1")
    assert camera is not None
    assert (camera.agency_id, camera.heading_deg, camera.sample_fps, camera.enabled) == (
        "demo-pd",
        0,
        5,
        True,
    )
    assert resolve_source(camera) == str(REPO_ROOT / "deploy/demo/footage/demo.mp4")


def test_defaults_and_lookup() -> None:
    registry = parse_registry({"cameras": [_camera(), _camera(id="cam-2", enabled=False)]})
    assert registry.get("cam-1").sample_fps == 5.0  # type: ignore[union-attr]
    assert registry.get("nope") is None
    assert [c.id for c in registry.enabled()] == ["cam-1"]
    assert [c.id for c in registry.select([])] == ["cam-1"]
    assert [c.id for c in registry.select(["cam-2"])] == ["cam-2"]


@pytest.mark.parametrize("heading", [-1, 360, 400])
def test_bad_heading_names_camera_and_field(heading: int) -> None:
    with pytest.raises(RegistryError) as error:
        parse_registry({"cameras": [_camera(id="north-1", heading_deg=heading)]})
    assert "'north-1'" in str(error.value)
    assert "heading_deg" in str(error.value)


def test_region_is_optional_and_kept_lower_case() -> None:
    registry = parse_registry(
        {"cameras": [_camera(), _camera(id="cam-2", region="US-CA"), _camera(id="cam-3", region="de")]}
    )
    assert [c.region for c in registry] == [None, "us-ca", "de"]


@pytest.mark.parametrize("region", ["usa", "u", "us_ca", "us-", "us-cal1", "", 12, "1s"])
def test_bad_region_names_camera_and_field(region: object) -> None:
    with pytest.raises(RegistryError) as error:
        parse_registry({"cameras": [_camera(id="north-1", region=region)]})
    assert "'north-1'" in str(error.value)
    assert "region" in str(error.value)


def test_roll_defaults_to_level() -> None:
    registry = parse_registry({"cameras": [_camera(), _camera(id="cam-2", roll_deg=-7.5)]})
    assert [c.roll_deg for c in registry] == [0.0, -7.5]


def test_roll_bound_is_the_frame_contracts() -> None:
    # Inference dead-letters a frame beyond the same bound (services.common.frames).
    rolls = [MAX_ROLL_DEG, -MAX_ROLL_DEG]
    registry = parse_registry({"cameras": [_camera(id=f"cam-{i}", roll_deg=r) for i, r in enumerate(rolls)]})
    assert [c.roll_deg for c in registry] == rolls
    with pytest.raises(RegistryError):
        parse_registry({"cameras": [_camera(roll_deg=MAX_ROLL_DEG + 0.01)]})


@pytest.mark.parametrize("roll", [46, -45.5, "left", float("nan")])
def test_bad_roll_names_camera_and_field(roll: object) -> None:
    with pytest.raises(RegistryError) as error:
        parse_registry({"cameras": [_camera(id="north-1", roll_deg=roll)]})
    assert "'north-1'" in str(error.value)
    assert "roll_deg" in str(error.value)


def test_normalizer_carries_the_region_hint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from services.normalizer.cameras import load_cameras

    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n"
        "  - {id: n-1, agency_id: pd, lat: 1, lon: 2, heading_deg: 0, region: US-CA}\n"
        "  - {id: n-2, agency_id: pd, lat: 1, lon: 2, heading_deg: 0}\n"
        "  - {id: n-3, agency_id: pd, lat: 1, lon: 2, heading_deg: 0, region: jp}\n"
    )
    with caplog.at_level("WARNING", logger="services.normalizer.cameras"):
        cameras = load_cameras(path)
    assert (cameras["n-1"].region, cameras["n-2"].region, cameras["n-3"].region) == ("us-ca", None, "jp")
    # jp: no known plate format belongs to it (it then acts as no hint), which is logged.
    assert [r.region for r in caplog.records if hasattr(r, "region")] == ["jp"]


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n  - id: cam-9\n    agency_id: pd\n    lat: 1\n    lon: 2\n"
        "    heading_deg: 0\n    source: x.mp4\n    zoom: 3\n"
    )
    with pytest.raises(RegistryError) as error:
        load_registry(path)
    message = str(error.value)
    assert str(path) in message and "'cam-9'" in message and "unknown field 'zoom'" in message


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(RegistryError, match=r"duplicate camera id 'cam-1' \(first at #1\)"):
        parse_registry({"cameras": [_camera(), _camera(name="other")]})


def test_missing_source_only_allowed_for_metadata_readers() -> None:
    entry = _camera()
    del entry["source"]
    with pytest.raises(RegistryError, match="'source'"):
        parse_registry({"cameras": [entry]})
    assert parse_registry({"cameras": [entry]}, require_source=False).get("cam-1") is not None


def test_unknown_selected_id_names_known_ids() -> None:
    registry = parse_registry({"cameras": [_camera(), _camera(id="cam-2")]})
    with pytest.raises(UnknownCameraError, match=r"'cam-7'.*cam-1, cam-2"):
        registry.select(["cam-1", "cam-7"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [unclosed\n")
    with pytest.raises(RegistryError, match="invalid YAML"):
        load_registry(bad)


def test_resolve_source_keeps_urls_and_absolute_paths(tmp_path: Path) -> None:
    registry = parse_registry(
        {
            "cameras": [
                _camera(id="a", source="rtsp://cam.local/stream"),
                _camera(id="b", source=str(tmp_path)),
                _camera(id="c", source="rel/dir"),
            ]
        }
    )
    assert resolve_source(registry.get("a")) == "rtsp://cam.local/stream"  # type: ignore[arg-type]
    assert resolve_source(registry.get("b")) == str(tmp_path)  # type: ignore[arg-type]
    assert resolve_source(registry.get("c"), root=tmp_path) == str(tmp_path / "rel/dir")  # type: ignore[arg-type]


def test_normalizer_reads_metadata_through_the_registry(tmp_path: Path) -> None:
    from services.normalizer.cameras import CameraDirectory, load_cameras

    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n  - {id: n-1, agency_id: pd, name: N, site: s, lat: 1.5, lon: 2.5, heading_deg: 90}\n"
    )
    cameras = load_cameras(path)
    assert cameras["n-1"].info.agency_id == "pd" and cameras["n-1"].heading_deg == 90.0
    assert load_cameras(tmp_path / "absent.yaml") == {}

    directory = CameraDirectory(path, recheck_s=0.0)
    path.write_text("cameras:\n  - {id: n-1, agency_id: pd, lat: 1, lon: 2, heading_deg: 720}\n")
    os.utime(path, (1, 1))  # a different mtime, whatever the file system's resolution
    assert directory.get("n-2", now=1.0) is None
    assert directory.get("n-1", now=2.0) is not None  # an invalid edit keeps what was loaded
    path.write_text(
        "cameras:\n  - {id: n-1, agency_id: pd, lat: 1, lon: 2, heading_deg: 0}\n"
        "  - {id: n-2, agency_id: pd, lat: 1, lon: 2, heading_deg: 45}\n"
    )
    os.utime(path, (2, 2))
    meta = directory.get("n-2", now=3.0)
    assert meta is not None and meta.heading_deg == 45.0
