"""A real tritonserver (session fixture) serves plate_det, plate_rec, plate_rec_crnn and plate_cls with
dynamic batching, and reading through it gives what in-process onnxruntime gives, for both
recognizers and the plate classifier."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from services.inference import model_io, postprocess
from services.inference.engine import (
    RECOGNIZERS,
    OnnxBackend,
    PlateRecognizer,
    RecognizerName,
    TritonBackend,
)
from tests.unit.test_inference_postprocess import render_frame
from tests.unit.test_inference_two_rows import render_two_row_frame


@pytest.fixture(scope="module")
def client(triton_url: str):  # type: ignore[no-untyped-def]
    client = grpcclient.InferenceServerClient(triton_url)
    yield client
    client.close()


def test_all_models_are_ready(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_ready()
    for model in ("plate_det", "plate_rec", "plate_rec_crnn", "plate_cls"):
        assert client.is_model_ready(model)


def test_dynamic_batching_config_is_loaded(client: grpcclient.InferenceServerClient) -> None:
    for model, batch in (("plate_det", 4), ("plate_rec", 16), ("plate_rec_crnn", 16), ("plate_cls", 16)):
        config = client.get_model_config(model, as_json=True)["config"]
        assert config["backend"] == "python"
        assert config["max_batch_size"] == batch
        assert "dynamic_batching" in config
        assert config["instance_group"][0]["kind"] == "KIND_CPU"
        # Two detector instances overlap frames' detection (triton_repo.RepositoryOptions).
        assert config["instance_group"][0]["count"] == (2 if model == "plate_det" else 1)


def test_rec_shapes_over_triton(triton_url: str) -> None:
    backend = TritonBackend(triton_url, recognizer="ppocr")
    try:
        crops = np.full((3, 48, 320, 3), 128, np.uint8)
        indices, probs = backend.recognize(crops)
        assert indices.shape == (3, 40, 5) and indices.dtype == np.int32
        assert probs.shape == (3, 40, 5) and probs.dtype == np.float32
    finally:
        backend.close()


def test_crnn_over_triton_matches_onnxruntime(triton_url: str) -> None:
    backend = TritonBackend(triton_url, recognizer="crnn")
    local = OnnxBackend(threads=1, recognizer="crnn")
    crops = np.stack(
        [postprocess.crnn_input(render_frame(text)[400:481, 480:821]) for text in ("ABC1234", "XYZ987")]
    )
    try:
        assert backend.is_ready()
        indices, probs = backend.recognize(crops)
    finally:
        backend.close()
    assert indices.shape == (2, model_io.CRNN_STEPS, model_io.TOP_K)
    local_indices, local_probs = local.recognize(crops)
    assert np.array_equal(indices[..., 0], local_indices[..., 0])
    assert np.allclose(probs, local_probs, atol=1e-4)


def test_plate_classifier_over_triton_matches_onnxruntime(triton_url: str) -> None:
    backend = TritonBackend(triton_url)
    frame = render_frame("KT4821")
    cuts = np.stack(
        [
            postprocess.classifier_input(frame[385:495, 450:850]),
            postprocess.classifier_input(frame[60:130, 80:560]),
        ]
    )
    try:
        scores = backend.classify(cuts)
    finally:
        backend.close()
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert np.allclose(scores, OnnxBackend(threads=1).classify(cuts), atol=1e-5)


def test_concurrent_requests_are_batched(client: grpcclient.InferenceServerClient, triton_url: str) -> None:
    """Parallel single-crop requests get merged: fewer executions than inferences."""
    before = client.get_inference_statistics("plate_rec", as_json=True)["model_stats"][0]
    backend = TritonBackend(triton_url, recognizer="ppocr")
    crop = postprocess.rec_input(render_frame()[424:471, 496:749])[None]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: backend.recognize(crop), range(32)))
    finally:
        backend.close()
    assert all(np.array_equal(r[0], results[0][0]) for r in results)
    after = client.get_inference_statistics("plate_rec", as_json=True)["model_stats"][0]
    inferences = int(after.get("inference_count", 0)) - int(before.get("inference_count", 0))
    executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
    assert inferences == 32
    assert executions < inferences


@pytest.mark.parametrize("recognizer", RECOGNIZERS)
def test_triton_and_onnxruntime_read_the_same(triton_url: str, recognizer: RecognizerName) -> None:
    frames = [render_frame("ABC1234"), render_frame("XYZ987")]
    via_triton = PlateRecognizer(TritonBackend(triton_url, recognizer=recognizer))
    in_process = PlateRecognizer(OnnxBackend(threads=1, recognizer=recognizer))
    try:
        remote = via_triton.recognize(frames)
        local = in_process.recognize(frames)
    finally:
        via_triton.backend.close()
    assert [[p.text for p in r] for r in remote] == [["ABC1234"], ["XYZ987"]]
    assert [[p.text for p in r] for r in remote] == [[p.text for p in r] for r in local]
    assert [[p.box for p in r] for r in remote] == [[p.box for p in r] for r in local]
    assert remote[0][0].confidence == pytest.approx(local[0][0].confidence, abs=1e-4)
    assert via_triton.backend.is_ready()


def test_a_two_row_plate_reads_the_same_through_triton(triton_url: str) -> None:
    """Two stacked rows are classified and read side by side on the served models too."""
    frame = render_two_row_frame("ABC", "1234")
    via_triton = PlateRecognizer(TritonBackend(triton_url))
    try:
        remote = via_triton.recognize([frame])[0]
    finally:
        via_triton.backend.close()
    local = PlateRecognizer(OnnxBackend(threads=1)).recognize([frame])[0]
    assert (
        [(p.text, p.box) for p in remote] == [("ABC1234", local[0].box)] == [(p.text, p.box) for p in local]
    )
    assert remote[0].plate_score == pytest.approx(local[0].plate_score, abs=1e-4)
