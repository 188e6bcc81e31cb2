"""The operators' web console: static files under `services/api/console/` served at `/console/`, the
console's own settings at `/console/config.json`, and a read-only camera status endpoint
`GET /api/v1/cameras` (camera registry + the capture processes' Prometheus metrics).

Everything the console needs ships in that folder (Leaflet included), so it works with no internet
access; the map has no tile layer unless `PLATEWATCH_CONSOLE_TILE_URL` names one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Scope

from services.api.models import API_PREFIX
from services.api.security import Principal, require
from services.capture.registry import CameraRegistry, RegistryError, load_registry
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSOLE_PATH = "/console"


class ConsoleSettings(CommonSettings):
    """Console configuration (environment variables `PLATEWATCH_<FIELD>`)."""

    # Map tiles, e.g. "https://tiles.example.org/{z}/{x}/{y}.png"; empty = plain background, no
    # network requests (the default: deployments are often air-gapped).
    console_tile_url: str = ""
    console_tile_attribution: str = ""
    # Comma-separated Prometheus endpoints (http://host:port/metrics) of the capture processes
    # (connected, last frame, frames per minute) and normalizers (reads per minute), read for camera
    # status. Empty: the registry only, every camera "unknown".
    console_metrics_urls: str = ""
    # Seconds one scrape of a metrics endpoint may take.
    console_metrics_timeout_seconds: float = 2.0

    def metrics_urls(self) -> list[str]:
        return [url.strip() for url in self.console_metrics_urls.split(",") if url.strip()]


class ConsoleConfigOut(BaseModel):
    tile_url: str
    tile_attribution: str
    api_prefix: str


class CameraStatusOut(BaseModel):
    """One registry camera and what the capture metrics say about it (null when unknown)."""

    camera_id: str
    name: str
    site: str
    agency_id: str
    lat: float
    lon: float
    heading_deg: float
    enabled: bool
    # "online" (source open, frame within the last minute), "stale" (open, no recent frame),
    # "offline" (source closed), "unknown" (no metrics from any capture process mention it).
    state: str
    connected: bool | None
    last_frame_at: datetime | None
    # Frames published to Kafka per minute, averaged since the previous scrape (null on the first).
    frames_per_minute: float | None
    # Reads (vehicle passes) per minute from the normalizers' platewatch_reads_total, same averaging.
    reads_per_minute: float | None


class CamerasOut(BaseModel):
    cameras: list[CameraStatusOut]
    # Metrics endpoints that could not be read (the cameras they serve show "unknown").
    unreachable: list[str]


# Seconds without a frame after which an open camera counts as stale.
STALE_AFTER_SECONDS = 60.0


@dataclass
class _CaptureSample:
    connected: dict[str, bool] = field(default_factory=dict)
    last_frame: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    reads: dict[str, float] = field(default_factory=dict)


@dataclass
class _CameraState:
    """Registry cache (re-read when the file changes) and the previous scrape, for rates."""

    registry: CameraRegistry | None = None
    registry_mtime: float = -1.0
    # (monotonic time, frames published per camera, reads per camera) of the previous scrape.
    previous: tuple[float, dict[str, float], dict[str, float]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def parse_capture_metrics(text: str) -> _CaptureSample:
    """The per-camera series of one Prometheus text exposition (capture and normalizer families)."""
    sample = _CaptureSample()
    for family in text_string_to_metric_families(text):
        for metric in family.samples:
            camera = metric.labels.get("camera")
            if camera is None:
                continue
            if metric.name == "platewatch_capture_camera_connected":
                sample.connected[camera] = metric.value >= 1
            elif metric.name == "platewatch_capture_last_frame_timestamp_seconds":
                sample.last_frame[camera] = metric.value
            elif metric.name == "platewatch_capture_frames_total" and metric.labels.get("outcome") == (
                "published"
            ):
                sample.published[camera] = metric.value
            elif metric.name == "platewatch_reads_total":
                # Summed over agencies: one camera belongs to one agency, but be safe.
                sample.reads[camera] = sample.reads.get(camera, 0.0) + metric.value
    return sample


def get_console_settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.console_settings
    return settings


ConsoleSettingsDep = Annotated[ConsoleSettings, Depends(get_console_settings)]

console_router = APIRouter(tags=["console"])


@console_router.get(CONSOLE_PATH, include_in_schema=False)
async def console_root() -> RedirectResponse:
    return RedirectResponse(f"{CONSOLE_PATH}/")


@console_router.get(f"{CONSOLE_PATH}/config.json", response_model=ConsoleConfigOut, include_in_schema=False)
async def console_config(settings: ConsoleSettingsDep) -> ConsoleConfigOut:
    """What the console needs to know that is deployment-specific (no secrets)."""
    return ConsoleConfigOut(
        tile_url=settings.console_tile_url,
        tile_attribution=settings.console_tile_attribution,
        api_prefix=API_PREFIX,
    )


async def _scrape(client: httpx.AsyncClient, url: str) -> _CaptureSample | None:
    try:
        response = await client.get(url)
        response.raise_for_status()
        return parse_capture_metrics(response.text)
    except (httpx.HTTPError, ValueError) as exc:
        log.info("capture metrics unreadable", extra={"url": url, "error": str(exc)})
        return None


def _per_minute(
    camera_id: str,
    current: dict[str, float],
    previous: tuple[float, dict[str, float], dict[str, float]] | None,
    index: int,
    now_monotonic: float,
) -> float | None:
    """Counter increase per minute since the previous scrape; a counter that went down (process
    restart) counts from zero."""
    if previous is None or camera_id not in current:
        return None
    elapsed = now_monotonic - previous[0]
    if elapsed <= 0:
        return None
    before: dict[str, float] = previous[index]  # type: ignore[assignment]
    increase = current[camera_id] - before.get(camera_id, 0.0)
    if increase < 0:
        increase = current[camera_id]
    return increase * 60 / elapsed


def _registry(state: _CameraState, path: Path) -> CameraRegistry:
    mtime = path.stat().st_mtime
    if state.registry is None or mtime != state.registry_mtime:
        state.registry = load_registry(path, require_source=False)
        state.registry_mtime = mtime
    return state.registry


@console_router.get(f"{API_PREFIX}/cameras", response_model=CamerasOut, tags=["cameras"])
async def camera_status(
    request: Request,
    settings: ConsoleSettingsDep,
    reader: Annotated[Principal, Depends(require("cameras.read"))],
) -> CamerasOut:
    """The caller's agency's cameras of the registry (never another agency's: where cameras stand
    is itself sensitive) with their live status from the capture and normalizer metrics
    (`PLATEWATCH_CONSOLE_METRICS_URLS`). Read-only; 503 when the registry is unreadable. Rates are
    averaged since the previous call of this endpoint (null on the first)."""
    state: _CameraState = request.app.state.console_cameras
    try:
        registry = _registry(state, settings.cameras_file)
    except (OSError, RegistryError) as exc:
        detail = f"camera registry unavailable: {exc}"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail) from exc
    urls = settings.metrics_urls()
    async with httpx.AsyncClient(timeout=settings.console_metrics_timeout_seconds) as client:
        samples = await asyncio.gather(*(_scrape(client, url) for url in urls))
    merged = _CaptureSample()
    for sample in samples:
        if sample is not None:
            merged.connected.update(sample.connected)
            merged.last_frame.update(sample.last_frame)
            merged.published.update(sample.published)
            for camera_id, count in sample.reads.items():
                merged.reads[camera_id] = merged.reads.get(camera_id, 0.0) + count
    now_monotonic, now = time.monotonic(), time.time()
    async with state.lock:
        previous = state.previous
        state.previous = (now_monotonic, dict(merged.published), dict(merged.reads))
    cameras = []
    for camera in registry.cameras:
        if camera.agency_id != reader.agency_id:
            continue
        connected = merged.connected.get(camera.id)
        last_frame = merged.last_frame.get(camera.id)
        if connected is None:
            camera_state = "unknown"
        elif not connected:
            camera_state = "offline"
        elif last_frame is not None and now - last_frame <= STALE_AFTER_SECONDS:
            camera_state = "online"
        else:
            camera_state = "stale"
        cameras.append(
            CameraStatusOut(
                camera_id=camera.id,
                name=camera.name,
                site=camera.site,
                agency_id=camera.agency_id,
                lat=camera.lat,
                lon=camera.lon,
                heading_deg=camera.heading_deg,
                enabled=camera.enabled,
                state=camera_state,
                connected=connected,
                last_frame_at=datetime.fromtimestamp(last_frame, UTC) if last_frame else None,
                frames_per_minute=_per_minute(camera.id, merged.published, previous, 1, now_monotonic),
                reads_per_minute=_per_minute(camera.id, merged.reads, previous, 2, now_monotonic),
            )
        )
    unreachable = [url for url, sample in zip(urls, samples, strict=True) if sample is None]
    return CamerasOut(cameras=cameras, unreachable=unreachable)


class _ConsoleFiles(StaticFiles):
    """Static files that are always revalidated, so an upgraded console is picked up on reload."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install_console(app: FastAPI, settings: ConsoleSettings | None = None) -> None:
    """Serve the console on `app`: the routes above and the static files at /console/."""
    app.state.console_settings = settings or ConsoleSettings()
    app.state.console_cameras = _CameraState()
    app.include_router(console_router)
    app.mount(f"{CONSOLE_PATH}/", _ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
