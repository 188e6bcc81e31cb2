"""Camera metadata for normalized reads.

Read from the camera registry (`PLATEWATCH_CAMERAS_FILE`, default deploy/cameras.yaml) with the capture
service's loader (`services.capture.registry`), metadata only: cameras without `source` are accepted.
The file is re-read when it changed on disk and an unknown camera id shows up, so a camera added to the
registry is known without a restart. A camera's optional `region` is the hint the plate grammar fixes
look-alike characters by (services/normalizer/grammar.py); a region no known plate format belongs to is
logged (it then acts as no hint). A missing or invalid file is logged and yields no cameras (an invalid
edit keeps the cameras already loaded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.capture.registry import Camera, RegistryError, load_registry
from services.common.pb.platewatch.v1 import common_pb2
from services.normalizer.grammar import default_grammar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraMeta:
    info: common_pb2.CameraInfo
    # None when the registry does not say which way the camera looks.
    heading_deg: float | None
    # The camera's region hint for the plate grammar ("us", "us-ca", "de"); None when unknown.
    region: str | None = None


def _to_meta(camera: Camera) -> CameraMeta:
    info = common_pb2.CameraInfo(
        camera_id=camera.id,
        agency_id=camera.agency_id,
        name=camera.name,
        site=camera.site,
        lat=camera.lat,
        lon=camera.lon,
        heading_deg=camera.heading_deg,
    )
    return CameraMeta(info, camera.heading_deg, camera.region)


def _load(path: Path) -> dict[str, CameraMeta] | None:
    """camera_id -> metadata; {} when the file does not exist, None when it is invalid."""
    if not path.exists():
        log.warning("camera registry file not found", extra={"path": str(path)})
        return {}
    try:
        registry = load_registry(path, require_source=False)
    except RegistryError as exc:
        log.error("camera registry invalid", extra={"path": str(path), "error": str(exc)})
        return None
    grammar = default_grammar()
    for camera in registry:
        if camera.region is not None and not grammar.knows_region(camera.region):
            log.warning(
                "camera region has no known plate format; reads are not fixed by region",
                extra={"camera_id": camera.id, "region": camera.region},
            )
    return {camera.id: _to_meta(camera) for camera in registry}


def load_cameras(path: Path) -> dict[str, CameraMeta]:
    """camera_id -> metadata; empty when the file does not exist or is invalid (logged)."""
    return _load(path) or {}


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
                reloaded = _load(self.path)
                if reloaded is not None:
                    self._cameras = reloaded
                meta = self._cameras.get(camera_id)
        return meta

    def __len__(self) -> int:
        return len(self._cameras)
