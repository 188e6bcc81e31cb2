"""Fonts for the plate renderer, fetched as Debian packages and unpacked under var/fonts (no root).

    python -m services.inference.training.fonts          # the full training set

Fonts are training inputs only; they are never shipped with the product.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from services.inference.training import render

FONTS_ROOT = render.REPO_ROOT / "var" / "fonts"
# Licences: DejaVu (Bitstream Vera, free), Liberation (OFL-1.1), Roboto / Open Sans (Apache-2.0),
# Carlito / B612 / Cantarell / Jura (OFL-1.1), FreeFont (GPL-3 with font exception),
# Linux Libertine/Biolinum (OFL-1.1 / GPL), Comfortaa, Fira Code, Inconsolata, Noto Mono (OFL-1.1,
# filtered out by render.find_fonts but unpacked with the set).
TRAINING_PACKAGES = (
    "fonts-dejavu-core",
    "fonts-dejavu-extra",
    "fonts-liberation",
    "fonts-liberation2",
    "fonts-roboto-unhinted",
    "fonts-open-sans",
    "fonts-crosextra-carlito",
    "fonts-freefont-ttf",
    "fonts-b612",
    "fonts-cantarell",
    "fonts-jura",
    "fonts-linuxlibertine",
    "fonts-comfortaa",
    "fonts-firacode",
    "fonts-inconsolata",
    "fonts-noto-mono",
)
MINIMAL_PACKAGES = ("fonts-dejavu-core", "fonts-liberation2")


def fetch(packages: tuple[str, ...] = TRAINING_PACKAGES, root: Path = FONTS_ROOT) -> list[str]:
    """`apt-get download` each package and unpack it under `root`/root; returns the packages that
    could not be fetched. Needs apt-get and dpkg (Debian/Ubuntu), not root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return list(packages)
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = []
    for package in packages:
        if not list(debs.glob(f"{package}_*.deb")):
            done = subprocess.run(
                ["apt-get", "download", package], cwd=debs, capture_output=True, check=False
            )
            if done.returncode != 0:
                missing.append(package)
                continue
        for deb in debs.glob(f"{package}_*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root / "root")], check=True)
    render.find_fonts.cache_clear()
    return missing


if __name__ == "__main__":
    failed = fetch()
    print(f"fonts: {len(render.find_fonts())} faces; not fetched: {failed or 'none'}")
    sys.exit(1 if len(failed) == len(TRAINING_PACKAGES) else 0)
