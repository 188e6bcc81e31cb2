"""The in-process backend's onnxruntime sessions: with more than one intra-op thread, the workers do not
spin between operators (engine.SPINNING_CONFIG_KEY; README, "Speed on CPU")."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from services.inference.engine import SPINNING_CONFIG_KEY, OnnxBackend


def _sessions(backend: OnnxBackend) -> list[ort.InferenceSession]:
    sessions = [backend._det, backend._rec, backend._cls]
    return [s for s in sessions if s is not None]


def test_several_threads_do_not_spin() -> None:
    backend = OnnxBackend(threads=2)
    for session in _sessions(backend):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.get_session_config_entry(SPINNING_CONFIG_KEY) == "0"


def test_one_thread_keeps_onnxruntime_defaults() -> None:
    backend = OnnxBackend(threads=1)
    for session in _sessions(backend):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 1
        with pytest.raises(RuntimeError):
            options.get_session_config_entry(SPINNING_CONFIG_KEY)
