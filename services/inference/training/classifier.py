"""Train the plate classifier (is this text line a plate's registration?) on CPU with JAX, and export it.

The detector finds every piece of text in a frame; the reader reads it. Car badges (CITROEN,
OCTAVIA, 2.0 TDI), road signs (EXIT 79B), shop signs, watermarks and burned-in timestamps then come
out as "plates". This small CNN looks at the line with its surroundings (the plate body, border and
band around a registration; bodywork around a badge; a sign's panel) in colour and says which it is.

    OMP_NUM_THREADS=1 var/recognizer/venv/bin/python -m services.inference.training.classifier \
        --real var/classifier/lines-train.pkl var/classifier/lines-usscene-train.pkl \
        --rendered var/classifier/lines-rows-s31001-0.65.pkl var/classifier/lines-rows-s31002-0.8.pkl \
        var/classifier/lines-rows-s31003-1.0.pkl --rendered-share 0.1 \
        --out var/classifier/run11 --seed 1 --pool 20000 --onnx var/classifier/run11/plate_cls.onnx

(the shipped model, run11; each `--real` pickle comes from `collect_lines.py`, the second from
train-half US crops in train-half photos, `frame_variants us-scene --split train`; each `--rendered`
one from `collect_lines.py --split rendered` over rendered two-row frames; see
services/inference/models/MODEL_CARD.md).

Data (fixed by --seed: sample i of the synthetic pool comes from rng([seed, i])):
- synthetic registrations: `render.plate_on_car` and plain plates (one light colour, large
  lettering, maybe a border and a blue band), cut around the registration line with the
  classifier's margins (`postprocess.CLASSIFIER_MARGINS`, jittered), perspective, `render.augment`;
- synthetic non-registrations (`render_non_plate`): sign panels, car badges and model codes,
  burned-in overlays (timestamps, camera names), other text on a plate (state names, slogans) and
  the recognizer's own negatives (`render.render_negative`); a quarter of the badge texts are
  registration-like strings, so the model must judge the look, not the characters;
- real lines (`--real`, from `collect_lines.py` over the "train" half of the dev sets only),
  `--real-share` of each batch, jittered and augmented;
- lines of rendered frames (`--rendered`, `collect_lines.py --split rendered`: two-row plates as the
  engine scores them, and the frames' signs and badges), `--rendered-share` of the rest of each
  batch, jittered and augmented as the real lines are.
A separate synthetic validation pool (seed + 1000) is never trained on.

Output: <out>/params.pkl, <out>/report.json (validation figures), and the ONNX (`--onnx`):
`input` float32 [N, 3, 32, 128] (model_io.cls_input) -> `plate_prob` float32 [N, 1].
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image, ImageDraw

from services.inference import model_io, postprocess
from services.inference.training import render
from services.inference.training.batches import jittered_borders
from services.inference.training.export import fold_batch_norm
from services.inference.training.train import batch_norm

OPSET = 13
# (name, in, out, max-pool 2x2 after). 3x3 conv + batch norm + ReLU each; then global average and
# max pooling side by side, and one dense unit.
LAYERS: list[tuple[str, int, int, bool]] = [
    ("c1", 3, 16, True),
    ("c2", 16, 32, True),
    ("c3", 32, 64, True),
    ("c4", 64, 96, False),
]
FEATURES = 2 * LAYERS[-1][2]
PLAIN_PLATE_SHARE = 0.35
# Thresholds the training report gives kept / rejected shares at.
REPORT_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)

BADGES = (
    "CITROEN RENAULT PEUGEOT SKODA OCTAVIA FABIA LAGUNA CLIO MEGANE TOYOTA COROLLA CAMRY PRIUS HONDA "
    "CIVIC ACCORD FORD FOCUS FIESTA MONDEO VOLKSWAGEN GOLF PASSAT POLO AUDI BMW MERCEDES-BENZ OPEL "
    "ASTRA CORSA KIA HYUNDAI NISSAN ALTIMA MAZDA SUBARU OUTBACK VOLVO FIAT SEAT DACIA LOGAN LADA "
    "TESLA JEEP CHEVROLET SILVERADO DODGE GMC BUICK LEXUS ACURA QUATTRO HYBRID XDRIVE 4MATIC TDI "
    "TSI GTI AWD 4X4 V6 V8 F-150 RAV4 CR-V X5 A4 A6 320d 530i E220 C200 2.0 1.6 TURBO Sport"
).split()
OVERLAY_WORDS = ("CAM", "CAMERA", "LANE", "ZONE", "NORTH", "SOUTH", "EB", "WB", "KM/H", "MPH", "REC")
SIGN_WORDS = (
    "EXIT", "STOP", "ONE WAY", "PARKING", "NO PARKING", "MILE", "SPEED LIMIT", "TAXI", "BUS ONLY",
    "HOTEL", "PHARMACY", "OPEN", "SALE", "CAR WASH", "SERVICE", "TIRES", "DINER", "GAS", "ENTRANCE",
)  # fmt: skip


# ---------------------------------------------------------------------------------------- samples
def _cut(image: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Cut text `box` (x, y, w, h) of an RGB image the way the pipeline cuts a detected line for the
    classifier (jittered margins, a little corner noise, a line-sized output), damaged by
    `render.augment`. Returns the classifier input (BGR [32, 128, 3])."""
    x, y, w, h = box
    # Wider than CLASSIFIER_MARGINS: the pipeline cuts around the detector's box, which is itself
    # looser than the glyphs by a varying amount (glyph heights per side, measured on the cuts).
    along = rng.uniform(0.3, 1.3)
    across = rng.uniform(0.4, 1.6)
    x0, x1 = x - along * h * rng.uniform(0.8, 1.2), x + w + along * h * rng.uniform(0.8, 1.2)
    y0, y1 = y - across * h * rng.uniform(0.8, 1.2), y + h + across * h * rng.uniform(0.8, 1.2)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    corners += rng.normal(0, 0.03 * (y1 - y0), (4, 2)).astype(np.float32)
    out_h = int(rng.uniform(16, 80))
    out_w = max(16, int(out_h * (x1 - x0) / max(1.0, y1 - y0)))
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    cut = cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if rng.random() < 0.8:
        cut = render.augment(cut, rng)
    return postprocess.classifier_input(np.ascontiguousarray(cut[..., ::-1]))


def render_registration(rng: np.random.Generator, fonts: tuple[Path, ...]) -> np.ndarray:
    """A registration line on a rendered plate on a car, as the classifier sees it: a decorated
    plate from the recognizer's renderer, or (PLAIN_PLATE_SHARE) a plain one."""
    if rng.random() < PLAIN_PLATE_SHARE:
        return _plain_plate_line(rng, fonts)
    surround, (pad, _, _), (bx, by, bw, bh), _ = render.plate_on_car(rng, fonts)
    return _cut(surround, (pad + bx, pad + by, bw, bh), rng)


def _plain_plate_line(rng: np.random.Generator, fonts: tuple[Path, ...]) -> np.ndarray:
    """A plain plate on bodywork: one light colour (white, yellow or pale), maybe a border and a
    blue band, large lettering in one face (often OpenCV's Hershey, like simple renders), nothing
    else. Many real plates look like this (UK, most of the EU, fleet plates)."""
    ph = int(rng.integers(50, 130))
    pw = int(ph * rng.uniform(2.0, 4.8))
    pick = rng.random()
    if pick < 0.45:
        colour = (int(rng.integers(225, 256)),) * 3
    elif pick < 0.75:
        colour = (int(rng.integers(230, 256)), int(rng.integers(185, 230)), int(rng.integers(0, 70)))
    else:
        colour = render._colour(rng, 170, 256)
    margin = int(ph * rng.uniform(0.5, 1.2))
    scene = Image.new("RGB", (pw + 2 * margin, ph + 2 * margin), render._colour(rng))
    draw = ImageDraw.Draw(scene)
    draw.rectangle((margin, margin, margin + pw, margin + ph), fill=colour)
    left = margin + int(pw * rng.uniform(0.03, 0.08))
    if rng.random() < 0.3:
        band = int(pw * rng.uniform(0.06, 0.1))
        draw.rectangle((margin, margin, margin + band, margin + ph), fill=render._band_blue(rng))
        left = margin + band + int(pw * 0.03)
    if rng.random() < 0.6:
        draw.rectangle(
            (margin, margin, margin + pw, margin + ph),
            outline=render._dark_ink(rng),
            width=max(1, int(ph * rng.uniform(0.02, 0.06))),
        )
    text_h = int(ph * rng.uniform(0.45, 0.75))
    top = margin + (ph - text_h) // 2 + int(ph * rng.uniform(-0.05, 0.05))
    width = margin + pw - int(pw * rng.uniform(0.03, 0.08)) - left
    face = (
        Path(list(render.HERSHEY_FACES)[int(rng.integers(2))])
        if rng.random() < 0.4
        else render._pick_font(rng, fonts)
    )
    text = _registration_like(rng)
    if rng.random() < 0.3:
        text = text.replace(" ", "-")
    render._draw_text_fit(scene, text, face, (left, top, width, text_h), render._dark_ink(rng))
    return _cut(np.asarray(scene), (left, top, width, text_h), rng)


def _registration_like(rng: np.random.Generator) -> str:
    pattern = ("LLL 9999", "9LLL999", "LL 999 LL", "L99 LLL", "999 LLL", "LL 99 LLL")[int(rng.integers(6))]
    return render.random_registration(rng, pattern)[0]


def _overlay_text(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        stamp = f"20{rng.integers(10, 30)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        clock = f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"
        return stamp if rng.random() < 0.3 else clock if rng.random() < 0.3 else f"{stamp} {clock}"
    word = OVERLAY_WORDS[int(rng.integers(len(OVERLAY_WORDS)))]
    return f"{word} {rng.integers(1, 99)}" if rng.random() < 0.7 else word


def _text_scene(
    rng: np.random.Generator, fonts: tuple[Path, ...], text: str, kind: str
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An RGB scene with `text` drawn as a sign panel, a badge or an overlay; returns the scene and
    the text's box."""
    h = int(rng.integers(20, 70))
    w = max(h, int(h * len(text) * rng.uniform(0.45, 0.75)))
    margin = int(h * 2.5)
    scene = render._background(rng, (w + 2 * margin, h + 2 * margin), render._colour(rng))
    box = (margin, margin, w, h)
    font = render._pick_font(rng, fonts)
    draw = ImageDraw.Draw(scene)
    if kind == "sign":
        panel = render._colour(rng)
        px, py = h * rng.uniform(0.15, 1.2), h * rng.uniform(0.15, 0.9)
        rect = (margin - px, margin - py, margin + w + px, margin + h + py)
        draw.rectangle(rect, fill=panel)
        if rng.random() < 0.5:
            draw.rectangle(rect, outline=render._colour(rng), width=max(1, int(h * rng.uniform(0.05, 0.15))))
        ink = render._colour(rng, 0, 70) if sum(panel) > 380 else render._colour(rng, 190, 256)
        render._draw_text_fit(scene, text, font, box, ink)
    elif kind == "badge":
        # Chrome or painted letters straight on the bodywork, with a darker offset shadow.
        shade = int(rng.integers(20, 90))
        offset = max(1, int(h * 0.06))
        render._draw_text_fit(scene, text, font, (margin + offset, margin + offset, w, h), (shade,) * 3)
        # Registration-like badges only in chrome: dark letters on a light body are a plain plate.
        chrome = rng.random() < 0.7 or any(ch.isdigit() for ch in text)
        ink = (int(rng.integers(170, 256)),) * 3 if chrome else render._colour(rng)
        render._draw_text_fit(scene, text, font, box, ink)
    else:  # overlay: white or yellow text with a dark outline on the picture
        stroke = max(1, int(h * 0.08))
        render._draw_text_fit(scene, text, font, box, (0, 0, 0), stroke=stroke)
        ink = (255, 255, 255) if rng.random() < 0.6 else (255, 230, 0)
        render._draw_text_fit(scene, text, font, box, ink)
    return np.asarray(scene), box


def _plate_other_line(rng: np.random.Generator, fonts: tuple[Path, ...]) -> np.ndarray | None:
    """A line of a rendered plate above or below its registration (state name, slogan, plain body)."""
    surround, (pad, ph, _), (bx, by, bw, bh), _ = render.plate_on_car(rng, fonts)
    height = bh * rng.uniform(0.25, 0.5)
    above, below = by, ph - (by + bh)
    room = max(above, below)
    if room < height * 1.2:
        return None
    top = (
        (by - height * rng.uniform(1.1, 1.4))
        if above >= below
        else (by + bh + height * rng.uniform(0.1, 0.4))
    )
    width = bw * rng.uniform(0.4, 1.0)
    left = bx + (bw - width) * rng.uniform(0, 1)
    return _cut(surround, (pad + left, pad + top, width, height), rng)


def render_non_plate(rng: np.random.Generator, fonts: tuple[Path, ...]) -> np.ndarray:
    """A text line that is not a registration, as the classifier sees it."""
    kind = rng.random()
    if kind < 0.15:
        line = render.render_negative(rng, fonts)
        return postprocess.classifier_input(line)
    if kind < 0.3:
        other = _plate_other_line(rng, fonts)
        if other is not None:
            return other
    if kind < 0.55:
        text = SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))]
        if rng.random() < 0.3:
            number = rng.integers(1, 999)
            suffix = render.LETTERS[int(rng.integers(26))] if rng.random() < 0.3 else ""
            text = f"{text} {number}{suffix}"
        # No registration-like text on signs: a panel with a border around "AB 123" is a plate.
        scene, box = _text_scene(rng, fonts, text, "sign")
    elif kind < 0.85:
        text = BADGES[int(rng.integers(len(BADGES)))]
        scene, box = _text_scene(
            rng, fonts, _registration_like(rng) if rng.random() < 0.25 else text, "badge"
        )
    else:
        scene, box = _text_scene(rng, fonts, _overlay_text(rng), "overlay")
    return _cut(scene, box, rng)


def synthetic_sample(index: int, seed: int, fonts: tuple[Path, ...]) -> tuple[np.ndarray, int]:
    """Sample `index` of the synthetic pool: (classifier input, 1 registration / 0 not); half each."""
    rng = np.random.default_rng([seed, index])
    if rng.random() < 0.5:
        return render_registration(rng, fonts), 1
    return render_non_plate(rng, fonts), 0


def real_sample(
    cut: np.ndarray, rng: np.random.Generator, rotate_degrees: float = 0.0, invert_share: float = 0.0
) -> np.ndarray:
    """A collected real line with jittered borders and (mostly) the renderer's damage, turned by up
    to `rotate_degrees` half the time (see `turned`) and inverted `invert_share` of the time (see
    `inverted`)."""
    jittered = jittered_borders(cut, rng, (-0.04, 0.06), (-0.06, 0.1))
    if rng.random() < 0.6:
        jittered = render.augment(jittered[..., ::-1], rng)[..., ::-1]
    image = turned(postprocess.classifier_input(np.ascontiguousarray(jittered)), rng, rotate_degrees)
    return inverted(image, rng, invert_share)


def jitter(
    image: np.ndarray, rng: np.random.Generator, rotate_degrees: float = 0.0, invert_share: float = 0.0
) -> np.ndarray:
    """A pooled sample cut a few pixels differently (the pool is re-used for many epochs), turned
    by up to `rotate_degrees` half the time (see `turned`) and inverted `invert_share` of the time
    (see `inverted`)."""
    height, width = image.shape[:2]
    x0, x1 = int(rng.integers(0, 8)), width - int(rng.integers(0, 8))
    y0, y1 = int(rng.integers(0, 3)), height - int(rng.integers(0, 3))
    resized = cv2.resize(image[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_LINEAR)
    return inverted(turned(resized, rng, rotate_degrees), rng, invert_share)


def inverted(image: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """`share` of the time, `image` with every value inverted (255 - v): light text on a dark ground
    for a registration or a sign alike, so polarity tells the classes apart no more than it does in
    the world (black plates, white-on-green signs). 0 leaves the image and the random stream as they
    were."""
    if share <= 0 or rng.random() >= share:
        return image
    return 255 - image


def turned(image: np.ndarray, rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    """Half the time, `image` (a classifier input) rotated about its centre by up to `max_degrees`
    either way, edges replicated. 0 leaves the image and the random stream as they were. Tried for
    tilted frames (run9, not shipped): the detector's boxes of lines turned 5-15 degrees lean with
    the text to within 0.5 degrees (median; p95 2.7), so a cut leans rarely, and turned training
    inputs did not raise the scores of the tilted plates the classifier doubts."""
    if max_degrees <= 0 or rng.random() < 0.5:
        return image
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2), float(rng.uniform(-max_degrees, max_degrees)), 1.0
    )
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


# ------------------------------------------------------------------------------------------ model
def init_params(key: jax.Array) -> tuple[dict[str, Any], dict[str, Any]]:
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for name, cin, cout, _ in LAYERS:
        key, sub = jax.random.split(key)
        params[name] = {
            "w": jax.random.normal(sub, (3, 3, cin, cout)) * np.sqrt(2.0 / (9 * cin)),
            "gamma": jnp.ones((cout,)),
            "beta": jnp.zeros((cout,)),
        }
        state[name] = {"mean": jnp.zeros((cout,)), "var": jnp.ones((cout,))}
    key, sub = jax.random.split(key)
    params["dense"] = {
        "w": jax.random.normal(sub, (FEATURES, 1)) * np.sqrt(1.0 / FEATURES),
        "b": jnp.zeros((1,)),
    }
    return params, state


def forward(
    params: dict[str, Any], state: dict[str, Any], x: jax.Array, train: bool
) -> tuple[jax.Array, dict[str, Any]]:
    """x: [N, 32, 128, 3] (model_io.cls_input, NHWC) -> logits [N], updated batch-norm state."""
    new_state = {}
    for name, _, _, pool in LAYERS:
        x = jax.lax.conv_general_dilated(
            x, params[name]["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        x, new_state[name] = batch_norm(x, params[name], state[name], train)
        x = jax.nn.relu(x)
        if pool:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    features = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=1)
    return (features @ params["dense"]["w"] + params["dense"]["b"])[:, 0], new_state


def to_input(batch: np.ndarray) -> np.ndarray:
    """UINT8 [N, 32, 128, 3] -> the NHWC float tensor of `forward` (the ONNX takes NCHW)."""
    return model_io.cls_input(batch).transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------------------- export
def build_onnx(params: dict[str, Any], state: dict[str, Any]) -> Any:
    """The trained model as ONNX (batch norm folded into the convolutions)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    current = "input"
    for name, _, _, pool in LAYERS:
        weight, bias = fold_batch_norm(params[name], state[name])
        initializers += [
            numpy_helper.from_array(weight.astype(np.float32), f"{name}_w"),
            numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"),
        ]
        nodes.append(
            helper.make_node(
                "Conv",
                [current, f"{name}_w", f"{name}_b"],
                [f"{name}_conv"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
            )
        )
        nodes.append(helper.make_node("Relu", [f"{name}_conv"], [f"{name}_relu"]))
        current = f"{name}_relu"
        if pool:
            nodes.append(
                helper.make_node("MaxPool", [current], [f"{name}_pool"], kernel_shape=[2, 2], strides=[2, 2])
            )
            current = f"{name}_pool"
    nodes += [
        helper.make_node("GlobalAveragePool", [current], ["avg"]),
        helper.make_node("GlobalMaxPool", [current], ["max"]),
        helper.make_node("Concat", ["avg", "max"], ["pooled"], axis=1),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "dense_w", "dense_b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["plate_prob"]),
    ]
    initializers += [
        numpy_helper.from_array(np.asarray(params["dense"]["w"], np.float32), "dense_w"),
        numpy_helper.from_array(np.asarray(params["dense"]["b"], np.float32), "dense_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "plate_cls",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["N", 3, model_io.CLS_HEIGHT, model_io.CLS_WIDTH]
            )
        ],
        [helper.make_tensor_value_info("plate_prob", TensorProto.FLOAT, ["N", 1])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="platewatch"
    )
    model.ir_version = 8
    helper.set_model_props(model, {"licence": "Apache-2.0"})
    onnx.checker.check_model(model)
    return model


# --------------------------------------------------------------------------------------- training
def _pool(count: int, seed: int, fonts: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((count, model_io.CLS_HEIGHT, model_io.CLS_WIDTH, 3), np.uint8)
    labels = np.empty(count, np.float32)
    for index in range(count):
        images[index], labels[index] = synthetic_sample(index, seed, fonts)
    return images, labels


def _rates(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    positives, negatives = labels == 1, labels == 0
    return {
        "registrations_kept": round(float((probs[positives] >= threshold).mean()), 4)
        if positives.any()
        else 0.0,
        "others_rejected": round(float((probs[negatives] < threshold).mean()), 4) if negatives.any() else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("var/classifier/run1"))
    parser.add_argument(
        "--real",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="lines pickles from collect_lines.py (train half), pooled",
    )
    parser.add_argument(
        "--rendered",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="lines pickles from collect_lines.py --split rendered (rendered frames, two-row plates among "
        "them), pooled apart from --real",
    )
    parser.add_argument(
        "--rendered-share",
        type=float,
        default=0.0,
        help="share of what each batch leaves after the --real lines drawn from --rendered (0 keeps the "
        "batches as they were)",
    )
    parser.add_argument("--onnx", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=20000, help="synthetic training samples")
    parser.add_argument("--validation", type=int, default=2000, help="synthetic validation samples")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--real-share", type=float, default=0.25)
    parser.add_argument(
        "--rotate-degrees",
        type=float,
        default=0.0,
        help="turn half the training inputs by up to this many degrees (0: as run8)",
    )
    parser.add_argument(
        "--invert-share",
        type=float,
        default=0.0,
        help="invert this share of the training inputs of both classes (0: as run8)",
    )
    args = parser.parse_args()
    if not 0 <= args.rendered_share <= 1:
        parser.error(f"--rendered-share must be between 0 and 1: {args.rendered_share}")
    if args.rendered_share > 0 and not args.rendered:
        parser.error("--rendered-share needs --rendered pickles")
    args.out.mkdir(parents=True, exist_ok=True)
    fonts = render.find_fonts()

    started = time.monotonic()
    train_x, train_y = _pool(args.pool, args.seed, fonts)
    val_x, val_y = _pool(args.validation, args.seed + 1000, fonts)
    real_cuts: list[np.ndarray] = []
    pooled_labels: list[int] = []
    for path in args.real:
        with path.open("rb") as handle:
            real = pickle.load(handle)
        if real.get("split") != "train":
            raise SystemExit(f"{path}: lines of the {real.get('split')!r} half; train only on 'train'")
        real_cuts += real["cuts"]
        pooled_labels += real["labels"]
    real_labels = np.asarray(pooled_labels, np.float32)
    rendered_cuts: list[np.ndarray] = []
    rendered_pooled: list[int] = []
    for path in args.rendered:
        with path.open("rb") as handle:
            rendered = pickle.load(handle)
        if rendered.get("split") != "rendered" or rendered.get("for") != "classifier":
            raise SystemExit(
                f"{path}: not classifier lines of rendered frames (collect_lines --split rendered)"
            )
        rendered_cuts += rendered["cuts"]
        rendered_pooled += rendered["labels"]
    rendered_labels = np.asarray(rendered_pooled, np.float32)
    render_s = time.monotonic() - started
    print(
        json.dumps(
            {
                "pool": args.pool,
                "validation": args.validation,
                "real": len(real_cuts),
                "rendered": len(rendered_cuts),
                "render_s": round(render_s),
            }
        ),
        flush=True,
    )

    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, 100, args.steps, args.lr * 0.02)
    optimizer = optax.adamw(schedule, weight_decay=1e-4)
    params, bn_state = init_params(jax.random.PRNGKey(args.seed))
    opt_state = optimizer.init(params)

    def loss_fn(p, s, x, y):  # type: ignore[no-untyped-def]
        logits, new_s = forward(p, s, x, train=True)
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(), new_s

    @jax.jit
    def train_step(p, s, o, x, y):  # type: ignore[no-untyped-def]
        (loss, new_s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, y)
        updates, o = optimizer.update(grads, o, p)
        return optax.apply_updates(p, updates), new_s, o, loss

    @jax.jit
    def infer(p, s, x):  # type: ignore[no-untyped-def]
        return jax.nn.sigmoid(forward(p, s, x, train=False)[0])

    def predict(images: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(infer(params, bn_state, to_input(images[i : i + 256])))
                for i in range(0, len(images), 256)
            ]
        )

    losses: list[float] = []
    started = time.monotonic()
    for step in range(1, args.steps + 1):
        rng = np.random.default_rng([args.seed, 10**6 + step])
        real_count = int(rng.binomial(args.batch, args.real_share)) if real_cuts else 0
        # Drawn only when asked for, so that runs without rendered lines see the batches they saw.
        use_rendered = bool(rendered_cuts) and args.rendered_share > 0
        rendered_count = (
            int(rng.binomial(args.batch - real_count, args.rendered_share)) if use_rendered else 0
        )
        picks = rng.integers(0, len(train_x), args.batch - real_count - rendered_count)
        images = [np.stack([jitter(train_x[i], rng, args.rotate_degrees, args.invert_share) for i in picks])]
        labels = [train_y[picks]]
        # Real lines, then rendered ones: each drawn from its pool and jittered alike.
        for cuts, cut_labels, count in (
            (real_cuts, real_labels, real_count),
            (rendered_cuts, rendered_labels, rendered_count),
        ):
            if count:
                chosen = rng.integers(0, len(cuts), count)
                images.append(
                    np.stack(
                        [real_sample(cuts[i], rng, args.rotate_degrees, args.invert_share) for i in chosen]
                    )
                )
                labels.append(cut_labels[chosen])
        params, bn_state, opt_state, loss = train_step(
            params, bn_state, opt_state, to_input(np.concatenate(images)), np.concatenate(labels)
        )
        losses.append(float(loss))
        if step % 250 == 0 or step == args.steps:
            record: dict[str, Any] = {"step": step, "loss": round(float(np.mean(losses)), 4)}
            record.update({f"val_{k}": v for k, v in _rates(predict(val_x), val_y, 0.5).items()})
            record["s"] = round(time.monotonic() - started)
            losses = []
            print(json.dumps(record), flush=True)

    val_probs = predict(val_x)
    report: dict[str, Any] = {
        "seed": args.seed,
        "steps": args.steps,
        "pool": args.pool,
        "real_lines": len(real_cuts),
        "rendered_lines": len(rendered_cuts),
        "rendered_share": args.rendered_share,
        "rotate_degrees": args.rotate_degrees,
        "invert_share": args.invert_share,
        "render_s": round(render_s),
        "train_s": round(time.monotonic() - started),
        "synthetic_validation": {str(t): _rates(val_probs, val_y, t) for t in REPORT_THRESHOLDS},
    }
    if real_cuts:
        real_probs = predict(np.stack([postprocess.classifier_input(c) for c in real_cuts]))
        report["real_train_lines_seen"] = {
            str(t): _rates(real_probs, real_labels, t) for t in REPORT_THRESHOLDS
        }
    with (args.out / "params.pkl").open("wb") as handle:
        pickle.dump(
            {"params": jax.device_get(params), "state": jax.device_get(bn_state), "args": vars(args)}, handle
        )
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, default=str), flush=True)
    if args.onnx is not None:
        import onnx

        args.onnx.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(build_onnx(params, bn_state), str(args.onnx))
        print(json.dumps({"onnx": str(args.onnx), "bytes": args.onnx.stat().st_size}), flush=True)


if __name__ == "__main__":
    main()
