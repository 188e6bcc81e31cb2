"""`platewatch recognize [--json] IMAGE...`: one JSON object a line per image, models loaded once.

Contract of each line (issue 3):
`{"image": "<path as given>", "plates": [{"text", "confidence", "box": [x, y, w, h], "region",
"candidates": [{"text", "confidence"}, ...], "char_confidences", "vehicle": {"color",
"color_confidence"}}]}`, plates sorted by confidence, highest first; `box` in the file's pixels
(upright: a JPEG's EXIF orientation applied, as viewers show it);
`region` is the region printed on the plate (a US state's name or slogan read around the
registration, with PLATEWATCH_PRINTED_REGION on: `region_source` "printed",
services/inference/printed_region.py), else the region the plate grammar names for the text as
read (no look-alike rewrite; `region_source` "format"), or null when neither names one (its format
is unknown or several regions share it). `--region us-ia` (the camera's region) lets that region's
formats decide between look-alike readings and name the region; `--roll 8` (the camera's roll in
degrees) reads every image turned upright by it, boxes still in the file's pixels.
A file that cannot be read gives `{"image": ..., "error": "<why>"}` and the command goes on. Lines
are printed as each image is done, so memory does not grow with the number of files; the exit
status is non-zero only when every file failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.common.frames import MAX_ROLL_DEG, roll_in_range

if TYPE_CHECKING:  # the models load on use, not when the CLI starts
    from services.inference.engine import PlateRecognizer, PlateResult
    from services.normalizer.grammar import PlateGrammar


def plate_record(
    plate: PlateResult, scale: float, grammar: PlateGrammar, region_hint: str | None = None
) -> dict[str, Any]:
    """One plate as the command prints it (box mapped back to the file's upright pixels by `scale`)."""
    cleaned = grammar.clean(plate.text, region_hint)
    if cleaned.text != plate.text:
        # A closed region's fix is the normalizer's to make, not the recognizer's: the text is as read.
        cleaned = grammar.clean(plate.text)
    # The words on the plate name its region more surely than a format several regions share.
    region: str | None = plate.printed_region
    source: str | None = "printed" if region else None
    if not region and cleaned.format_known and cleaned.region:
        region, source = cleaned.region, "format"
    return {
        "text": plate.text,
        "confidence": round(plate.confidence, 4),
        "box": [round(v * scale) for v in plate.box],
        "region": region.lower() if region else None,
        "region_source": source,
        "candidates": [{"text": c.text, "confidence": round(c.confidence, 4)} for c in plate.candidates],
        "char_confidences": [round(v, 4) for v in plate.candidates[0].char_confidences],
        # The plate classifier's probability that the line is a registration (null: not asked).
        "plate_score": None if plate.plate_score is None else round(plate.plate_score, 4),
        "vehicle": {
            "color": plate.vehicle_color,
            "color_confidence": round(plate.vehicle_color_confidence, 3),
        },
    }


def recognize_files(
    recognizer: PlateRecognizer,
    paths: Iterable[str],
    grammar: PlateGrammar | None = None,
    region_hint: str | None = None,
    roll: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """One record per path, in order (see the module docstring), each read with the camera's
    `region_hint` and `roll` (degrees, `PlateRecognizer.recognize`); never raises for a bad file."""
    from services.inference.images import ImageError, load_image
    from services.normalizer.grammar import default_grammar

    grammar = grammar or default_grammar()
    for given in paths:
        try:
            loaded = load_image(Path(given))
        except ImageError as exc:
            yield {"image": given, "error": str(exc)}
            continue
        try:
            plates = recognizer.recognize([loaded.image], [region_hint], [roll])[0]
        except Exception as exc:  # a model failure on one image must not lose the others
            yield {"image": given, "error": f"recognition failed: {type(exc).__name__}: {exc}"}
            continue
        ordered = sorted(plates, key=lambda p: p.confidence, reverse=True)
        yield {
            "image": given,
            "plates": [plate_record(p, loaded.scale, grammar, region_hint) for p in ordered],
        }


def require_known_region(option: str, region: str) -> None:
    """Refuse a camera region given on the command line that no plate format belongs to: a mistyped
    region would otherwise read as no region at all (the grammar ignores such a hint), silently."""
    from services.normalizer.grammar import default_grammar

    if not default_grammar().knows_region(region):
        raise typer.BadParameter(f"{option} {region!r}: no plate format belongs to it (e.g. us, us-ia, de)")


def recognize(
    images: Annotated[list[str], typer.Argument(help="image files (JPEG, PNG, ...)")],
    as_json: Annotated[
        bool, typer.Option("--json/--text", help="one JSON object a line (default) or short text lines")
    ] = True,
    triton: Annotated[
        str, typer.Option(help="Triton gRPC address HOST:PORT; default: onnxruntime in this process")
    ] = "",
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads (in-process only)")] = 1,
    region: Annotated[
        str,
        typer.Option(help="the camera's region (us, us-ia, de, ...): its plate formats decide look-alikes"),
    ] = "",
    roll: Annotated[
        float,
        typer.Option(
            help=f"the camera's roll: degrees level text runs down to the right (within +-{MAX_ROLL_DEG:g})"
        ),
    ] = 0.0,
) -> None:
    """Read the plates of image files: one JSON object a line per image, plates most confident
    first. Exits non-zero only if every file failed."""
    from services.inference.main import InferenceSettings

    if not roll_in_range(roll):
        raise typer.BadParameter(f"--roll must be within +-{MAX_ROLL_DEG:g} degrees: {roll}")
    if region:
        require_known_region("--region", region)
    settings = InferenceSettings()
    recognizer = settings.plate_recognizer(settings.backend(triton, threads))
    failed = 0
    try:
        for record in recognize_files(recognizer, images, region_hint=region or None, roll=roll):
            failed += "error" in record
            if as_json:
                typer.echo(json.dumps(record))
            elif "error" in record:
                typer.echo(f"{record['image']}: error: {record['error']}", err=True)
            else:
                texts = ", ".join(f"{p['text']} ({p['confidence']:.2f})" for p in record["plates"])
                typer.echo(f"{record['image']}: {texts or 'no plate found'}")
    finally:
        recognizer.backend.close()
    if images and failed == len(images):
        raise typer.Exit(1)
