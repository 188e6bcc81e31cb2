"""Recognition accuracy on the shared dev crops (`platewatch bench recognition`).

Two modes: "crop" runs only the text recognizer on each labelled crop (what the recognizer can do
given a perfect plate box); "pipeline" runs detection + recognition on the crop image and takes the
most confident plate (what the product reads from that crop).

Besides the recognizer's own top-1 ("exact"), "stored" is the top-1 after the normalizer's plate grammar
(`services.normalizer.grammar`), i.e. the text a read of that crop would be stored with: without a
region hint (a camera with no `region` in the registry), and, for a dataset whose country is known
(`DATASET_REGIONS`), also with that region as the hint ("stored_hinted").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from services.inference import postprocess
from services.inference.engine import OnnxBackend, PlateRecognizer, RecognizerName
from services.inference.training import datasets
from services.normalizer.grammar import default_grammar

# The region hint a camera on a dataset's roads would have (the EU set mixes countries: none).
DATASET_REGIONS = {"us-crops": "us"}


def _normalized(text: str) -> str:
    """Plate-normalized text, or the bare upper-case alphanumerics when it is not plate-like."""
    plate = postprocess.plate_text(text)
    if plate is not None:
        return plate
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _readings(recognizer: PlateRecognizer, crops: list[Any], mode: str) -> list[list[str]]:
    """Best-first candidate texts per crop."""
    if mode == "crop":
        return [[_normalized(c.text) for c in candidates] for candidates in recognizer.read_lines(crops)]
    readings: list[list[str]] = []
    for crop in crops:
        plates = sorted(recognizer.recognize([crop])[0], key=lambda p: p.confidence, reverse=True)
        readings.append([c.text for c in plates[0].candidates] if plates else [])
    return readings


def recognition_accuracy(
    recognizers: list[RecognizerName],
    *,
    mode: str = "crop",
    limit: int = 0,
    threads: int = 1,
    crnn_onnx: Path | None = None,
    heldout_only: bool = False,
) -> dict[str, Any]:
    """`{"mode", "datasets": {name: {recognizer: {...}}}}` with, for all crops and the held-out
    half: n, exact (top-1), top3 (truth among the first three candidates), stored (top-1 after the
    normalizer's grammar without a region hint; plus stored_hinted and region_hint where the dataset's
    region is known), and ms per crop.
    `crnn_onnx` measures another plate-CRNN export than the shipped one; `heldout_only` reads only
    the held-out half (then "all" is that half too)."""
    from services.inference.main import InferenceSettings

    settings = InferenceSettings()
    sets = {"us-crops": datasets.us_crops(), "eu": datasets.eu_crops()}
    grammar = default_grammar()
    summary: dict[str, Any] = {"mode": mode, "datasets": {}}
    for set_name, items in sets.items():
        if heldout_only:
            items = [item for item in items if item.split == "heldout"]
        items = items[:limit] if limit else items
        loaded = [(item, item.load()) for item in items]
        usable = [(item, crop) for item, crop in loaded if crop is not None]
        if not usable:
            continue
        per_recognizer: dict[str, Any] = {}
        for name in recognizers:
            rec_onnx = crnn_onnx if name == "crnn" else None
            recognizer = settings.plate_recognizer(
                OnnxBackend(
                    threads=threads, rec_onnx=rec_onnx, recognizer=name, det_precision=settings.det_precision
                )
            )
            started = time.perf_counter()
            readings = _readings(recognizer, [crop for _, crop in usable], mode)
            elapsed = time.perf_counter() - started
            result: dict[str, Any] = {"ms_per_crop": round(1000 * elapsed / len(usable), 2)}
            for split in ("all", "heldout"):
                rows = [
                    (item.plate, texts)
                    for (item, _), texts in zip(usable, readings, strict=True)
                    if split == "all" or item.split == split
                ]
                exact = sum(bool(texts) and texts[0] == truth for truth, texts in rows)
                top3 = sum(truth in texts[:3] for truth, texts in rows)
                stored = sum(bool(texts) and grammar.clean(texts[0]).text == truth for truth, texts in rows)
                result[split] = {
                    "n": len(rows),
                    "exact": round(exact / max(1, len(rows)), 4),
                    "top3": round(top3 / max(1, len(rows)), 4),
                    "stored": round(stored / max(1, len(rows)), 4),
                }
                hint = DATASET_REGIONS.get(set_name)
                if hint is not None:
                    hinted = sum(
                        bool(texts) and grammar.clean(texts[0], hint).text == truth for truth, texts in rows
                    )
                    result[split]["stored_hinted"] = round(hinted / max(1, len(rows)), 4)
                    result[split]["region_hint"] = hint
            per_recognizer[name] = result
        summary["datasets"][set_name] = per_recognizer
    return summary
