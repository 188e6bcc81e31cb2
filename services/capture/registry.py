"""The camera registry (`PLATEWATCH_CAMERAS_FILE`, default deploy/cameras.yaml).

Format: a top-level `cameras:` list; each camera has `id`, `agency_id`, `name`, `site`, `lat`, `lon`,
`heading_deg` (0 <= h < 360, compass direction the camera looks), `source` (a video file or a folder of
images, relative to the repo root or absolute, or an `http://`/`https://` MJPEG or `rtsp://` URL),
`sample_fps` (default 5), `enabled` (default true), `region` (optional: where the plates it reads are from,
an ISO 3166 country code with an optional subdivision, e.g. "us", "us-ca", "de"; case-insensitive, kept lower
case; the normalizer's plate grammar uses it, see services/normalizer/grammar.py) and `roll_deg` (default 0,
-45 to 45: how many degrees level text in its picture runs down to the right; the recognizer turns its
frames upright by it). Unknown fields and duplicate ids are errors, and every error names the file, the
camera and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.frames import MAX_ROLL_DEG
from services.common.settings import REPO_ROOT

# libyaml's safe loader when PyYAML was built with it (the wheels are): a registry of thousands of
# cameras took seconds to parse in pure Python at every normalizer and capture start.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

URL_SCHEMES = ("http://", "https://", "rtsp://", "rtsps://")


class RegistryError(ValueError):
    """The camera registry file is missing, unreadable or invalid; the message says where and why."""


class UnknownCameraError(RegistryError):
    """A camera id that the registry does not have."""


class Camera(BaseModel):
    """One camera of the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    agency_id: str = Field(min_length=1)
    name: str = ""
    site: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    heading_deg: float = Field(ge=0, lt=360)
    # None only in metadata-only registries (see `load_registry(require_source=False)`).
    source: str | None = Field(default=None, min_length=1)
    sample_fps: float = Field(default=5.0, gt=0, le=60)
    enabled: bool = True
    # Region hint for the plate grammar: "cc" or "cc-sub" (ISO 3166-1 alpha-2, optional subdivision);
    # None when the camera may see plates of any region.
    region: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$")
    # The picture's roll: degrees by which level text in it runs down to the right (negative: up). A
    # camera mounted with roll sets it so that every frame is read turned upright at once, instead of
    # read leaning and then again turned (services/inference/engine.PlateRecognizer.recognize).
    roll_deg: float = Field(default=0.0, ge=-MAX_ROLL_DEG, le=MAX_ROLL_DEG)

    @field_validator("region")
    @classmethod
    def _lower_region(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @property
    def is_stream(self) -> bool:
        """Live network source (sampled by wall clock, reconnected on failure) rather than a file/folder."""
        return self.source is not None and self.source.lower().startswith(URL_SCHEMES)


class CameraRegistry:
    """The cameras of one registry file, in file order."""

    def __init__(self, cameras: Iterable[Camera]) -> None:
        self.cameras: list[Camera] = list(cameras)
        self._by_id = {camera.id: camera for camera in self.cameras}
        if len(self._by_id) != len(self.cameras):
            raise RegistryError("duplicate camera ids")

    def get(self, camera_id: str) -> Camera | None:
        return self._by_id.get(camera_id)

    def ids(self) -> list[str]:
        return [camera.id for camera in self.cameras]

    def enabled(self) -> list[Camera]:
        return [camera for camera in self.cameras if camera.enabled]

    def select(self, camera_ids: Iterable[str]) -> list[Camera]:
        """The named cameras (enabled or not: naming one is an explicit choice); empty -> every enabled
        camera. UnknownCameraError names the unknown id and the known ones."""
        wanted = list(camera_ids)
        if not wanted:
            return self.enabled()
        selected = []
        for camera_id in wanted:
            camera = self._by_id.get(camera_id)
            if camera is None:
                raise UnknownCameraError(
                    f"unknown camera id {camera_id!r}; the registry has: {', '.join(self.ids()) or '(none)'}"
                )
            selected.append(camera)
        return selected

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.cameras)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(camera)"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown field {field!r}")
        else:
            parts.append(f"field {field!r}: {item['msg']}")
    return "; ".join(parts)


def parse_registry(
    data: Any, *, origin: str = "camera registry", require_source: bool = True
) -> CameraRegistry:
    """Validate already-parsed YAML/JSON data (see module docstring)."""
    if data is None:
        data = {"cameras": []}
    if not isinstance(data, dict) or set(data) - {"cameras"}:
        raise RegistryError(f"{origin}: expected a mapping with a single 'cameras:' list")
    entries = data.get("cameras") or []
    if not isinstance(entries, list):
        raise RegistryError(f"{origin}: 'cameras' must be a list")
    cameras: list[Camera] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"camera #{index + 1}"
        if isinstance(entry, dict) and entry.get("id"):
            label = f"camera {entry['id']!r} (#{index + 1})"
        if not isinstance(entry, dict):
            raise RegistryError(f"{origin}: {label}: expected a mapping of fields")
        try:
            camera = Camera.model_validate(entry)
        except ValidationError as exc:
            raise RegistryError(f"{origin}: {label}: {_describe(exc)}") from None
        if require_source and camera.source is None:
            raise RegistryError(f"{origin}: {label}: field 'source': required")
        if camera.id in seen:
            raise RegistryError(
                f"{origin}: {label}: duplicate camera id {camera.id!r} (first at #{seen[camera.id] + 1})"
            )
        seen[camera.id] = index
        cameras.append(camera)
    return CameraRegistry(cameras)


def load_registry(path: Path | str, *, require_source: bool = True) -> CameraRegistry:
    """Read and validate a registry file. RegistryError when it is missing or invalid.

    `require_source=False` accepts cameras without `source`, for services that only need the metadata.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RegistryError(f"camera registry {path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise RegistryError(f"camera registry {path}: invalid YAML: {exc}") from exc
    return parse_registry(data, origin=f"camera registry {path}", require_source=require_source)


def resolve_source(camera: Camera, root: Path = REPO_ROOT) -> str:
    """The source as OpenCV opens it: URLs unchanged, relative paths made absolute against `root`."""
    if camera.source is None:
        raise RegistryError(f"camera {camera.id!r} has no source")
    if camera.is_stream:
        return camera.source
    path = Path(camera.source).expanduser()
    return str(path if path.is_absolute() else root / path)
