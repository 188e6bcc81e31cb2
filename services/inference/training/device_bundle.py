"""Assemble what a training run on a lent GPU machine carries with it (the device tool carries at most
64 MiB of ignored files, and nothing can be downloaded there):

    .venv/bin/python -m services.inference.training.device_bundle --out var/gpu

- `<out>/fonts`: the faces `render.find_fonts` picks under var/fonts (fetched by `training.fonts`), in
  var/fonts' own layout, so that copied to var/fonts on the machine they are found in the same order
  (move the machine's /usr/share/fonts aside too: find_fonts also scans it, and other faces would
  change the rendered stream);
- `<out>/datasets/openalpr-eu`: the EU photos and labels as they are;
- `<out>/datasets/openalpr-us-crops`: the US crops shrunk to at most `--max-height` pixels high
  (INTER_AREA, PNG; the CRNN sees them at 32) with their groundtruth.csv.

On the machine: `rm -rf var/fonts && cp -a var/gpu/fonts var/fonts` and
`PLATEWATCH_SHARED_DATASETS=$PWD/var/gpu/datasets` before `python3 -m services.inference.training.train`
(see MODEL_CARD.md, gpu-w15, for a whole device run). The dev sets are AGPL data: the bundle stays
under var/ (ignored), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2

from services.inference.training import datasets, render

# The device tool's limit on carried files, less room for a checkpoint to resume from.
MAX_BUNDLE_BYTES = 48 * 1024 * 1024


def copy_fonts(fonts: tuple[Path, ...], fonts_root: Path, out: Path) -> int:
    """Copy each of `fonts` that lies under `fonts_root` to the same relative path under `out`;
    returns how many. Faces elsewhere (the system's) are not carried."""
    copied = 0
    for font in fonts:
        try:
            relative = font.resolve().relative_to(fonts_root.resolve())
        except ValueError:
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(font, target)
        copied += 1
    return copied


def shrink_us_crops(source: Path, out: Path, max_height: int) -> int:
    """The crops `groundtruth.csv` in `source` lists, at most `max_height` pixels high (smaller ones
    as they are), as PNG under the same names in `out`, with the csv; returns how many."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "groundtruth.csv", out / "groundtruth.csv")
    written = 0
    for crop in datasets.us_crops(source):
        image = cv2.imread(str(crop.image_path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        height, width = image.shape[:2]
        if height > max_height:
            size = (max(1, round(width * max_height / height)), max_height)
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / Path(crop.name).with_suffix(".png").name), image)
        written += 1
    return written


def bundle(
    out: Path,
    *,
    fonts_root: Path = render.REPO_ROOT / "var" / "fonts",
    datasets_dir: Path = datasets.DATASETS_DIR,
    max_height: int = 64,
) -> dict[str, int]:
    """Fill `out` (emptied first) as the module docstring says; returns counts and total bytes.
    Raises ValueError when the dev sets are absent or the bundle would not fit the carry limit."""
    eu, us = datasets_dir / "openalpr-eu", datasets_dir / "openalpr-us-crops"
    if not eu.is_dir() or not (us / "groundtruth.csv").is_file():
        raise ValueError(f"the dev sets are not at {datasets_dir} (set PLATEWATCH_SHARED_DATASETS)")
    if out.exists():
        shutil.rmtree(out)
    fonts = copy_fonts(render.find_fonts(), fonts_root, out / "fonts")
    shutil.copytree(eu, out / "datasets" / "openalpr-eu")
    crops = shrink_us_crops(us, out / "datasets" / "openalpr-us-crops", max_height)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    if size > MAX_BUNDLE_BYTES:
        raise ValueError(f"{out} holds {size} bytes, over {MAX_BUNDLE_BYTES}: lower --max-height")
    return {"fonts": fonts, "us_crops": crops, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("var/gpu"))
    parser.add_argument("--max-height", type=int, default=64, help="US crops' largest height, pixels")
    args = parser.parse_args()
    try:
        summary = bundle(args.out, max_height=args.max_height)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps({"out": str(args.out), **summary}))


if __name__ == "__main__":
    main()
