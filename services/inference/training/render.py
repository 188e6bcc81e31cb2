"""Synthetic licence plates for training the plate recognizer (CRNN/CTC).

`render_sample(rng, fonts)` returns a BGR crop (what a detector would hand the recognizer: the whole
plate with some surroundings, or only the registration line) and its label: the registration
characters only, upper case, no separators. Words printed around the registration (US state
names, slogans, dealer frames, country codes, stickers) are drawn but never part of the label, so
the model learns to ignore them.

Formats come from `PLATE_STYLES` (data, not code branches): US (2:1, scenic backgrounds, state name
and slogan), EU (520x110, blue band), Brazil old (grey, city line) and Mercosur (blue top band).
Fonts: TrueType/OpenType faces found by `find_fonts()` (Debian `fonts-*` packages unpacked under
var/fonts, plus system fonts); fonts are training inputs only and never shipped.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

# The repository root (no settings import: the training venv has only numpy, PIL, cv2, jax).
REPO_ROOT = Path(__file__).resolve().parents[3]
FONT_DIRS = (REPO_ROOT / "var/fonts/root/usr/share/fonts", Path("/usr/share/fonts"))
# Faces that look nothing like plate lettering (scripts, maths, monospace code fonts with slashed zeros).
_SKIP_FONT_WORDS = ("italic", "oblique", "math", "light", "thin", "comfortaa", "code", "libertine", "mono")

US_STATES = (
    (
        "Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia Hawaii "
        "Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts Michigan "
        "Minnesota Mississippi Missouri Montana Nebraska Nevada New_Hampshire New_Jersey New_Mexico "
        "New_York North_Carolina North_Dakota Ohio Oklahoma Oregon Pennsylvania Rhode_Island "
        "South_Carolina South_Dakota Tennessee Texas Utah Vermont Virginia Washington West_Virginia "
        "Wisconsin Wyoming Washington_D.C."
    )
    .replace("_", " ")
    .split()
)
US_SLOGANS = (
    "Sunshine State",
    "Garden State",
    "First in Flight",
    "Ocean State",
    "The First State",
    "Land of Enchantment",
    "Live Free or Die",
    "Great Faces. Great Places.",
    "Famous Potatoes",
    "Land of Lincoln",
    "Empire State",
    "Taxation Without Representation",
    "The Silver State",
    "Green Mountain State",
    "Explore Minnesota",
    "dmv.ca.gov",
    "Sportsman's Paradise",
    "Keystone State",
    "Lone Star State",
    "Centennial State",
    "America's Dairyland",
    "Virginia is for Lovers",
    "Wild Wonderful",
    "Grand Canyon State",
    "Aloha State",
    "Peach State",
    "In God We Trust",
    "Jamestown 1607-2007",
)
DEALERS = ("TOYOTA", "HONDA OF OAK LAWN", "FORD", "CHEVROLET", "AUTO MALL", "NISSAN", "SUBARU", "KIA")
EU_COUNTRIES = ("SK", "D", "F", "I", "PL", "NL", "CZ", "A", "B", "E", "P", "H", "RO", "SLO", "HR", "LT")
BR_CITIES = ("SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA", "BA - SALVADOR")


@dataclass(frozen=True)
class PlateStyle:
    """One family of plates: canvas size, registration patterns (L letter, 9 digit, A either,
    ' ' / '-' a separator spot), and the furniture around the text."""

    name: str
    size: tuple[int, int]
    patterns: tuple[str, ...]
    weight: float
    text_height: tuple[float, float]  # registration cap height as a share of plate height
    text_center_y: float  # vertical centre of the registration as a share of plate height


PLATE_STYLES = (
    PlateStyle(
        "us",
        (300, 150),
        (
            "LLL 999",
            "999 LLL",
            "9LLL999",
            "LLL-9999",
            "LLL 9999",
            "99L 999",
            "999-999",
            "999999",
            "9LL 99",
            "LL-9999",
            "LLL999",
            "9L99999",
            "AAAAAA",
            "AAAAA",
            "AAAA",
            "AAAAAAA",
            "LL 99999",
            "999 9LL",
            "L99 9LL",
        ),
        0.55,
        (0.40, 0.56),
        0.52,
    ),
    PlateStyle(
        "eu",
        (520, 112),
        ("LL-999LL", "LL 999LL", "LLL-LL 999", "LL-999-LL", "LL 99999", "9L9 9999", "LLL 9999", "LL-LL 999"),
        0.3,
        (0.62, 0.72),
        0.5,
    ),
    PlateStyle("br-old", (400, 130), ("LLL-9999", "LLL 9999"), 0.07, (0.48, 0.56), 0.62),
    PlateStyle("br-mercosur", (400, 130), ("LLL9L99",), 0.08, (0.50, 0.58), 0.6),
)


@lru_cache(maxsize=1)
def find_fonts(extra_dirs: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """Plate-like font files (sans, regular to black) under FONT_DIRS and `extra_dirs`, sorted."""
    found: set[Path] = set()
    for directory in (*extra_dirs, *FONT_DIRS):
        if not directory.is_dir():
            continue
        for path in directory.rglob("*"):
            if path.suffix.lower() not in (".ttf", ".otf"):
                continue
            lower = path.name.lower()
            if any(word in lower for word in _SKIP_FONT_WORDS):
                continue
            if "serif" in lower and "sans" not in lower:
                continue
            found.add(path)
    # The same face shipped by two packages counts once.
    unique = {p.name: p for p in sorted(found)}
    return tuple(sorted(unique.values()))


# OpenCV's built-in stroke faces: always available, and what simple overlays and test frames use.
HERSHEY_FACES = {"hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX, "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX}
HERSHEY_SHARE = 0.08
# Text that is never a registration (label ""): the model must answer blank for it.
NEGATIVE_WORDS = (
    "Welcome to town",
    "Parking",
    "Exit only",
    "speed limit",
    "Open 24 hours",
    "Pizza",
    "Main Street",
    "No parking",
    "Drive thru",
    "Hotel",
    "Police",
    "Taxi",
    "car wash",
    "Sale",
    "Service",
    "Entrance",
    "one way",
    "Bus stop",
)
NEGATIVE_SHARE = 0.06


def _hershey_layer(text: str, face: int, stroke: int) -> Image.Image:
    thickness = 2 + stroke * 3
    (tw, th), baseline = cv2.getTextSize(text, face, 3.0, thickness)
    layer = np.zeros((th + baseline + 8, tw + 8), np.uint8)
    cv2.putText(layer, text, (4, th + 4), face, 3.0, 255, thickness, cv2.LINE_AA)
    rows = np.flatnonzero(layer.max(axis=1))
    cols = np.flatnonzero(layer.max(axis=0))
    if len(rows) and len(cols):
        layer = layer[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Image.fromarray(layer)


def _pick_font(rng: np.random.Generator, fonts: tuple[Path, ...]) -> Path:
    if rng.random() < HERSHEY_SHARE:
        return Path(list(HERSHEY_FACES)[int(rng.integers(len(HERSHEY_FACES)))])
    return fonts[int(rng.integers(len(fonts)))]


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def random_registration(rng: np.random.Generator, pattern: str) -> tuple[str, str]:
    """(printed text with separators, label) for a pattern."""
    printed = []
    for symbol in pattern:
        if symbol == "L":
            printed.append(LETTERS[rng.integers(26)])
        elif symbol == "9":
            printed.append(DIGITS[rng.integers(10)])
        elif symbol == "A":
            printed.append(ALPHABET[rng.integers(36)])
        else:
            printed.append(symbol)
    text = "".join(printed)
    return text, "".join(ch for ch in text if ch in ALPHABET)


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))  # type: ignore[return-value]


def _band_blue(rng: np.random.Generator) -> tuple[int, int, int]:
    """The EU band's blue (RGB)."""
    return int(rng.integers(0, 40)), int(rng.integers(40, 90)), int(rng.integers(140, 220))


def _dark_ink(rng: np.random.Generator) -> tuple[int, int, int]:
    choice = rng.random()
    if choice < 0.45:
        return _colour(rng, 0, 50)
    if choice < 0.7:  # navy / blue
        return (int(rng.integers(0, 60)), int(rng.integers(0, 70)), int(rng.integers(90, 180)))
    if choice < 0.82:  # dark red / maroon
        return (int(rng.integers(110, 190)), int(rng.integers(0, 40)), int(rng.integers(0, 50)))
    if choice < 0.92:  # dark green
        return (int(rng.integers(0, 50)), int(rng.integers(70, 130)), int(rng.integers(20, 70)))
    return _colour(rng, 0, 110)


def _draw_text_fit(
    canvas: Image.Image,
    text: str,
    font_path: Path,
    box: tuple[int, int, int, int],
    fill: tuple[int, int, int],
    stroke: int = 0,
) -> None:
    """Draw `text` scaled to fill `box` (x, y, w, h) exactly: glyph heights to h, width squeezed or
    stretched to w (condensed and wide plate faces)."""
    x, y, w, h = box
    if w < 2 or h < 2:
        return
    if font_path.name in HERSHEY_FACES:
        layer = _hershey_layer(text, HERSHEY_FACES[font_path.name], stroke)
    else:
        size = max(8, int(h * 1.4))
        font = _font(str(font_path), size)
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        tw, th = max(1, right - left), max(1, bottom - top)
        layer = Image.new("L", (int(tw) + 4, int(th) + 4), 0)
        ImageDraw.Draw(layer).text(
            (2 - left, 2 - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
        )
    layer = layer.resize((w, h), Image.Resampling.BILINEAR)
    canvas.paste(Image.new("RGB", (w, h), fill), (x, y), layer)


def _background(rng: np.random.Generator, size: tuple[int, int], base: tuple[int, int, int]) -> Image.Image:
    """A plate field: solid, gradient, or with soft scenic blobs (mountains, suns, sky)."""
    w, h = size
    field: np.ndarray = np.empty((h, w, 3), np.float32)
    field[:] = base
    if rng.random() < 0.5:
        other = np.array(_colour(rng, 120, 256), np.float32)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        mix = rng.uniform(0.2, 0.8)
        field = field * (1 - mix * t) + other * (mix * t)
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            radius = rng.uniform(0.1, 0.6) * h
            yy, xx = np.mgrid[0:h, 0:w]
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))[..., None].astype(np.float32)
            colour = np.array(_colour(rng, 60, 256), np.float32)
            field = field * (1 - 0.6 * blob) + colour * 0.6 * blob
    return Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))


def _separator(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int], ink: tuple
) -> None:
    """Something between character groups: a dash, a dot, or an emblem (circle, star, shield)."""
    x, y, w, h = box
    kind = rng.random()
    cx, cy = x + w / 2, y + h / 2
    if kind < 0.35:
        draw.rectangle((cx - w * 0.3, cy - h * 0.05, cx + w * 0.3, cy + h * 0.05), fill=ink)
    elif kind < 0.55:
        r = h * 0.07
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ink)
    elif kind < 0.85:
        r = min(w, h) * rng.uniform(0.3, 0.5)
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=_colour(rng), outline=_colour(rng, 0, 120), width=2
        )
        if rng.random() < 0.5:
            r2 = r * 0.5
            draw.ellipse((cx - r2, cy - r2, cx + r2, cy + r2), fill=_colour(rng))
    else:
        points = []
        r = min(w, h) * 0.45
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.45
            angle = math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
        draw.polygon(points, fill=_colour(rng))


def _layout_registration(
    canvas: Image.Image,
    rng: np.random.Generator,
    printed: str,
    font: Path,
    area: tuple[int, int, int, int],
    ink: tuple[int, int, int],
) -> tuple[int, int, int, int]:
    """Draw the registration into `area`, groups split at separators; returns its bounding box."""
    x, y, w, h = area
    groups = [g for g in printed.replace("-", " ").split(" ") if g]
    separators = max(0, len(groups) - 1)
    n_chars = sum(len(g) for g in groups)
    gap = rng.uniform(0.25, 0.7) if separators else 0.0
    units = n_chars + gap * separators
    char_w = w / max(units, 1)
    draw = ImageDraw.Draw(canvas)
    cursor = float(x)
    stroke = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
    for index, group in enumerate(groups):
        gw = round(char_w * len(group))
        _draw_text_fit(canvas, group, font, (round(cursor), y, gw, h), ink, stroke)
        cursor += gw
        if index < len(groups) - 1:
            sw = char_w * gap
            if rng.random() < 0.6:
                _separator(draw, rng, (int(cursor), y, max(2, int(sw)), h), ink)
            cursor += sw
    return x, y, int(cursor) - x, h


_Style = TypeVar("_Style", PlateStyle, "TwoRowStyle")


def _weighted_pick(rng: np.random.Generator, styles: tuple[_Style, ...]) -> _Style:
    """One of `styles`, each drawn with its share of their `weight`s (one draw from `rng`)."""
    weights = np.array([style.weight for style in styles])
    return styles[int(rng.choice(len(styles), p=weights / weights.sum()))]


def render_plate(
    rng: np.random.Generator, fonts: tuple[Path, ...], side_art_share: float = 0.0
) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
    """An un-augmented plate: (RGB array, registration box x y w h, label).
    `side_art_share`: the share of US plates with a picture beside the registration (`_side_art`);
    where it is drawn, the box takes it in on most plates, as a text detector's line box does. A
    share of 0 draws nothing more, so the random stream stays as it was."""
    style = _weighted_pick(rng, PLATE_STYLES)
    w, h = style.size
    w = int(w * rng.uniform(0.9, 1.1))
    printed, label = random_registration(rng, style.patterns[int(rng.integers(len(style.patterns)))])
    font = _pick_font(rng, fonts)
    small_font = fonts[int(rng.integers(len(fonts)))]
    text_h = int(h * rng.uniform(*style.text_height))
    cy = int(h * (style.text_center_y + rng.uniform(-0.04, 0.04)))
    left_margin = w * rng.uniform(0.05, 0.12)
    right_margin = w * rng.uniform(0.05, 0.12)

    if style.name == "us":
        base = _colour(rng, 170, 256) if rng.random() < 0.75 else _colour(rng, 0, 256)
        plate = _background(rng, (w, h), base)
        ink = _dark_ink(rng)
        if sum(base) < 300:  # dark plate: light letters
            ink = _colour(rng, 200, 256)
        draw = ImageDraw.Draw(plate)
        top_h = int(h * rng.uniform(0.12, 0.2))
        state = US_STATES[int(rng.integers(len(US_STATES)))]
        if rng.random() < 0.5:
            state = state.upper()
        sw = int(w * rng.uniform(0.35, 0.8))
        _draw_text_fit(plate, state, small_font, ((w - sw) // 2, int(h * 0.05), sw, top_h), _dark_ink(rng))
        if rng.random() < 0.8:
            slogan = US_SLOGANS[int(rng.integers(len(US_SLOGANS)))]
            bh = int(h * rng.uniform(0.08, 0.14))
            bw = min(int(w * 0.85), int(bh * len(slogan) * rng.uniform(0.45, 0.65)))
            _draw_text_fit(plate, slogan, small_font, ((w - bw) // 2, int(h * 0.84), bw, bh), _dark_ink(rng))
        for corner_x in (int(w * 0.03), int(w * 0.83)):  # registration stickers
            if rng.random() < 0.5:
                sx, sy = corner_x + int(rng.integers(0, 10)), int(h * 0.04)
                draw.rectangle((sx, sy, sx + int(w * 0.13), sy + int(h * 0.15)), fill=_colour(rng))
                _draw_text_fit(
                    plate,
                    str(rng.integers(1, 99)),
                    small_font,
                    (sx + 3, sy + 3, int(w * 0.06), int(h * 0.08)),
                    (0, 0, 0),
                )
        for hx in (0.2, 0.8):  # bolt holes
            if rng.random() < 0.5:
                r = h * 0.04
                draw.ellipse((w * hx - r, h * 0.1 - r, w * hx + r, h * 0.1 + r), fill=_colour(rng, 0, 90))
    elif style.name == "eu":
        base = (int(rng.integers(225, 256)),) * 3 if rng.random() < 0.85 else (250, 210, 40)
        plate = _background(rng, (w, h), base) if rng.random() < 0.2 else Image.new("RGB", (w, h), base)
        ink = _colour(rng, 0, 40)
        draw = ImageDraw.Draw(plate)
        band = int(w * rng.uniform(0.07, 0.1))
        draw.rectangle(
            (0, 0, band, h),
            fill=_band_blue(rng),
        )
        for i in range(12):
            angle = i * math.pi / 6
            star_x, star_y = band / 2 + band * 0.28 * math.cos(angle), h * 0.3 + band * 0.28 * math.sin(angle)
            draw.ellipse((star_x - 2, star_y - 2, star_x + 2, star_y + 2), fill=(240, 210, 0))
        _draw_text_fit(
            plate,
            EU_COUNTRIES[int(rng.integers(len(EU_COUNTRIES)))],
            small_font,
            (int(band * 0.2), int(h * 0.62), int(band * 0.6), int(h * 0.25)),
            (250, 250, 250),
        )
        left_margin = band + w * rng.uniform(0.02, 0.05)
        right_margin = w * rng.uniform(0.02, 0.06)
        draw.rectangle((1, 1, w - 2, h - 2), outline=ink, width=int(rng.integers(1, 4)))
    elif style.name == "br-old":
        base = _colour(rng, 170, 220) if rng.random() < 0.7 else (200, 40, 40)
        plate = Image.new("RGB", (w, h), base)
        ink = _colour(rng, 0, 40) if base[1] > 100 else (240, 240, 240)
        city = BR_CITIES[int(rng.integers(len(BR_CITIES)))]
        _draw_text_fit(
            plate, city, small_font, (int(w * 0.2), int(h * 0.05), int(w * 0.6), int(h * 0.17)), ink
        )
        ImageDraw.Draw(plate).rectangle((2, 2, w - 3, h - 3), outline=ink, width=3)
    else:  # br-mercosur
        plate = Image.new("RGB", (w, h), (int(rng.integers(230, 256)),) * 3)
        ink = _colour(rng, 0, 40)
        draw = ImageDraw.Draw(plate)
        draw.rectangle((0, 0, w, int(h * 0.2)), fill=(20, 50, 160))
        _draw_text_fit(
            plate,
            "BRASIL",
            small_font,
            (int(w * 0.38), int(h * 0.03), int(w * 0.24), int(h * 0.14)),
            (250, 250, 250),
        )
        draw.rectangle((int(w * 0.88), int(h * 0.03), int(w * 0.96), int(h * 0.16)), fill=(30, 150, 60))
        draw.rectangle((1, 1, w - 2, h - 2), outline=(20, 20, 20), width=2)

    art_side = None
    if side_art_share > 0 and style.name == "us" and rng.random() < side_art_share:
        art_side = "left" if rng.random() < 0.7 else "right"
        art_w = w * rng.uniform(0.14, 0.28)
        if art_side == "left":
            left_margin += art_w
        else:
            right_margin += art_w
    area_w = int(w - left_margin - right_margin)
    area = (int(left_margin), max(0, cy - text_h // 2), area_w, text_h)
    box = _layout_registration(plate, rng, printed, font, area, ink)
    if art_side is not None:
        art_box = _side_art(plate, rng, fonts, box, art_side, (w, h), ink)
        if rng.random() < 0.75:
            x0, y0 = min(box[0], art_box[0]), min(box[1], art_box[1])
            x1 = max(box[0] + box[2], art_box[0] + art_box[2])
            y1 = max(box[1] + box[3], art_box[1] + art_box[3])
            box = (x0, y0, x1 - x0, y1 - y0)
    return np.asarray(plate), box, label


# Each kind of side art: its share, its height range against the registration's, its width against
# its own height.
_SIDE_ART = (
    ("stacked", 0.25, (0.75, 0.95), 0.45),
    ("logo", 0.15, (0.5, 0.9), 1.2),
    ("silhouette", 0.2, (0.8, 1.5), 0.8),
    ("emblem", 0.15, (0.6, 1.2), 1.0),
    ("tower", 0.1, (1.0, 1.6), 0.4),
    ("number", 0.15, (0.45, 0.7), 0.9),
)
SIDE_ART_KINDS = tuple(kind for kind, _, _, _ in _SIDE_ART)
SIDE_ART_WEIGHTS = tuple(share for _, share, _, _ in _SIDE_ART)
_SIDE_ART_SHAPES = {kind: (heights, width) for kind, _, heights, width in _SIDE_ART}


def _side_art(
    plate: Image.Image,
    rng: np.random.Generator,
    fonts: tuple[Path, ...],
    box: tuple[int, int, int, int],
    side: str,
    size: tuple[int, int],
    ink: tuple[int, int, int],
) -> tuple[int, int, int, int]:
    """Draw a picture beside the registration `box` on `side` of a US plate of `size`: stacked small
    letters, a small word over rings, a silhouette (cactus, figure), a round emblem, a striped tower,
    or a small number in another colour. None of it is part of the label: real specialty plates
    carry such art next to the registration, and a text detector's line box takes it in. Returns the
    art's box (x, y, w, h) on the plate (outlines may reach one pixel past it). Needs room on that
    side: render_plate reserves 14-28 % of the plate's width for it."""
    w, h = size
    bx, by, bw, bh = box
    gap = w * rng.uniform(0.005, 0.04)
    room = (bx - gap - w * 0.02) if side == "left" else (w * 0.98 - (bx + bw) - gap)
    kind = SIDE_ART_KINDS[int(rng.choice(len(SIDE_ART_KINDS), p=SIDE_ART_WEIGHTS))]
    heights, width_per_height = _SIDE_ART_SHAPES[kind]
    art_h = min(h * 0.9, bh * rng.uniform(*heights))
    art_w = max(4.0, min(room, art_h * width_per_height * rng.uniform(0.8, 1.25)))
    x0 = bx - gap - art_w if side == "left" else bx + bw + gap
    cy = by + bh / 2 + bh * rng.uniform(-0.12, 0.12)
    y0 = max(0.0, min(h - art_h, cy - art_h / 2))
    draw = ImageDraw.Draw(plate)
    colour = _colour(rng, 0, 200)
    small_font = fonts[int(rng.integers(len(fonts)))]
    ix, iy, iw, ih = int(x0), int(y0), max(2, int(art_w)), max(2, int(art_h))
    if kind == "stacked":
        letters = "".join(LETTERS[int(rng.integers(len(LETTERS)))] for _ in range(2))
        fill = ink if rng.random() < 0.6 else colour
        half = ih // 2
        _draw_text_fit(plate, letters[0], small_font, (ix, iy, iw, int(half * 0.9)), fill)
        _draw_text_fit(plate, letters[1], small_font, (ix, iy + half, iw, int(half * 0.9)), fill)
    elif kind == "logo":
        word = "".join(LETTERS[int(rng.integers(len(LETTERS)))] for _ in range(int(rng.integers(2, 5))))
        _draw_text_fit(plate, word, small_font, (ix, iy, iw, int(ih * 0.45)), colour)
        rings = int(rng.integers(2, 6))
        radius = min(iw / (rings + 1), ih * 0.25)
        for index in range(rings):
            cx = ix + iw * (index + 1) / (rings + 1)
            cy_ring = iy + ih * 0.75
            draw.ellipse(
                (cx - radius, cy_ring - radius, cx + radius, cy_ring + radius),
                outline=_colour(rng),
                width=max(1, int(radius * 0.25)),
            )
    elif kind == "silhouette":
        if rng.random() < 0.5:  # a cactus: a trunk and one or two arms
            trunk = iw * 0.3
            tx = ix + (iw - trunk) / 2
            draw.rounded_rectangle((tx, iy, tx + trunk, iy + ih), radius=trunk / 2, fill=colour)
            for arm_side in (0, 1)[: int(rng.integers(1, 3))]:
                ay = iy + ih * rng.uniform(0.25, 0.55)
                ax = ix if arm_side == 0 else tx + trunk
                draw.rectangle((ax, ay, ax + iw * 0.35, ay + trunk * 0.6), fill=colour)
                up_x = ix if arm_side == 0 else ix + iw - trunk * 0.7
                draw.rounded_rectangle(
                    (up_x, ay - ih * 0.25, up_x + trunk * 0.7, ay + trunk * 0.6),
                    radius=trunk / 3,
                    fill=colour,
                )
        else:  # a figure or animal: a random polygon
            points = int(rng.integers(6, 11))
            angles = np.sort(rng.uniform(0, 2 * math.pi, points))
            radii = rng.uniform(0.55, 1.0, points)
            polygon = [
                (ix + iw / 2 + iw / 2 * r * math.cos(a), iy + ih / 2 + ih / 2 * r * math.sin(a))
                for a, r in zip(angles, radii, strict=True)
            ]
            draw.polygon(polygon, fill=colour)
    elif kind == "emblem":
        side_len = min(iw, ih)
        ex, ey = ix + (iw - side_len) / 2, iy + (ih - side_len) / 2
        draw.ellipse(
            (ex, ey, ex + side_len, ey + side_len),
            fill=_colour(rng),
            outline=colour,
            width=max(1, side_len // 10),
        )
        inner = side_len * rng.uniform(0.3, 0.6)
        ox, oy = ex + (side_len - inner) / 2, ey + (side_len - inner) / 2
        draw.ellipse((ox, oy, ox + inner, oy + inner), fill=colour)
    elif kind == "tower":
        base = _colour(rng, 150, 256)
        draw.polygon(
            [(ix + iw * 0.2, iy + ih), (ix + iw * 0.35, iy), (ix + iw * 0.65, iy), (ix + iw * 0.8, iy + ih)],
            fill=base,
        )
        stripes = int(rng.integers(2, 5))
        for index in range(stripes):
            sy = iy + ih * (index + 0.5) / (stripes + 0.5)
            draw.rectangle((ix + iw * 0.25, sy, ix + iw * 0.75, sy + ih / (stripes * 3)), fill=colour)
    else:  # a small number in another colour (a team or race number)
        digits = str(int(rng.integers(1, 100)))
        _draw_text_fit(plate, digits, small_font, (ix, iy, iw, ih), colour, int(rng.integers(0, 2)))
    return ix, iy, iw, ih


@dataclass(frozen=True)
class TwoRowStyle:
    """A family of two-row (stacked) plates, mostly motorcycles': plate size (width, height), the
    registration's patterns as (top row, bottom row) pairs (symbols as in `PlateStyle.patterns`; the
    label is the top row's characters then the bottom row's), the style's share of renders
    (`weight`), the height of each row's text as a share of the plate height (a range), each row's
    vertical centre as a share of the plate height, the (plate, ink) colours to pick from, an
    optional band across the top (colour, word) such as Mercosur's, and optional small lines to
    print above the rows (a city and state)."""

    name: str
    size: tuple[int, int]
    rows: tuple[tuple[str, str], ...]
    weight: float
    row_height: tuple[float, float]
    row_centres: tuple[float, float]
    colours: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...]
    band: tuple[tuple[int, int, int], str] | None = None
    small_top_line: tuple[str, ...] = ()


_BLACK, _WHITE, _GREY, _YELLOW = (20, 20, 20), (245, 245, 245), (190, 190, 190), (250, 205, 30)
TWO_ROW_STYLES = (
    # Brazil's old motorcycle plate: city and state in small letters, LLL over 9999.
    TwoRowStyle(
        name="br-old-moto",
        size=(187, 136),
        rows=(("LLL", "9999"),),
        weight=0.3,
        row_height=(0.28, 0.33),
        row_centres=(0.37, 0.76),
        colours=((_GREY, _BLACK), ((200, 40, 40), _WHITE)),
        small_top_line=BR_CITIES,
    ),
    # Mercosur motorcycle plate: the blue BRASIL band, LLL over 9L99.
    TwoRowStyle(
        name="br-mercosur-moto",
        size=(200, 170),
        rows=(("LLL", "9L99"),),
        weight=0.3,
        row_height=(0.28, 0.32),
        row_centres=(0.41, 0.77),
        colours=((_WHITE, _BLACK),),
        band=((20, 50, 160), "BRASIL"),
    ),
    # UK square plate: LL99 over LLL, black on white (front) or yellow (rear).
    TwoRowStyle(
        name="uk-square",
        size=(279, 203),
        rows=(("LL99", "LLL"),),
        weight=0.2,
        row_height=(0.30, 0.34),
        row_centres=(0.30, 0.72),
        colours=((_WHITE, _BLACK), (_YELLOW, _BLACK)),
    ),
    # German two-row plate: district and letters over the number.
    TwoRowStyle(
        name="de-two-row",
        size=(280, 200),
        rows=(("L LL", "9999"), ("LL L", "999"), ("LLL LL", "99")),
        weight=0.2,
        row_height=(0.30, 0.34),
        row_centres=(0.30, 0.72),
        colours=((_WHITE, _BLACK),),
    ),
)


def render_two_row_plate(
    rng: np.random.Generator, fonts: tuple[Path, ...], row_spacing: float = 1.0
) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
    """An un-augmented two-row plate (`TWO_ROW_STYLES`): (RGB array, box x y w h around both rows,
    label: the top row's characters then the bottom row's). `row_spacing` scales the distance between
    the rows' centres about their midpoint (below 1: rows set closer than the style's)."""
    style = _weighted_pick(rng, TWO_ROW_STYLES)
    row_centres = style.row_centres
    if row_spacing != 1.0:  # (1.0 keeps the style's centres exactly: the same renders as before)
        top, bottom = row_centres
        middle = (top + bottom) / 2
        row_centres = (middle + (top - middle) * row_spacing, middle + (bottom - middle) * row_spacing)
    w, h = style.size
    w = int(w * rng.uniform(0.92, 1.08))
    base, ink = style.colours[int(rng.integers(len(style.colours)))]
    plate = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(plate)
    small_font = fonts[int(rng.integers(len(fonts)))]
    if style.band is not None:
        band_colour, word = style.band
        draw.rectangle((0, 0, w, int(h * 0.18)), fill=band_colour)
        _draw_text_fit(
            plate, word, small_font, (int(w * 0.3), int(h * 0.03), int(w * 0.4), int(h * 0.12)), _WHITE
        )
    if style.small_top_line:
        line = style.small_top_line[int(rng.integers(len(style.small_top_line)))]
        _draw_text_fit(
            plate, line, small_font, (int(w * 0.12), int(h * 0.06), int(w * 0.76), int(h * 0.12)), ink
        )
    draw.rectangle((1, 1, w - 2, h - 2), outline=ink, width=int(rng.integers(2, 5)))
    font = _pick_font(rng, fonts)
    patterns = style.rows[int(rng.integers(len(style.rows)))]
    text_h = int(h * rng.uniform(*style.row_height))
    boxes, label = [], ""
    for pattern, centre in zip(patterns, row_centres, strict=True):
        printed, row_label = random_registration(rng, pattern)
        # Rows are centred; each character about 0.6 of its height wide (plate faces are condensed).
        row_w = min(int(w * 0.88), int(text_h * rng.uniform(0.55, 0.7) * len(printed)))
        cy = int(h * (centre + rng.uniform(-0.02, 0.02)))
        area = ((w - row_w) // 2, max(0, cy - text_h // 2), row_w, text_h)
        boxes.append(_layout_registration(plate, rng, printed, font, area, ink))
        label += row_label
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return np.asarray(plate), (x0, y0, x1 - x0, y1 - y0), label


def _perspective(image: np.ndarray, rng: np.random.Generator, strength: float, border: tuple) -> np.ndarray:
    h, w = image.shape[:2]
    jitter = strength * np.array([w, h], np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * jitter
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric and resolution damage on an RGB crop: glare, shadow, night, blur, low resolution,
    noise, JPEG. Returns RGB uint8."""
    out: np.ndarray = image.astype(np.float32)
    h, w = out.shape[:2]
    if rng.random() < 0.3:  # glare: a bright elliptical spot
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.1, 0.6) * w, rng.uniform(0.2, 1.0) * h
        spot = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))[..., None]
        out = out + spot * rng.uniform(60, 200)
    if rng.random() < 0.25:  # hard shadow across part of the plate
        x0 = rng.uniform(0, w)
        mask = (np.arange(w)[None, :] + np.arange(h)[:, None] * rng.uniform(-1, 1)) > x0
        out[mask] *= rng.uniform(0.35, 0.75)
    contrast, brightness = rng.uniform(0.5, 1.3), rng.uniform(-60, 40)
    out = (out - 128) * contrast + 128 + brightness
    if rng.random() < 0.2:  # night: dark, tinted, noisy
        out = out * rng.uniform(0.15, 0.45) + np.array(_colour(rng, 0, 40), np.float32)
    if rng.random() < 0.15:  # infrared-like grey
        out[:] = out.mean(axis=2, keepdims=True)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), rng.uniform(0.3, 1.5))
    if rng.random() < 0.2:  # horizontal motion blur
        k = int(rng.integers(3, 9))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    if rng.random() < 0.5:  # low resolution
        factor = rng.uniform(0.2, 0.7)
        small = cv2.resize(
            out, (max(8, int(w * factor)), max(4, int(h * factor))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        noise = rng.normal(0, rng.uniform(2, 14), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, encoded = cv2.imencode(
            ".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 90))]
        )
        if ok:
            decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
            if decoded is not None:
                out = decoded[..., ::-1]
    return np.ascontiguousarray(out)


def render_negative(rng: np.random.Generator, fonts: tuple[Path, ...]) -> np.ndarray:
    """A text line that is not a registration (signage, a state name, a slogan, mixed case), BGR."""
    kind = rng.random()
    if kind < 0.5:
        text = NEGATIVE_WORDS[int(rng.integers(len(NEGATIVE_WORDS)))]
    elif kind < 0.75:
        text = US_STATES[int(rng.integers(len(US_STATES)))]
    else:
        text = US_SLOGANS[int(rng.integers(len(US_SLOGANS)))]
    # Signage stays mixed case: an upper-case word can be a vanity registration.
    if kind >= 0.5 and rng.random() < 0.3:
        text = text.upper()
    h = int(rng.integers(24, 90))
    w = max(16, int(h * len(text) * rng.uniform(0.45, 0.7)))
    base = _colour(rng)
    line = _background(rng, (w + h, int(h * 1.4)), base)
    ink = _colour(rng, 0, 70) if sum(base) > 380 else _colour(rng, 190, 256)
    _draw_text_fit(line, text, _pick_font(rng, fonts), (h // 2, int(h * 0.2), w, h), ink)
    out = augment(np.asarray(line), rng)
    return np.ascontiguousarray(out[..., ::-1])


def _edge_distractor(
    surround: np.ndarray, rng: np.random.Generator, text_box: tuple[float, float, float, float], left: bool
) -> float:
    """Draw a symbol just outside one end of the registration line (an EU band sliver, a coat of arms,
    a round sticker or emblem, a bar): what a text detector's box takes in at a plate's edge and a
    reader must not read as a character. Returns how far (pixels) it reaches beyond the line's end."""
    x, y, w, h = text_box
    gap = h * rng.uniform(0.05, 0.3)
    width = h * rng.uniform(0.25, 0.7)
    height = h * rng.uniform(0.6, 1.1)
    x0 = x - gap - width if left else x + w + gap
    y0 = y + (h - height) / 2 + h * rng.uniform(-0.1, 0.1)
    image = Image.fromarray(surround)
    draw = ImageDraw.Draw(image)
    box = (x0, y0, x0 + width, y0 + height)
    kind = rng.random()
    if kind < 0.3:
        # A sliver of the EU band: blue with a few yellow dots.
        draw.rectangle(box, fill=_band_blue(rng))
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = x0 + width * rng.uniform(0.2, 0.8), y0 + height * rng.uniform(0.1, 0.6)
            draw.ellipse((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5), fill=(240, 210, 0))
    elif kind < 0.55:
        # A coat of arms: a shield in two or three colours.
        mid = x0 + width / 2
        points = [
            (x0, y0),
            (x0 + width, y0),
            (x0 + width, y0 + height * 0.6),
            (mid, y0 + height),
            (x0, y0 + height * 0.6),
        ]
        draw.polygon(points, fill=_colour(rng), outline=_colour(rng, 0, 120))
        draw.rectangle(
            (x0 + width * 0.2, y0 + height * 0.25, x0 + width * 0.8, y0 + height * 0.4), fill=_colour(rng)
        )
    elif kind < 0.85:
        # A round sticker or emblem.
        radius = min(width, height) / 2
        cx, cy = x0 + width / 2, y0 + height / 2
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            fill=_colour(rng),
            outline=_colour(rng),
            width=2,
        )
    else:
        # A bar (frame edge, screw head row, a dash at the end).
        draw.rectangle((x0 + width * 0.35, y0, x0 + width * 0.65, y0 + height), fill=_dark_ink(rng))
    surround[:] = np.asarray(image)
    return gap + width


def plate_on_car(
    rng: np.random.Generator, fonts: tuple[Path, ...], side_art_share: float = 0.0
) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int, int, int], str]:
    """A rendered plate on a car (RGB): bodywork around it, sometimes a dealer frame with a name.
    Returns (image, (pad, plate height, plate width), registration box x y w h on the plate, label);
    the plate's top-left corner is at (pad, pad) in the image. `side_art_share`: as render_plate's."""
    return _on_car(rng, fonts, *render_plate(rng, fonts, side_art_share))


def two_row_plate_on_car(
    rng: np.random.Generator, fonts: tuple[Path, ...], row_spacing: float = 1.0
) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int, int, int], str]:
    """`plate_on_car` for a two-row plate (`render_two_row_plate`, with its `row_spacing`); the box
    holds both rows."""
    return _on_car(rng, fonts, *render_two_row_plate(rng, fonts, row_spacing))


def _on_car(
    rng: np.random.Generator,
    fonts: tuple[Path, ...],
    plate: np.ndarray,
    box: tuple[int, int, int, int],
    label: str,
) -> tuple[np.ndarray, tuple[int, int, int], tuple[int, int, int, int], str]:
    """`plate` (RGB, its registration `box`, `label`) on a car, as `plate_on_car` returns it."""
    bx, by, bw, bh = box
    ph, pw = plate.shape[:2]
    # The plate on a car: a frame (dealer name), then bodywork around it.
    pad = int(ph * 0.5)
    surround: np.ndarray = np.empty((ph + 2 * pad, pw + 2 * pad, 3), np.uint8)
    surround[:] = _colour(rng)
    surround = cv2.add(surround, rng.integers(0, 30, surround.shape, dtype=np.uint8))
    if rng.random() < 0.4:
        frame_w = int(ph * rng.uniform(0.04, 0.12))
        frame_colour = _colour(rng, 0, 80) if rng.random() < 0.7 else _colour(rng, 150, 256)
        cv2.rectangle(
            surround,
            (pad - frame_w, pad - frame_w),
            (pad + pw + frame_w, pad + ph + frame_w),
            frame_colour,
            -1,
        )
        if rng.random() < 0.5:
            dealer = Image.fromarray(surround)
            fh = max(6, int(frame_w * 1.6))
            fw = int(pw * rng.uniform(0.3, 0.6))
            _draw_text_fit(
                dealer,
                DEALERS[int(rng.integers(len(DEALERS)))],
                fonts[int(rng.integers(len(fonts)))],
                (pad + (pw - fw) // 2, pad + ph - fh // 3, fw, fh),
                _colour(rng, 180, 256),
            )
            surround = np.asarray(dealer).copy()
    surround[pad : pad + ph, pad : pad + pw] = (
        plate
        if surround[pad : pad + ph, pad : pad + pw].shape == plate.shape
        else surround[pad : pad + ph, pad : pad + pw]
    )
    return surround, (pad, ph, pw), (bx, by, bw, bh), label


def render_sample(
    rng: np.random.Generator,
    fonts: tuple[Path, ...],
    edge_distractor_share: float = 0.0,
    side_art_share: float = 0.0,
) -> tuple[np.ndarray, str]:
    """One training crop (BGR uint8, variable size) and its label ("" for a non-plate line).
    `edge_distractor_share`: the share of registration-line crops with a symbol drawn just past one
    end of the line and taken into the crop (`_edge_distractor`); 0 keeps the random stream as it was.
    `side_art_share`: the share of US plates with a picture beside the registration (render_plate);
    above 0 it changes the random stream."""
    if rng.random() < NEGATIVE_SHARE:
        return render_negative(rng, fonts), ""
    surround, (pad, ph, pw), (bx, by, bw, bh), label = plate_on_car(rng, fonts, side_art_share)
    if rng.random() < 0.55:
        # Whole plate with a margin (like the US crops).
        m = rng.uniform(-0.02, 0.12, 4)
        x0, y0 = pad - m[0] * pw, pad - m[1] * ph
        x1, y1 = pad + pw + m[2] * pw, pad + ph + m[3] * ph
    else:
        # The registration line only (like a text detector's box), loose or tight.
        m = rng.uniform(-0.03, 0.25, 4)
        x0, y0 = pad + bx - m[0] * bh, pad + by - m[1] * bh
        x1, y1 = pad + bx + bw + m[2] * bh, pad + by + bh + m[3] * bh
        if edge_distractor_share and rng.random() < edge_distractor_share:
            left = bool(rng.random() < 0.6)
            reach = _edge_distractor(surround, rng, (pad + bx, pad + by, bw, bh), left)
            # The cut takes the symbol in, wholly or in part.
            taken = reach * rng.uniform(0.5, 1.1)
            if left:
                x0 = min(x0, pad + bx - taken)
            else:
                x1 = max(x1, pad + bx + bw + taken)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    corners += rng.normal(0, 0.025 * (y1 - y0), (4, 2)).astype(np.float32)
    out_h = int(rng.uniform(24, 110))
    out_w = max(16, int(out_h * (x1 - x0) / max(1.0, y1 - y0) * rng.uniform(0.85, 1.15)))
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    crop = cv2.warpPerspective(
        surround, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if rng.random() < 0.3:
        crop = _perspective(crop, rng, 0.04, _colour(rng))
    crop = augment(crop, rng)
    return np.ascontiguousarray(crop[..., ::-1]), label


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a BGR image (debug dumps)."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., ::-1]).save(buffer, format="PNG")
    return buffer.getvalue()
