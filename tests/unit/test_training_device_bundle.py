"""The device-run bundle (`training.device_bundle`): US crops shrunk, EU photos as they are, the
picked font faces in var/fonts' layout; built from small stand-ins, not the shared dev sets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from services.inference.training import device_bundle, render


def _dev_sets(root: Path) -> Path:
    us, eu = root / "openalpr-us-crops", root / "openalpr-eu"
    us.mkdir(parents=True)
    eu.mkdir()
    cv2.imwrite(str(us / "ca1.png"), np.full((128, 256, 3), 90, np.uint8))
    cv2.imwrite(str(us / "ny2.png"), np.full((40, 100, 3), 120, np.uint8))
    (us / "groundtruth.csv").write_text("ca1.png,ca,7ABC123\nny2.png,ny,ABC1234\n")
    cv2.imwrite(str(eu / "eu1.jpg"), np.full((60, 80, 3), 200, np.uint8))
    (eu / "eu1.txt").write_text("eu1.jpg\t1\t2\t30\t10\tAB123CD\n")
    return root


def test_the_bundle_shrinks_us_crops_keeps_eu_photos_and_the_font_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fonts_root = tmp_path / "fonts"
    face = fonts_root / "root/usr/share/fonts/truetype/x/PlateSans-Bold.ttf"
    face.parent.mkdir(parents=True)
    face.write_bytes(b"not really a font")
    system_face = tmp_path / "system" / "Other.ttf"
    system_face.parent.mkdir()
    system_face.write_bytes(b"x")
    monkeypatch.setattr(render, "find_fonts", lambda: (face, system_face))
    dev = _dev_sets(tmp_path / "dev")
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "stale.txt").write_text("emptied first")

    summary = device_bundle.bundle(out, fonts_root=fonts_root, datasets_dir=dev, max_height=64)

    assert summary["fonts"] == 1 and summary["us_crops"] == 2 and not (out / "stale.txt").exists()
    assert (
        out / "fonts/root/usr/share/fonts/truetype/x/PlateSans-Bold.ttf"
    ).read_bytes() == face.read_bytes()
    us = out / "datasets/openalpr-us-crops"
    assert cv2.imread(str(us / "ca1.png")).shape == (64, 128, 3)  # shrunk, aspect kept
    assert cv2.imread(str(us / "ny2.png")).shape == (40, 100, 3)  # small ones as they are
    assert (us / "groundtruth.csv").read_text() == (dev / "openalpr-us-crops/groundtruth.csv").read_text()
    eu = out / "datasets/openalpr-eu"
    assert (eu / "eu1.jpg").read_bytes() == (dev / "openalpr-eu/eu1.jpg").read_bytes()
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def test_the_bundle_refuses_missing_dev_sets_and_an_oversized_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "find_fonts", lambda: ())
    with pytest.raises(ValueError, match="dev sets"):
        device_bundle.bundle(tmp_path / "out", datasets_dir=tmp_path / "nowhere")
    monkeypatch.setattr(device_bundle, "MAX_BUNDLE_BYTES", 10)
    with pytest.raises(ValueError, match="over"):
        device_bundle.bundle(tmp_path / "out", datasets_dir=_dev_sets(tmp_path / "dev"))
