"""A "model soup": one plate-CRNN ONNX whose weights are the average of several exported models of the
same graph (Wortsman et al. 2022, "Model soups"; with the start model, "WiSE-FT").

    .venv/bin/python -m services.inference.training.soup OUT.onnx A.onnx B.onnx [C.onnx ...]

Averaging only makes sense for models fine-tuned from one start, which stay in one basin of the loss;
two models trained apart would average to noise. It is done on the exported graph, where export.py has
folded each batch norm into its convolution: the soup is the average of the folded weights, a model
in its own right (not the same as averaging before folding, though close for nearby models).

Refuses models that differ in anything but their weights' values (nodes and their attributes, graph
inputs and outputs, opsets, metadata such as the character set, initializer names, types and shapes);
integer initializers (e.g. Squeeze axes) must be equal and are copied, not averaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def _without_weights(model: onnx.ModelProto) -> bytes:
    """The model serialized with its initializers' values left out: nodes with their attributes,
    graph inputs and outputs, opsets and metadata (the CRNN's character set), and the initializers'
    names, types and shapes."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    for init in skeleton.graph.initializer:
        name, shape, data_type = init.name, list(init.dims), init.data_type
        init.Clear()
        init.name, init.data_type = name, data_type
        init.dims.extend(shape)
    return skeleton.SerializeToString(deterministic=True)


def average(models: list[onnx.ModelProto]) -> onnx.ModelProto:
    """A copy of models[0] whose float initializers are the mean of all models'. Raises ValueError
    when fewer than two models are given or they differ in more than their weights' values."""
    if len(models) < 2:
        raise ValueError("a soup needs at least two models")
    first = models[0]
    skeleton = _without_weights(first)
    weights = [
        {init.name: numpy_helper.to_array(init) for init in model.graph.initializer} for model in models
    ]
    for index, model in enumerate(models[1:], start=1):
        if _without_weights(model) != skeleton:
            raise ValueError(f"model {index}'s graph, metadata or weight shapes differ from model 0's")
    soup = onnx.ModelProto()
    soup.CopyFrom(first)
    for init in soup.graph.initializer:
        arrays = [named[init.name] for named in weights]
        if np.issubdtype(arrays[0].dtype, np.floating):
            mean = np.mean(np.stack(arrays), axis=0, dtype=np.float64).astype(arrays[0].dtype)
        elif all(np.array_equal(array, arrays[0]) for array in arrays):
            mean = arrays[0]
        else:
            raise ValueError(f"non-float initializer {init.name} differs between models")
        init.CopyFrom(numpy_helper.from_array(mean, init.name))
    return soup


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    soup = average([onnx.load(str(path)) for path in args.models])
    onnx.checker.check_model(soup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(soup, str(args.out))
    print(json.dumps({"out": str(args.out), "models": [str(path) for path in args.models]}))


if __name__ == "__main__":
    main()
