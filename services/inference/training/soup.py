"""A "model soup": one plate-CRNN ONNX whose weights are the average of several exported models of the
same graph (Wortsman et al. 2022, "Model soups"; with the start model, "WiSE-FT").

    .venv/bin/python -m services.inference.training.soup OUT.onnx A.onnx B.onnx [C.onnx ...]

Averaging only makes sense for models fine-tuned from one start, which stay in one basin of the loss;
two models trained apart would average to noise. It is done on the exported graph, where export.py has
folded each batch norm into its convolution: the soup is the average of the folded weights, a model
in its own right (not the same as averaging before folding, though close for nearby models).

Refuses models whose graphs differ (node types, initializer names, shapes or dtypes); integer
initializers (e.g. Squeeze axes) must be equal and are copied, not averaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def _graph_signature(model: onnx.ModelProto) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(node.op_type, tuple(node.input), tuple(node.output)) for node in model.graph.node]


def average(models: list[onnx.ModelProto]) -> onnx.ModelProto:
    """A copy of models[0] whose float initializers are the mean of all models'. Raises ValueError
    when fewer than two models are given or their graphs differ."""
    if len(models) < 2:
        raise ValueError("a soup needs at least two models")
    first = models[0]
    signature = _graph_signature(first)
    weights = [
        {init.name: numpy_helper.to_array(init) for init in model.graph.initializer} for model in models
    ]
    for index, (model, named) in enumerate(zip(models[1:], weights[1:], strict=True), start=1):
        if _graph_signature(model) != signature:
            raise ValueError(f"model {index}'s graph differs from model 0's")
        if named.keys() != weights[0].keys():
            raise ValueError(f"model {index}'s initializers differ from model 0's")
        for name, array in named.items():
            reference = weights[0][name]
            if array.shape != reference.shape or array.dtype != reference.dtype:
                raise ValueError(
                    f"model {index}'s {name} is {array.dtype}{array.shape},"
                    f" not {reference.dtype}{reference.shape}"
                )
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
