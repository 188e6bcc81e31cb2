"""Triton Python-backend model running a wire graph with onnxruntime (CPU).

Copied by services/inference/triton_repo.py into `<model>/1/model.py` for plate_det, plate_rec,
plate_rec_crnn and plate_cls, next to `model.onnx`: the model's wire graph
(services/inference/wire_models.py), which takes and gives the config's tensors itself, as Triton's
onnxruntime backend runs it on GPUs. Requests in one dynamic batch are concatenated, run as one
onnxruntime call, and split back per request.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        threads = int(config.get("parameters", {}).get("intra_op_num_threads", {}).get("string_value", "1"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if threads > 1:
            # Not spinning between operators: with two threads per model on two cores, spinning
            # workers halved the server's frames a second (README, "Through Triton").
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model_path = os.path.join(os.path.dirname(__file__), "model.onnx")
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]

    def execute(self, requests: list) -> list:
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        if len({a.shape[1:] for a in arrays}) > 1:
            # Det images of different sizes cannot share a tensor: run each request on its own.
            return [self._respond(self._run(a)) for a in arrays]
        outputs = self._run(np.concatenate(arrays, axis=0))
        responses = []
        start = 0
        for array in arrays:
            stop = start + array.shape[0]
            responses.append(self._respond([(name, value[start:stop]) for name, value in outputs]))
            start = stop
        return responses

    @staticmethod
    def _respond(outputs: list):
        tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in outputs]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _run(self, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
        outputs = self.session.run(self.output_names, {self.input_name: batch})
        return list(zip(self.output_names, outputs))
