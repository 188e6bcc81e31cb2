"""The Triton Python-backend stub (deploy/triton/model.py), run here against a stand-in for
`triton_python_backend_utils` (only Triton's stub process provides the real one): it serves the
rendered wire graph as it is, batches requests of one shape into one run and splits the outputs
back, and runs onnxruntime with the config's threads, not spinning when there are several."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from services.inference.engine import SPINNING_CONFIG_KEY
from services.inference.triton_repo import TEMPLATES_DIR, RepositoryOptions, prepare_model_repository


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class _Response:
    def __init__(self, output_tensors: list[_Tensor]) -> None:
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors}


class _Request:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.tensor = _Tensor(name, array)


def _stub_module(monkeypatch: pytest.MonkeyPatch, version_dir: Path) -> Any:
    utils = types.ModuleType("triton_python_backend_utils")
    utils.Tensor = _Tensor  # type: ignore[attr-defined]
    utils.InferenceResponse = _Response  # type: ignore[attr-defined]
    utils.get_input_tensor_by_name = lambda request, name: (
        request.tensor if request.tensor.name() == name else None
    )  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    spec = importlib.util.spec_from_file_location("platewatch_triton_stub", version_dir / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_model_repository(tmp_path_factory.mktemp("stub") / "models", RepositoryOptions(threads=2))


def _model(monkeypatch: pytest.MonkeyPatch, repository: Path, name: str) -> Any:
    version_dir = repository / name / "1"
    assert (version_dir / "model.py").read_text() == (TEMPLATES_DIR / "model.py").read_text()
    model = _stub_module(monkeypatch, version_dir).TritonPythonModel()
    # What Triton hands the stub: the model's config as JSON with the proto's own field names.
    config = text_format.Parse(
        (repository / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    model.initialize({"model_config": json_format.MessageToJson(config, preserving_proto_field_name=True)})
    return model


def test_stub_runs_the_config_threads_without_spinning(
    monkeypatch: pytest.MonkeyPatch, repository: Path
) -> None:
    options = _model(monkeypatch, repository, "plate_cls").session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry(SPINNING_CONFIG_KEY) == "0"


def test_stub_batches_requests_and_splits_the_outputs(
    monkeypatch: pytest.MonkeyPatch, repository: Path
) -> None:
    model = _model(monkeypatch, repository, "plate_rec_crnn")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (n, 32, 128), dtype=np.uint8) for n in (1, 3)]
    responses = model.execute([_Request("crop", c) for c in crops])
    alone = [model.execute([_Request("crop", c)])[0] for c in crops]
    for response, single, batch in zip(responses, alone, crops, strict=True):
        assert set(response.outputs) == {"top_indices", "top_probs"}
        assert response.outputs["top_indices"].dtype == np.int32
        assert response.outputs["top_indices"].shape == (len(batch), 32, 5)
        np.testing.assert_array_equal(response.outputs["top_indices"], single.outputs["top_indices"])


def test_stub_runs_detector_requests_of_different_sizes_apart(
    monkeypatch: pytest.MonkeyPatch, repository: Path
) -> None:
    model = _model(monkeypatch, repository, "plate_det")
    images = [np.zeros((1, 64, 96, 3), np.uint8), np.zeros((1, 96, 64, 3), np.uint8)]
    responses = model.execute([_Request("image", i) for i in images])
    assert [r.outputs["prob"].shape for r in responses] == [(1, 64, 96), (1, 96, 64)]
    assert all(r.outputs["prob"].dtype == np.uint8 for r in responses)
