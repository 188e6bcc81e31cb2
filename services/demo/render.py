"""Synthetic demo footage: vehicles with readable licence plates driving towards a roadside camera.

Everything is drawn with OpenCV primitives and Hershey fonts, so the clip needs no downloaded
asset and renders identically on any machine with the same OpenCV build. The output is a video
file plus a manifest (plates, colours, frame ranges, the hotlisted plate) that the end-to-end
tests and the demo stack use as ground truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from services.common.settings import REPO_ROOT

log = logging.getLogger(__name__)

WIDTH = 1280
HEIGHT = 720
FPS = 10
SEED = 20240917
DEFAULT_FOOTAGE = REPO_ROOT / "deploy" / "demo" / "footage" / "demo.mp4"
DEFAULT_MANIFEST = REPO_ROOT / "deploy" / "demo" / "manifest.yaml"

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class PlateStyle:
    """How a plate looks: its aspect ratio, colours and the small legend above the characters."""

    name: str
    # Height / width of the physical plate (US 6x12 in, EU 110x520 mm).
    aspect: float
    background: BGR
    ink: BGR
    legend: str = ""


US_WHITE = PlateStyle("us", aspect=0.5, background=(245, 245, 242), ink=(110, 40, 20), legend="CALIFORNIA")
US_YELLOW = PlateStyle("us", aspect=0.5, background=(40, 200, 245), ink=(90, 30, 10), legend="NEW YORK")
EU_YELLOW = PlateStyle("eu", aspect=110 / 520, background=(30, 205, 250), ink=(20, 20, 20))
EU_WHITE = PlateStyle("eu", aspect=110 / 520, background=(245, 245, 245), ink=(20, 20, 20))


@dataclass(frozen=True)
class Vehicle:
    """One vehicle pass. `plate` is the canonical text; `printed` is how it appears on the plate."""

    plate: str
    printed: str
    style: PlateStyle
    colour: str
    body: BGR
    seconds: float
    # Horizontal lane centre at the far end of the pass, as a fraction of the frame width.
    lane_x: float


VEHICLES: tuple[Vehicle, ...] = (
    Vehicle("7ABC123", "7ABC123", US_WHITE, "red", (40, 40, 190), 2.4, 0.46),
    Vehicle("ABC1234", "ABC-1234", US_YELLOW, "blue", (150, 80, 30), 2.2, 0.55),
    Vehicle("AB12CDE", "AB12 CDE", EU_YELLOW, "silver", (185, 185, 180), 2.6, 0.48),
    Vehicle("8KPL472", "8KPL472", US_WHITE, "black", (35, 35, 38), 2.0, 0.53),
    Vehicle("GF71XKM", "GF71 XKM", EU_WHITE, "green", (50, 120, 40), 2.4, 0.50),
)
HOTLIST_PLATE = "ABC1234"
# The agency of the demo camera in deploy/cameras.yaml; hotlists match reads of their own agency.
DEMO_AGENCY = "demo-pd"
# Empty road before, between and after the vehicles, in frames.
GAP_FRAMES = 8


def render_plate(text: str, style: PlateStyle, width: int = 520) -> np.ndarray:
    """A flat plate image `width` pixels wide, characters in a heavy Hershey face."""
    height = round(width * style.aspect)
    plate = np.full((height, width, 3), style.background, dtype=np.uint8)
    border = max(3, width // 90)
    cv2.rectangle(plate, (border, border), (width - border, height - border), style.ink, border // 2 + 1)
    font = cv2.FONT_HERSHEY_DUPLEX
    thickness = max(2, width // 40)
    # Characters fill ~80% of the width (US: ~55% of the height under the legend).
    text_box_h = height * (0.52 if style.legend else 0.62)
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(width * 0.84 / tw, text_box_h / th)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    baseline_y = round(height * (0.80 if style.legend else 0.5) + (0 if style.legend else th / 2))
    cv2.putText(plate, text, ((width - tw) // 2, baseline_y), font, scale, style.ink, thickness, cv2.LINE_AA)
    if style.legend:
        lscale = height * 0.12 / cv2.getTextSize(style.legend, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)[0][1]
        (lw, lh), _ = cv2.getTextSize(style.legend, cv2.FONT_HERSHEY_SIMPLEX, lscale, 2)
        legend_org = ((width - lw) // 2, round(height * 0.08) + lh)
        cv2.putText(
            plate, style.legend, legend_org, cv2.FONT_HERSHEY_SIMPLEX, lscale, (40, 40, 200), 2, cv2.LINE_AA
        )
    return plate


def _background(rng: np.random.Generator) -> np.ndarray:
    """A road vanishing towards the horizon, verges, sky, and a lamp post."""
    frame = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    horizon = 250
    for y in range(horizon):
        shade = 200 + round(40 * y / horizon)
        frame[y, :] = (min(255, shade + 20), shade, shade - 40)
    frame[horizon:, :] = (70, 120, 80)
    road = np.array([[560, horizon], [720, horizon], [WIDTH + 300, HEIGHT], [-300, HEIGHT]], dtype=np.int32)
    cv2.fillPoly(frame, [road], (92, 92, 96))
    for i in range(8):  # dashed centre line, dashes growing towards the camera
        t0, t1 = (i / 8) ** 1.6, ((i + 0.5) / 8) ** 1.6
        y0, y1 = horizon + t0 * (HEIGHT - horizon), horizon + t1 * (HEIGHT - horizon)
        cv2.line(frame, (640, round(y0)), (640, round(y1)), (220, 220, 220), max(2, round(2 + 10 * t1)))
    cv2.rectangle(frame, (1090, 60), (1102, 520), (70, 70, 75), -1)
    cv2.rectangle(frame, (1010, 55), (1102, 70), (70, 70, 75), -1)
    texture = rng.normal(0, 4, frame.shape)
    return np.clip(frame + texture, 0, 255).astype(np.uint8)


def _draw_vehicle(frame: np.ndarray, vehicle: Vehicle, plate: np.ndarray, progress: float) -> list[int]:
    """Draw the vehicle at `progress` (0 = far, 1 = close) and return the plate box [x, y, w, h]."""
    scale = 0.75 + 0.35 * progress
    cx = WIDTH * (0.5 + (vehicle.lane_x - 0.5) * (0.4 + 0.6 * progress))
    bottom = 450 + 220 * progress
    body_w, body_h = 520 * scale, 330 * scale
    x0, x1 = cx - body_w / 2, cx + body_w / 2
    y0 = bottom - body_h
    shadow = (round(cx), round(bottom + 6 * scale))
    cv2.ellipse(frame, shadow, (round(body_w * 0.55), round(18 * scale)), 0, 0, 360, (55, 55, 58), -1)
    for wx in (x0 + body_w * 0.06, x1 - body_w * 0.06 - 70 * scale):  # tyres
        cv2.rectangle(
            frame,
            (round(wx), round(bottom - 40 * scale)),
            (round(wx + 70 * scale), round(bottom)),
            (20, 20, 20),
            -1,
        )
    roof = np.array(
        [
            [x0 + body_w * 0.17, y0],
            [x1 - body_w * 0.17, y0],
            [x1 - body_w * 0.06, y0 + body_h * 0.38],
            [x0 + body_w * 0.06, y0 + body_h * 0.38],
        ]
    )
    cv2.fillPoly(frame, [roof.round().astype(np.int32)], vehicle.body)
    glass = roof + np.array([[body_w * 0.03, body_h * 0.05]] * 2 + [[-body_w * 0.02, -body_h * 0.02]] * 2)
    glass[[1, 2], 0] -= body_w * 0.06
    glass[[0, 3], 0] += body_w * 0.0
    cv2.fillPoly(frame, [glass.round().astype(np.int32)], (70, 60, 55))
    lower_top = y0 + body_h * 0.36
    cv2.rectangle(
        frame, (round(x0), round(lower_top)), (round(x1), round(bottom - 30 * scale)), vehicle.body, -1
    )
    darker = tuple(max(0, c - 35) for c in vehicle.body)
    grille_y = lower_top + body_h * 0.16
    cv2.rectangle(
        frame,
        (round(cx - body_w * 0.18), round(grille_y)),
        (round(cx + body_w * 0.18), round(grille_y + body_h * 0.1)),
        darker,
        -1,
    )
    for lx in (x0 + body_w * 0.05, x1 - body_w * 0.05 - body_w * 0.16):  # headlights
        cv2.rectangle(
            frame,
            (round(lx), round(lower_top + body_h * 0.08)),
            (round(lx + body_w * 0.16), round(lower_top + body_h * 0.17)),
            (225, 235, 240),
            -1,
        )
    plate_w = round(230 * scale) if vehicle.style.name == "eu" else round(200 * scale)
    plate_h = round(plate_w * vehicle.style.aspect)
    px = round(cx - plate_w / 2)
    py = round(grille_y + body_h * 0.15)
    resized = cv2.resize(plate, (plate_w, plate_h), interpolation=cv2.INTER_AREA)
    frame[py : py + plate_h, px : px + plate_w] = resized
    return [px, py, plate_w, plate_h]


def render(
    footage: Path = DEFAULT_FOOTAGE, manifest: Path = DEFAULT_MANIFEST, seed: int = SEED
) -> dict[str, Any]:
    """Write the demo clip and its manifest; returns the manifest as a dict. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    background = _background(rng)
    footage.parent.mkdir(parents=True, exist_ok=True)
    fourcc = "MJPG" if footage.suffix.lower() == ".avi" else "mp4v"
    codec = cv2.VideoWriter_fourcc(*fourcc)  # type: ignore[attr-defined]  # missing from the stubs
    writer = cv2.VideoWriter(str(footage), codec, FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {footage}")
    entries: list[dict[str, Any]] = []
    frame_index = 0

    def emit(frame: np.ndarray) -> None:
        nonlocal frame_index
        noisy = frame.astype(np.float32) + rng.normal(0, 2.5, frame.shape)
        blurred = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0.8)
        writer.write(blurred)
        frame_index += 1

    try:
        for _ in range(GAP_FRAMES):
            emit(background)
        for vehicle in VEHICLES:
            plate = render_plate(vehicle.printed, vehicle.style)
            frames = round(vehicle.seconds * FPS)
            first = frame_index
            boxes = []
            for i in range(frames):
                frame = background.copy()
                boxes.append(_draw_vehicle(frame, vehicle, plate, i / (frames - 1)))
                emit(frame)
            entries.append(
                {
                    "plate": vehicle.plate,
                    "printed": vehicle.printed,
                    "plate_format": vehicle.style.name,
                    "colour": vehicle.colour,
                    "first_frame": first,
                    "last_frame": frame_index - 1,
                    "plate_box_first": boxes[0],
                    "plate_box_last": boxes[-1],
                }
            )
            for _ in range(GAP_FRAMES):
                emit(background)
    finally:
        writer.release()
    document = {
        "footage": _relative(footage),
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "frames": frame_index,
        "seed": seed,
        "hotlist_plate": HOTLIST_PLATE,
        "agency_id": DEMO_AGENCY,
        "vehicles": entries,
    }
    manifest.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `platewatch demo render` (services/demo/render.py); do not edit by hand.\n"
    manifest.write_text(header + yaml.safe_dump(document, sort_keys=False))
    log.info("demo footage rendered", extra={"footage": str(footage), "frames": frame_index})
    return document


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path.resolve())


def load_manifest(path: Path = DEFAULT_MANIFEST) -> dict[str, Any]:
    """The manifest written by `render`; `footage` is resolved to an absolute path."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    footage = Path(document["footage"])
    document["footage"] = str(footage if footage.is_absolute() else REPO_ROOT / footage)
    return document
