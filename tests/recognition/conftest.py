"""Fonts for rendering test plates: system fonts when present, else two small Debian font
packages fetched into var/fonts (git-ignored) by the session fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.inference.training import fonts, render


@pytest.fixture(scope="session")
def plate_fonts() -> tuple[Path, ...]:
    found = render.find_fonts()
    if not found:
        fonts.fetch(fonts.MINIMAL_PACKAGES)
        found = render.find_fonts()
    if not found:
        pytest.skip("no TrueType fonts and apt-get could not fetch fonts-dejavu-core")
    return found
