"""Averaging exported plate-CRNN models of one graph (`services/inference/training/soup.py`)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from services.inference.training.soup import average
from services.inference.triton_repo import CRNN_ONNX


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _shifted(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """`model` with random noise added to every float initializer."""
    rng = np.random.default_rng(seed)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        array = numpy_helper.to_array(init)
        if np.issubdtype(array.dtype, np.floating):
            noisy = (array + rng.normal(0, 0.1, array.shape)).astype(array.dtype)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    return copy


def test_soup_is_the_mean_of_every_float_initializer() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    models = [shipped, _shifted(shipped, 1), _shifted(shipped, 2)]
    soup = average(models)
    onnx.checker.check_model(soup)
    expected = [_weights(model) for model in models]
    got = _weights(soup)
    assert got.keys() == expected[0].keys()
    floats = 0
    for name, array in got.items():
        want = np.mean([weights[name] for weights in expected], axis=0)
        np.testing.assert_allclose(array, want, rtol=0, atol=1e-6)
        assert array.dtype == expected[0][name].dtype
        floats += np.issubdtype(array.dtype, np.floating)
    assert floats >= 18  # the CRNN's nine convolutions, weight and bias each
    assert [node.op_type for node in soup.graph.node] == [node.op_type for node in shipped.graph.node]


def test_soup_of_a_model_with_itself_is_the_model() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    soup = average([shipped, shipped])
    for name, array in _weights(soup).items():
        np.testing.assert_array_equal(array, _weights(shipped)[name])


def test_soup_refuses_models_that_do_not_share_a_graph() -> None:
    shipped = onnx.load(str(CRNN_ONNX))
    with pytest.raises(ValueError, match="at least two"):
        average([shipped])
    other = onnx.ModelProto()
    other.CopyFrom(shipped)
    other.graph.node[1].op_type = "Sigmoid"
    with pytest.raises(ValueError, match="graph differs"):
        average([shipped, other])
    reshaped = onnx.ModelProto()
    reshaped.CopyFrom(shipped)
    first = reshaped.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first)[:1], first.name))
    with pytest.raises(ValueError, match=first.name):
        average([shipped, reshaped])
    axes = onnx.ModelProto()
    axes.CopyFrom(shipped)
    integer = next(init for init in axes.graph.initializer if init.data_type == onnx.TensorProto.INT64)
    integer.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(integer) + 1, integer.name))
    with pytest.raises(ValueError, match="non-float"):
        average([shipped, axes])
