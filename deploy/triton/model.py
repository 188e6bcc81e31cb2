"""Triton Python-backend model running an ONNX file with onnxruntime (CPU).

Copied by services/inference/triton_repo.py into `<model>/1/model.py` for plate_det, plate_rec,
plate_rec_crnn and plate_cls, together with `model_io.py` (the shared tensor contract) and
`model.onnx`. Requests in one dynamic batch are concatenated, run as one onnxruntime call, and split
back per request.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(__file__))
import model_io


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.model_name = config["name"]
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

    def execute(self, requests: list) -> list:
        input_name = "image" if self.model_name == "plate_det" else "crop"
        arrays = [pb_utils.get_input_tensor_by_name(r, input_name).as_numpy() for r in requests]
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
        if self.model_name == "plate_det":
            prob = self.session.run(None, {self.input_name: model_io.det_input(batch)})[0]
            return [("prob", model_io.det_output(prob))]
        if self.model_name == "plate_cls":
            plate_prob = self.session.run(None, {self.input_name: model_io.cls_input(batch)})[0]
            return [("plate_prob", plate_prob.astype(np.float32))]
        prepare = model_io.crnn_input if self.model_name == "plate_rec_crnn" else model_io.rec_input
        probs = self.session.run(None, {self.input_name: prepare(batch)})[0]
        indices, top_probs = model_io.rec_output(probs)
        return [("top_indices", indices), ("top_probs", top_probs)]
