"""Averaging exported plate-CRNN models of one graph (`services/inference/training/soup.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from services.inference.training import soup
from services.inference.training.soup import average
from services.inference.triton_repo import CRNN_ONNX


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _shifted(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """`model` with random noise added to every float initializer."""
    rng = np.random.default_rng(seed)
    copy = _copy(model)
    for init in copy.graph.initializer:
        array = numpy_helper.to_array(init)
        if np.issubdtype(array.dtype, np.floating):
            noisy = (array + rng.normal(0, 0.1, array.shape)).astype(array.dtype)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    return copy


def test_soup_is_the_mean_of_every_float_initializer() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    models = [shipped, _shifted(shipped, 1), _shifted(shipped, 2)]
    averaged = average(models)
    onnx.checker.check_model(averaged)
    expected = [_weights(model) for model in models]
    got = _weights(averaged)
    assert got.keys() == expected[0].keys()
    floats = 0
    for name, array in got.items():
        want = np.mean([weights[name] for weights in expected], axis=0)
        np.testing.assert_allclose(array, want, rtol=0, atol=1e-6)
        assert array.dtype == expected[0][name].dtype
        floats += np.issubdtype(array.dtype, np.floating)
    assert floats == 18  # the CRNN's nine convolutions, weight and bias each
    assert [node.op_type for node in averaged.graph.node] == [node.op_type for node in shipped.graph.node]


def test_soup_of_a_model_with_itself_is_the_model() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    averaged = average([shipped, shipped])
    for name, array in _weights(averaged).items():
        np.testing.assert_array_equal(array, _weights(shipped)[name])


def test_soup_refuses_models_that_do_not_share_a_graph() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    with pytest.raises(ValueError, match="at least two"):
        average([shipped])
    other = _copy(shipped)
    other.graph.node[1].op_type = "Sigmoid"
    strided = _copy(shipped)
    pool = next(node for node in strided.graph.node if node.op_type == "MaxPool")
    next(attribute for attribute in pool.attribute if attribute.name == "strides").ints[:] = [1, 1]
    relabelled = _copy(shipped)
    next(prop for prop in relabelled.metadata_props if prop.key == "character").value = "ABC"
    reshaped = _copy(shipped)
    first = reshaped.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first)[:1], first.name))
    renamed = _copy(shipped)
    renamed.graph.initializer[0].name = "elsewhere"
    retyped = _copy(shipped)
    first = retyped.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first).astype(np.float16), first.name))
    for different in (other, strided, relabelled, reshaped, renamed, retyped):
        with pytest.raises(ValueError, match="model 1's graph, metadata or weight shapes differ"):
            average([shipped, different])
    axes = _copy(shipped)
    integer = next(init for init in axes.graph.initializer if init.data_type == onnx.TensorProto.INT64)
    integer.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(integer) + 1, integer.name))
    with pytest.raises(ValueError, match="non-float"):
        average([shipped, axes])


def test_soup_command_writes_a_checked_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shifted = tmp_path / "shifted.onnx"
    onnx.save(_shifted(onnx.load(str(CRNN_ONNX)), 3), str(shifted))
    out = tmp_path / "soups" / "soup.onnx"
    monkeypatch.setattr(sys, "argv", ["soup", str(out), str(CRNN_ONNX), str(shifted)])
    soup.main()
    written = _weights(onnx.load(str(out)))
    expected = [_weights(onnx.load(str(path))) for path in (CRNN_ONNX, shifted)]
    np.testing.assert_allclose(written["c1_w"], (expected[0]["c1_w"] + expected[1]["c1_w"]) / 2, atol=1e-6)
