"""`platewatch recognize` (JSON lines, per-file errors, bounded image loading) and `platewatch bench
accuracy` (labels of both folder layouts, box overlap, confusions, the summary), on the real
in-process models with rendered plates; the shared dev sets are needed only to check that the shipped
label errata name real labels (skipped without them)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.inference import images as image_loading
from services.inference.accuracy import (
    ERRATA_FILE,
    LayoutError,
    confusions,
    load_errata,
    load_labels,
    plate_key,
)
from services.inference.boxes import iou
from services.inference.images import ImageError, load_image
from services.inference.training import datasets
from services.inference.training.datasets import DATASETS_DIR
from services.normalizer.grammar import _exact_pattern, _fit, default_grammar, strip_text
from tests.unit.test_inference_postprocess import render_frame


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk claiming `width` x `height`, and no image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "plate.jpg"
    cv2.imwrite(str(good), render_frame("ABC1234"))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(40_000, 40_000))
    return {
        "good": good,
        "empty": empty,
        "corrupt": corrupt,
        "text": text,
        "bomb": bomb,
        "missing": tmp_path / "missing.png",
    }


def test_formats_decoded_whole_are_held_to_a_smaller_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small limits stand in for the real ones (same rules, no 100 Mpx files in a unit test).
    monkeypatch.setattr(image_loading, "MAX_DECODED_PIXELS", 10_000)
    monkeypatch.setattr(image_loading, "MAX_FULL_DECODE_PIXELS", 150_000)
    monkeypatch.setattr(image_loading, "MAX_GIF_PIXELS", 50_000)
    picture = np.full((300, 400, 3), 90, np.uint8)  # 120,000 pixels
    for extension in (".jpg", ".png", ".webp", ".tif", ".bmp"):
        path = tmp_path / f"picture{extension}"
        cv2.imwrite(str(path), picture)
        loaded = load_image(path)
        assert loaded.image.shape == (75, 100, 3) and loaded.scale == 4.0, extension  # 1/4 each way
    big = np.full((400, 500, 3), 90, np.uint8)  # 200,000 pixels: over the whole-decode limit
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    assert load_image(tmp_path / "big.jpg").image.shape == (50, 63, 3)  # JPEG: 1/8 inside the decoder
    with pytest.raises(ImageError, match=r"image too large \(500x400; at most 150000 pixels"):
        load_image(tmp_path / "big.png")
    cv2.imwrite(str(tmp_path / "picture.gif"), picture)
    with pytest.raises(ImageError, match="at most 50000 pixels"):
        load_image(tmp_path / "picture.gif")


def test_files_whose_size_no_header_gives_are_refused(tmp_path: Path) -> None:
    ok, radiance = cv2.imencode(".hdr", np.zeros((37, 53, 3), np.float32))
    assert ok and cv2.imdecode(radiance, cv2.IMREAD_COLOR) is not None  # OpenCV would decode it
    (tmp_path / "scene.hdr").write_bytes(radiance.tobytes())
    with pytest.raises(ImageError, match="not a format this tool reads"):
        load_image(tmp_path / "scene.hdr")
    # A TIFF whose first directory names no height: refused, not decoded at whatever size it holds.
    ok, tiff = cv2.imencode(".tif", np.zeros((37, 53, 3), np.uint8))
    assert ok
    damaged = tiff.tobytes().replace(struct.pack("<HH", 257, 3), struct.pack("<HH", 999, 3), 1)
    assert damaged != tiff.tobytes()
    (tmp_path / "damaged.tif").write_bytes(damaged)
    with pytest.raises(ImageError, match="damaged TIFF header"):
        load_image(tmp_path / "damaged.tif")


def test_a_huge_jpeg_is_decoded_downscaled_with_its_scale(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    cv2.imwrite(str(huge), np.full((6000, 8400, 3), 90, np.uint8))  # 50.4 Mpx
    loaded = load_image(huge)
    height, width = loaded.image.shape[:2]
    assert height * width <= image_loading.MAX_DECODED_PIXELS
    assert loaded.scale == pytest.approx(8400 / width)
    assert loaded.scale >= 2


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF (APP1) segment holding only an orientation tag, after its JFIF APP0."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    assert jpeg[2:4] == b"\xff\xe0"
    after_app0 = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:after_app0] + app1 + jpeg[after_app0:]


def test_an_exif_rotated_photo_is_upright_with_its_true_scale(tmp_path: Path) -> None:
    # Stored 300 wide x 100 high with its left end white; orientation 6 = turn 90 degrees clockwise
    # to view, so the photo is 100 wide x 300 high with the white end at the top.
    stored = np.zeros((100, 300, 3), np.uint8)
    stored[:, :60] = 255
    ok, jpeg = cv2.imencode(".jpg", stored)
    assert ok
    photo = tmp_path / "sideways.jpg"
    photo.write_bytes(_with_exif_orientation(jpeg.tobytes(), 6))
    loaded = load_image(photo)
    assert loaded.image.shape[:2] == (300, 100)
    assert loaded.image[:60].mean() > 200 and loaded.image[-60:].mean() < 50
    assert loaded.scale == 1.0


def test_a_huge_exif_rotated_photo_keeps_its_true_scale(tmp_path: Path) -> None:
    ok, jpeg = cv2.imencode(".jpg", np.full((6000, 8400, 3), 90, np.uint8))
    assert ok
    photo = tmp_path / "huge-sideways.jpg"
    photo.write_bytes(_with_exif_orientation(jpeg.tobytes(), 6))
    loaded = load_image(photo)
    height, width = loaded.image.shape[:2]
    assert height > width  # upright
    assert loaded.scale == pytest.approx(8400 / height)
    assert loaded.scale >= 2


def test_recognize_prints_a_json_line_per_image_in_order(files: dict[str, Path]) -> None:
    order = ["good", "empty", "corrupt", "text", "bomb", "missing"]
    result = CliRunner().invoke(app, ["recognize", "--json", *(str(files[k]) for k in order)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in records] == [str(files[k]) for k in order]
    good, empty, corrupt, text, bomb, missing = records
    (plate, *others) = good["plates"]
    assert plate["text"] == "ABC1234"
    assert set(plate) >= {"text", "confidence", "box", "region", "candidates"}
    # The plate's confidence is its best reading's times the plate classifier's score.
    assert plate["candidates"][0]["text"] == "ABC1234" and plate["plate_score"] is not None
    expected = plate["candidates"][0]["confidence"] * plate["plate_score"]
    assert plate["confidence"] == pytest.approx(expected, abs=2e-4)
    assert plate["confidence"] <= plate["candidates"][0]["confidence"]  # a score is at most 1
    assert all(o["confidence"] <= plate["confidence"] for o in others)
    _, _, width, height = plate["box"]
    assert width > 0 and height > 0
    assert empty["error"] == "empty file"
    assert "not a decodable image" in corrupt["error"] and "not a decodable image" in text["error"]
    assert "image too large" in bomb["error"]
    assert "cannot read file" in missing["error"]


def test_recognize_region_option_names_the_camera_region(files: dict[str, Path]) -> None:
    # ABC1234 is both a US and a Brazilian format: no region without a hint, the hint decides.
    plain = CliRunner().invoke(app, ["recognize", str(files["good"])])
    hinted = CliRunner().invoke(app, ["recognize", "--region", "us", str(files["good"])])
    assert plain.exit_code == 0 and hinted.exit_code == 0, plain.output + hinted.output
    assert json.loads(plain.stdout)["plates"][0]["region"] is None
    assert json.loads(hinted.stdout)["plates"][0]["region"] == "us"
    # A region no plate format belongs to (a typo) is refused, not read as no region.
    mistyped = CliRunner().invoke(app, ["recognize", "--region", "xx", str(files["good"])])
    assert mistyped.exit_code == 2 and "no plate format belongs to it" in mistyped.output


def _rolled_frame(path: Path, degrees: float = 40.0) -> Path:
    """A rendered ABC1234 frame as a camera with `degrees` of roll sees it (level text runs down to the
    right), written to `path`."""
    matrix = cv2.getRotationMatrix2D((640, 360), -degrees, 1.0)
    cv2.imwrite(
        str(path), cv2.warpAffine(render_frame("ABC1234"), matrix, (1280, 720), borderMode=cv2.BORDER_REFLECT)
    )
    return path


def test_recognize_roll_option_turns_the_frame_by_the_cameras_roll(tmp_path: Path) -> None:
    rolled = _rolled_frame(tmp_path / "rolled.jpg")
    # Turned by the roll, the plate is level and read; turned the wrong way it leans 80 degrees and
    # nothing is read (so the option is applied, with the sign the registry documents).
    right = CliRunner().invoke(app, ["recognize", "--roll", "40", str(rolled)])
    wrong = CliRunner().invoke(app, ["recognize", "--roll", "-40", str(rolled)])
    assert right.exit_code == 0 and wrong.exit_code == 0, right.output + wrong.output
    assert [p["text"] for p in json.loads(right.stdout)["plates"]][:1] == ["ABC1234"]
    assert json.loads(wrong.stdout)["plates"] == []
    refused = CliRunner().invoke(app, ["recognize", "--roll", "50", str(rolled)])
    assert refused.exit_code == 2 and "--roll must be within" in refused.output


def test_recognize_fails_only_when_every_file_fails(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["recognize", str(files["corrupt"]), str(files["missing"])])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2


def test_iou_and_confusions() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert confusions("ABC123", "A8C1Z3") == [("B", "8"), ("2", "Z")]
    # Different lengths: only equal-length replaced runs count, a dropped character is not one.
    assert confusions("ABC1234", "ABC124") == []
    assert confusions("OYO9FEU", "0Y09FEU") == [("O", "0"), ("O", "0")]
    # Of one length, but a character dropped and one added: the rest is not shifted into confusions.
    assert confusions("ABC123", "BC1234") == []
    assert confusions("WA56660", "IWA5666") == []
    assert plate_key(" ab-12 3 ") == "AB123"


def test_labels_of_both_layouts(tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "groundtruth.csv").write_text("file,state,plate\nb.png,ca,7abc123\na.png,ny, FUW-999\n")
    layout, labelled = load_labels(crops)
    assert layout == "crops"
    assert [(i.path.name, [(p.text, p.box) for p in i.plates]) for i in labelled] == [
        ("a.png", [("FUW999", None)]),
        ("b.png", [("7ABC123", None)]),
    ]
    boxed = tmp_path / "boxed"
    boxed.mkdir()
    (boxed / "car.txt").write_text(
        "car.jpg\t396\t340\t203\t46\tM5XSX\ncar.jpg 10 20 30 40 AB123\ncar.jpg\t1\t2\t3\t4\tKA 7721\textra\n"
    )
    (boxed / "bad.txt").write_text("bad.jpg x y w h PLATE\n")
    layout, labelled = load_labels(boxed)
    assert layout == "openalpr"
    (car,) = labelled
    assert [(p.text, p.box) for p in car.plates] == [
        ("M5XSX", (396, 340, 203, 46)),
        ("AB123", (10, 20, 30, 40)),
        # Tab-separated, a plate written with a space is one field (extra fields are ignored).
        ("KA7721", (1, 2, 3, 4)),
    ]
    with pytest.raises(LayoutError):
        load_labels(tmp_path / "boxed" / "..")


def test_bench_accuracy_summary_on_a_labelled_folder(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    frame = render_frame("ABC1234")
    cv2.imwrite(str(folder / "right.jpg"), frame)
    cv2.imwrite(str(folder / "wrong.jpg"), frame)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 nothing")
    # Where the plate is: the box `recognize` reports for the rendered frame.
    result = CliRunner().invoke(app, ["recognize", str(folder / "right.jpg")])
    x, y, w, h = json.loads(result.stdout)["plates"][0]["box"]
    (folder / "right.txt").write_text(f"right.jpg {x} {y} {w} {h} ABC1234\n")
    # Labelled with another plate at the same place: not exact, box hit, a B->8 style confusion.
    (folder / "wrong.txt").write_text(f"wrong.jpg\t{x}\t{y}\t{w}\t{h}\tABC1284\n")
    (folder / "broken.txt").write_text("broken.jpg 0 0 5 5 XYZ1\n")

    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layout"] == "openalpr"
    assert (summary["images"], summary["measured"]) == (3, 2)
    assert summary["exact_top1"] == 0.5 and summary["box_hit"] == 1.0
    # The shipped errata name none of these files: the corrected figures are the same.
    assert summary["errata"] == str(ERRATA_FILE)
    assert summary["corrected"] == {
        "labels": 0,
        "exact_top1": 0.5,
        "top3": summary["top3"],
        "confusions": summary["confusions"],
    }
    assert summary["stray_plates_per_image"] == 0.0 and summary["images_with_stray_plates"] == 0.0
    assert summary["confusions"] == [{"truth": "8", "read": "3", "count": 1}]
    assert summary["errors"][0]["image"] == "broken.jpg"
    assert summary["latency_ms"]["p50"] > 0 and summary["frame"] is None

    # The same images fitted onto square camera frames: boxes are mapped back through the fit.
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--frame", "1400x1400"])
    assert result.exit_code == 0, result.output
    framed = json.loads(result.stdout)
    assert framed["frame"] == "1400x1400"
    assert framed["exact_top1"] == 0.5 and framed["box_hit"] == 1.0
    assert framed["cpu_ms"]["p50"] > 0
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--frame", "wide"])
    assert result.exit_code != 0 and "WIDTHxHEIGHT" in result.output

    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--roll", "-46"])
    assert result.exit_code == 2 and "--roll must be within" in result.output
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--region-hint", "xx"])
    assert result.exit_code == 2 and "no plate format belongs to it" in result.output

    # An erratum saying wrong.jpg's plate is the one read: the figures on the labels as given stay,
    # the corrected ones count it, and its confusion is no longer charged to the reader.
    errata = tmp_path / "errata.csv"
    errata.write_text("# a comment\nfile,label,corrected,evidence\nwrong.jpg,ABC1284,ABC1234,seen\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata)])
    assert result.exit_code == 0, result.output
    corrected = json.loads(result.stdout)
    assert corrected["exact_top1"] == 0.5 and corrected["box_hit"] == 1.0
    assert corrected["corrected"] == {"labels": 1, "exact_top1": 1.0, "top3": 1.0, "confusions": []}
    assert corrected["confusions"] == summary["confusions"]
    # Misses are listed on request only: an image read wrong against its label as given or its
    # corrected label.
    assert "misses" not in corrected
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata), "--misses"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["misses"] == [
        {"image": "wrong.jpg", "truth": ["ABC1284"], "corrected": ["ABC1234"], "read": "ABC1234"}
    ]
    # A reading that agrees with a label an erratum corrects is listed too.
    errata.write_text("file,label,corrected,evidence\nright.jpg,ABC1234,ABC1235,seen\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata), "--misses"])
    assert [(m["image"], m["corrected"], m["read"]) for m in json.loads(result.stdout)["misses"]] == [
        ("right.jpg", ["ABC1235"], "ABC1234"),
        ("wrong.jpg", ["ABC1284"], "ABC1234"),
    ]
    # The corrected block's confusions are counted against the corrected label.
    errata.write_text("file,label,corrected,evidence\nwrong.jpg,ABC1284,ABC1235,seen\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata)])
    assert json.loads(result.stdout)["corrected"]["confusions"] == [{"truth": "5", "read": "4", "count": 1}]
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", ""])
    assert result.exit_code == 0 and json.loads(result.stdout)["errata"] is None
    errata.write_text("# why\n\nfile,label,corrected\nwrong.jpg,ABC1284,\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata)])
    assert result.exit_code == 2 and "line 4 needs file, label and corrected" in result.output
    errata.write_text("file,label,corrected\nwrong.jpg,ABC1284,ABC1234\nwrong.jpg,ABC-1284,ABC1235\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", str(errata)])
    assert result.exit_code == 2 and "line 3 lists ('wrong.jpg', 'ABC1284') again" in result.output


def test_a_plate_read_away_from_the_label_is_a_stray_and_no_confusion(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    cv2.imwrite(str(folder / "elsewhere.jpg"), render_frame("ABC1234"))
    # Labelled with a plate at another place: the plate read is a stray (as a sign read instead of
    # the plate would be), the labelled plate is missed, and no character of it was misread.
    (folder / "elsewhere.txt").write_text("elsewhere.jpg 0 0 5 5 ABC1284\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", ""])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exact_top1"] == 0.0 and summary["box_hit"] == 0.0
    assert summary["stray_plates_per_image"] == 1.0
    assert summary["confusions"] == [] and summary["corrected"]["confusions"] == []


def test_a_crop_read_counts_as_found_whatever_the_lines_share_of_it(tmp_path: Path) -> None:
    # A crop's label box is the whole image; the plate's box is its text line, far under IoU 0.4 of
    # a crop with a wide margin around the plate: still the plate, found.
    plate = render_frame("ABC1234")
    cv2.imwrite(str(tmp_path / "one.jpg"), plate)
    result = CliRunner().invoke(app, ["recognize", "--json", str(tmp_path / "one.jpg")])
    x, y, w, h = json.loads(result.stdout)["plates"][0]["box"]
    crop = cv2.copyMakeBorder(plate[y : y + h, x : x + w], 2 * h, 2 * h, w, w, cv2.BORDER_REPLICATE)
    folder = tmp_path / "crops"
    folder.mkdir()
    cv2.imwrite(str(folder / "wide.png"), crop)
    (folder / "groundtruth.csv").write_text("file,state,plate\nwide.png,ca,ABC1234\n")
    assert iou((w, 2 * h, w, h), (0, 0, crop.shape[1], crop.shape[0])) < 0.4
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--errata", ""])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layout"] == "crops" and summary["exact_top1"] == 1.0 and summary["box_hit"] == 1.0


def test_printed_region_in_recognize_and_bench_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_printed_region import plate_with_word

    crops = tmp_path / "crops"
    crops.mkdir()
    cv2.imwrite(str(crops / "tx.png"), plate_with_word("TEXAS")[350:500, 470:830])
    cv2.imwrite(str(crops / "nm.png"), plate_with_word("NEW MEXICO")[350:500, 470:830])
    cv2.imwrite(str(crops / "plain.png"), render_frame("ABC1234")[390:490, 470:830])
    # The labels' states: Texas right, New Mexico labelled Arizona (named, wrong), plain named none.
    (crops / "groundtruth.csv").write_text(
        "file,state,plate\ntx.png,tx,ABC1234\nnm.png,az,ABC1234\nplain.png,ca,ABC1234\n"
    )
    # In-process the words are not read by default ("auto": only with Triton).
    plain = CliRunner().invoke(app, ["recognize", str(crops / "tx.png")])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["plates"][0]["region_source"] is None
    monkeypatch.setenv("PLATEWATCH_PRINTED_REGION", "on")
    result = CliRunner().invoke(app, ["recognize", str(crops / "tx.png"), str(crops / "plain.png")])
    assert result.exit_code == 0, result.output
    texas, unmarked = (json.loads(line)["plates"][0] for line in result.stdout.splitlines())
    assert (texas["text"], texas["region"], texas["region_source"]) == ("ABC1234", "us-tx", "printed")
    assert (unmarked["region"], unmarked["region_source"]) == (None, None)  # ABC1234: US or BR
    result = CliRunner().invoke(app, ["bench", "accuracy", str(crops), "--errata", ""])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exact_top1"] == 1.0
    assert summary["printed_region"] == {"labelled": 3, "named": 0.6667, "right": 0.3333, "wrong": 1}


def test_errata_correct_only_the_label_they_name(tmp_path: Path) -> None:
    errata = tmp_path / "errata.csv"
    errata.write_text(
        "file,label,corrected,evidence\ncar.jpg,RKO26AJ,RK026AJ,format\nb.png,0,00000,sample plate\n"
    )
    table = load_errata(errata)
    assert table == {("car.jpg", "RKO26AJ"): "RK026AJ", ("b.png", "0"): "00000"}
    boxed = tmp_path / "boxed"
    boxed.mkdir()
    (boxed / "car.txt").write_text("car.jpg 1 2 3 4 RKO26AJ\ncar.jpg 5 6 7 8 RKO82AL\n")
    (boxed / "other.txt").write_text("other.jpg 1 2 3 4 RKO26AJ\n")
    _, labelled = load_labels(boxed, table)
    assert [[(p.text, p.corrected, p.truth) for p in image.plates] for image in labelled] == [
        [("RKO26AJ", "RK026AJ", "RK026AJ"), ("RKO82AL", None, "RKO82AL")],
        [("RKO26AJ", None, "RKO26AJ")],
    ]
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "groundtruth.csv").write_text("file,state,plate\nb.png,vt,0\nc.png,vt,0\n")
    _, labelled = load_labels(crops, table)
    assert [p.truth for image in labelled for p in image.plates] == ["00000", "0"]


def test_shipped_errata_change_the_labels_they_name() -> None:
    table = load_errata(ERRATA_FILE)
    assert table and all(label != corrected for (_, label), corrected in table.items())


def test_the_errata_screens_flag_what_the_errata_file_says() -> None:
    """The screens label_errata.csv describes, run again: EU labels that fit no format of
    grammars.yaml as given but one after a look-alike fix, and US labels of one or two characters;
    every flagged label is listed but for those checked against their image and kept."""
    if not (DATASETS_DIR / "openalpr-eu").is_dir() or not (DATASETS_DIR / "openalpr-us-crops").is_dir():
        pytest.skip(f"the shared sets are absent under {DATASETS_DIR}: the screens cannot be run")
    formats = default_grammar().formats
    flagged_eu = set()
    for item in datasets.eu_crops():
        text = strip_text(item.plate)
        if any(_exact_pattern(fmt.positions).fullmatch(text) for fmt in formats):
            continue
        if any((fit := _fit(text, fmt.positions)) is not None and fit[1] > 0 for fmt in formats):
            flagged_eu.add(item.name)
    flagged_us = {item.name for item in datasets.us_crops() if len(item.plate) <= 2}
    kept = {"eu9.jpg", "test_049.jpg"}  # W053011 and KMBORAK: the plates show them so
    assert len(flagged_eu) == 8 and kept <= flagged_eu and len(flagged_us) == 5
    assert {file for file, _ in load_errata(ERRATA_FILE)} == (flagged_eu - kept) | flagged_us


def test_shipped_errata_name_labels_of_the_shared_sets() -> None:
    table = load_errata(ERRATA_FILE)
    labels: dict[tuple[str, str], bool] = {}
    for folder in ("openalpr-eu", "openalpr-us-crops"):
        if not (DATASETS_DIR / folder).is_dir():
            pytest.skip(f"{DATASETS_DIR / folder} is absent: the errata's labels cannot be checked")
        _, images = load_labels(DATASETS_DIR / folder)
        labels.update({(image.path.name, p.text): True for image in images for p in image.plates})
    assert [key for key in table if key not in labels] == []


def test_bench_accuracy_reads_with_the_cameras_roll(tmp_path: Path) -> None:
    folder = tmp_path / "rolled"
    folder.mkdir()
    _rolled_frame(folder / "rolled.jpg")
    (folder / "rolled.txt").write_text("rolled.jpg 400 200 480 320 ABC1234\n")
    summaries = {}
    for roll in ("40", "-40"):
        result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--roll", roll])
        assert result.exit_code == 0, result.output
        summaries[roll] = json.loads(result.stdout)
    assert summaries["40"]["roll"] == 40.0 and summaries["40"]["exact_top1"] == 1.0
    assert summaries["-40"]["exact_top1"] == 0.0  # turned the wrong way: the roll reached the reader


def test_load_image_errors_name_the_problem(files: dict[str, Path]) -> None:
    for key, message in (("empty", "empty file"), ("bomb", "image too large"), ("missing", "cannot read")):
        with pytest.raises(ImageError, match=message):
            load_image(files[key])


def test_bench_accuracy_lists_an_image_read_as_no_plate_as_a_miss(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 200, 3), 128, np.uint8))
    (folder / "blank.txt").write_text("blank.png 0 0 200 120 ab-12\n")
    result = CliRunner().invoke(app, ["bench", "accuracy", str(folder), "--misses", "--errata", ""])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exact_top1"] == 0.0
    assert summary["misses"] == [{"image": "blank.png", "truth": ["AB12"], "corrected": ["AB12"], "read": ""}]
