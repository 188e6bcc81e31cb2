"""The wire graphs (services/inference/wire_models.py) that every backend serves: on onnxruntime they
give what model_io's numpy reference gives around the source graph for the same uint8 input, and
their tensors are the ones the rendered config.pbtxt declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from onnx import version_converter
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from services.cli import app
from services.inference import det_build, model_io, postprocess, wire_models
from services.inference.training import render
from services.inference.triton_repo import MODEL_FILES, RepositoryOptions, prepare_model_repository

# Hershey faces: no font files needed.
FONTS = (Path("hershey-simplex"), Path("hershey-duplex"))
ONNX_TO_TRITON = {
    onnx.TensorProto.UINT8: model_config_pb2.TYPE_UINT8,
    onnx.TensorProto.INT32: model_config_pb2.TYPE_INT32,
    onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
}


def _session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _source_run(path: Path, tensor: np.ndarray) -> np.ndarray:
    session = _session(path)
    return np.asarray(session.run(None, {session.get_inputs()[0].name: tensor})[0])


@pytest.fixture(scope="module")
def rendered_crops() -> list[np.ndarray]:
    """Rendered plate and non-plate line crops (BGR), as the recognizer and classifier see them."""
    return [render.render_sample(np.random.default_rng(seed), FONTS)[0] for seed in range(12)]


# "original" is the wheel's opset-12 export (Squeeze takes its axes as an attribute there).
@pytest.mark.parametrize("precision", ["fp32", "int8", "original"])
def test_detector_wire_graph_gives_the_stubs_probability_map(precision: det_build.DetPrecision) -> None:
    frames = det_build.calibration_frames()
    batch = np.stack([postprocess.letterbox(frames[i], 480, 288)[0] for i in (3, 9)])
    source = det_build.det_model(precision)
    expected = model_io.det_output(_source_run(source, model_io.det_input(batch)))
    got = _session(wire_models.wire_model("plate_det", source)).run(None, {"image": batch})[0]
    assert got.dtype == np.uint8 and got.shape == expected.shape == (2, 288, 480)
    assert (expected > 128).sum() > 200, "the demo frames should hold text"
    difference = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert difference.max() <= 1
    # Rounding can differ only where the probability sits at a rounding boundary: a few of the
    # pixels that are neither 0 nor 255 (truncating instead of rounding would change half of them).
    between = int(((expected > 0) & (expected < 255)).sum())
    assert between > 20
    assert (difference > 0).sum() <= max(2, 0.02 * between)


@pytest.mark.parametrize("name", ["plate_rec_crnn", "plate_rec"])
def test_reader_wire_graphs_give_the_stubs_top_classes(
    name: wire_models.WireModelName, rendered_crops: list[np.ndarray]
) -> None:
    if name == "plate_rec_crnn":
        batch = np.stack([postprocess.crnn_input(c) for c in rendered_crops])
        expected = model_io.rec_output(_source_run(MODEL_FILES[name], model_io.crnn_input(batch)))
    else:
        batch = np.stack([postprocess.rec_input(c) for c in rendered_crops])
        expected = model_io.rec_output(_source_run(MODEL_FILES[name], model_io.rec_input(batch)))
    indices, probs = _session(wire_models.wire_model(name, MODEL_FILES[name])).run(None, {"crop": batch})
    assert indices.dtype == np.int32 and probs.dtype == np.float32
    assert indices.shape == probs.shape == expected[0].shape
    np.testing.assert_allclose(probs, expected[1], atol=1e-5)
    assert (np.diff(probs, axis=2) <= 0).all(), "best first"
    # Classes may trade places only where their probabilities tie.
    for n, t, k in np.argwhere(indices != expected[0]):
        neighbours = probs[n, t, max(0, k - 1) : k + 2]
        assert (np.abs(np.delete(neighbours, min(k, 1)) - probs[n, t, k]) < 1e-5).any(), (n, t, k)
    assert len(np.unique(indices[..., 0])) > 2, "the crops should read as more than blanks"


def test_classifier_wire_graph_gives_the_stubs_probabilities(rendered_crops: list[np.ndarray]) -> None:
    batch = np.stack([postprocess.classifier_input(c) for c in rendered_crops])
    expected = _source_run(MODEL_FILES["plate_cls"], model_io.cls_input(batch))
    wire = wire_models.wire_model("plate_cls", MODEL_FILES["plate_cls"])
    (got,) = _session(wire).run(None, {"crop": batch})
    assert got.shape == (len(rendered_crops), 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.min() < 0.5 < got.max(), "the crops should hold plates and non-plates"


@pytest.mark.parametrize("opset", [13, 18])
def test_standardizing_is_spelled_for_the_sources_opset(
    opset: int, rendered_crops: list[np.ndarray], tmp_path: Path
) -> None:
    """ReduceMean takes its axes as an attribute before opset 18 and as an input from it."""
    source = tmp_path / f"cls-opset{opset}.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(MODEL_FILES["plate_cls"])), opset), str(source))
    batch = np.stack([postprocess.classifier_input(c) for c in rendered_crops])
    expected = _source_run(source, model_io.cls_input(batch))
    wire = wire_models.wire_model("plate_cls", source)
    reduce = [n for n in wire.graph.node if n.op_type == "ReduceMean"]
    assert len(reduce) == 2 and all(len(n.input) == (2 if opset >= 18 else 1) for n in reduce)
    np.testing.assert_allclose(_session(wire).run(None, {"crop": batch})[0], expected, atol=1e-5)


def test_source_names_that_clash_with_the_wire_tensors_are_refused(tmp_path: Path) -> None:
    # The classifier's output is called plate_prob: fine for plate_cls, a clash for a reader.
    with pytest.raises(ValueError, match="clash"):
        wire_models.wire_model("plate_rec_crnn", MODEL_FILES["plate_cls"])
    model = onnx.load(str(MODEL_FILES["plate_cls"]))
    model.graph.node[0].output[0] = "wire_pre_0_float"
    model.graph.node[1].input[0] = "wire_pre_0_float"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, str(renamed))
    with pytest.raises(ValueError, match="clash"):
        wire_models.wire_model("plate_cls", renamed)


def test_wire_graphs_are_built_once_per_source(tmp_path: Path) -> None:
    source = MODEL_FILES["plate_cls"]
    first = wire_models.build_wire_model("plate_cls", source, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert wire_models.build_wire_model("plate_cls", source, tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    changed = tmp_path / "changed.onnx"
    model = onnx.load(str(source))
    model.doc_string = "retrained"
    onnx.save(model, str(changed))
    assert wire_models.build_wire_model("plate_cls", changed, tmp_path) != first
    # The wrappers' own source is part of the key: an edit rebuilds without a version bump.
    monkeypatched = tmp_path / "wire_models_edited.py"
    monkeypatched.write_text(Path(wire_models.__file__).read_text() + "\n# edited\n")
    real_file = wire_models.__file__
    try:
        wire_models.__file__ = str(monkeypatched)
        assert wire_models.build_wire_model("plate_cls", source, tmp_path) != first
    finally:
        wire_models.__file__ = real_file
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    """An ONNX tensor's dims after the batch, -1 where symbolic (Triton's spelling)."""
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim[1:]]


def test_gpu_repository_declares_the_wire_graphs_tensors(tmp_path: Path) -> None:
    options = RepositoryOptions(backend="onnxruntime", instance_kind="gpu", det_precision="fp32")
    repository = prepare_model_repository(tmp_path / "models", options)
    for name in MODEL_FILES:
        config = _config(repository / name / "config.pbtxt")
        files = sorted(p.name for p in (repository / name / "1").iterdir())
        assert files == ["model.onnx"], "the onnxruntime backend needs no Python files"
        assert config.name == name and config.backend == "onnxruntime"
        assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
        assert [g.count for g in config.instance_group] == [2 if name == "plate_det" else 1]
        assert not config.parameters, "GPU instances take no CPU thread settings"
        graph = onnx.load(str(repository / name / "1" / "model.onnx")).graph
        for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
            assert [t.name for t in declared] == [t.name for t in actual]
            for tensor, value in zip(declared, actual, strict=True):
                assert tensor.data_type == ONNX_TO_TRITON[value.type.tensor_type.elem_type], tensor.name
                assert list(tensor.dims) == _dims(value), tensor.name
        assert config.max_batch_size > 0 and config.HasField("dynamic_batching")


def test_cpu_repositories_and_switching_backends(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    prepare_model_repository(dest, RepositoryOptions(backend="python", threads=3))
    config = _config(dest / "plate_det" / "config.pbtxt")
    assert config.backend == "python"
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.parameters["intra_op_num_threads"].string_value == "3"
    # The stub runs the same wire graph as the onnxruntime backend would.
    assert sorted(p.name for p in (dest / "plate_det" / "1").iterdir()) == ["model.onnx", "model.py"]
    assert onnx.load(str(dest / "plate_det" / "1" / "model.onnx")).graph.input[0].name == "image"
    (dest / "plate_det" / "1" / "model_io.py").write_text("# left by an older repository\n")
    # Rendered over it for the onnxruntime backend on CPUs: the stub goes, the graph stays.
    prepare_model_repository(dest, RepositoryOptions(backend="onnxruntime", threads=3))
    config = _config(dest / "plate_det" / "config.pbtxt")
    assert config.backend == "onnxruntime"
    assert config.parameters["intra_op_thread_count"].string_value == "3"
    assert sorted(p.name for p in (dest / "plate_det" / "1").iterdir()) == ["model.onnx"]


def test_repository_command_renders_the_gpu_repository(tmp_path: Path) -> None:
    dest = tmp_path / "gpu"
    args = ["triton", "repository", str(dest), "--backend", "onnxruntime", "--instance-kind", "gpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fp32 detector" in result.output, "GPUs default to the exact detector build"
    config = _config(dest / "plate_det" / "config.pbtxt")
    assert config.backend == "onnxruntime" and config.instance_group[0].count == 2
    refused = CliRunner().invoke(app, ["triton", "repository", str(tmp_path / "x"), "--instance-kind", "gpu"])
    assert refused.exit_code != 0 and "python backend" in refused.output
    zero = CliRunner().invoke(app, ["triton", "repository", str(tmp_path / "y"), "--det-instance-count", "0"])
    assert zero.exit_code != 0 and not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "python", "instance_kind": "gpu"}, "python backend"),
        ({"backend": "onnxruntime", "instance_kind": "gpu", "det_precision": "int8"}, "int8"),
        ({"backend": "tensorrt"}, "backend"),
        ({"instance_kind": "tpu"}, "instance_kind"),
        ({"det_instance_count": 0}, "at least 1"),
        ({"det_precision": "int4"}, "det_precision"),
        ({"threads": 0}, "at least 1"),
    ],
)
def test_repository_options_refuse_what_cannot_be_served(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RepositoryOptions(**options)  # type: ignore[arg-type]


def test_unknown_model_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        wire_models.wire_model("plate_ocr", MODEL_FILES["plate_cls"])  # type: ignore[arg-type]
