"""Camera metadata for normalized reads.

A minimal reader of the camera registry file (`PLATEWATCH_CAMERAS_FILE`, default deploy/cameras.yaml):
`cameras: [{id, agency_id, name, site, lat, lon, heading_deg}]`. The capture service owns the registry
(`services/capture/registry.py`, not written yet when this was); switch `load_cameras` to its loader
once it exists. The file is re-read when it changed on disk and an unknown camera id shows up, so a
camera added to the registry is known without a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.common.pb.platewatch.v1 import common_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraMeta:
    info: common_pb2.CameraInfo
    # None when the registry does not say which way the camera looks.
    heading_deg: float | None


def _field(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _to_meta(entry: Any) -> CameraMeta:
    heading = _field(entry, "heading_deg")
    info = common_pb2.CameraInfo(
        camera_id=str(_field(entry, "id", "") or _field(entry, "camera_id", "")),
        agency_id=str(_field(entry, "agency_id", "") or ""),
        name=str(_field(entry, "name", "") or ""),
        site=str(_field(entry, "site", "") or ""),
        lat=float(_field(entry, "lat", 0.0) or 0.0),
        lon=float(_field(entry, "lon", 0.0) or 0.0),
        heading_deg=float(heading or 0.0),
    )
    return CameraMeta(info, None if heading is None else float(heading))


def load_cameras(path: Path) -> dict[str, CameraMeta]:
    """camera_id -> metadata; empty when the file does not exist."""
    if not path.exists():
        log.warning("camera registry file not found", extra={"path": str(path)})
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("cameras", []) if isinstance(data, dict) else []
    cameras = (_to_meta(entry) for entry in entries)
    return {meta.info.camera_id: meta for meta in cameras if meta.info.camera_id}


class CameraDirectory:
    """Lookup by camera id, re-reading the file (at most every `recheck_s`) when an id is unknown."""

    def __init__(self, path: Path, recheck_s: float = 5.0) -> None:
        self.path = path
        self.recheck_s = recheck_s
        self._mtime = self._file_mtime()
        self._cameras = load_cameras(path)
        self._checked_at = 0.0

    def _file_mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def get(self, camera_id: str, now: float) -> CameraMeta | None:
        meta = self._cameras.get(camera_id)
        if meta is None and now - self._checked_at >= self.recheck_s:
            self._checked_at = now
            mtime = self._file_mtime()
            if mtime != self._mtime:
                self._mtime = mtime
                self._cameras = load_cameras(self.path)
                meta = self._cameras.get(camera_id)
        return meta

    def __len__(self) -> int:
        return len(self._cameras)
