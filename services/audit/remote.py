"""Client side of AuditService, for the CLI and the API (blocking and async helpers)."""

from __future__ import annotations

import json
from typing import Any

import grpc

from services.audit.chain import Checkpoint, Entry
from services.audit.grpc_service import checkpoint_from_proto, entry_from_proto
from services.common.pb.platewatch.v1 import audit_pb2, audit_pb2_grpc


class AuditClient:
    """Blocking AuditService client (CLI). Use as a context manager."""

    def __init__(self, target: str, timeout_s: float = 60.0) -> None:
        self._channel = grpc.insecure_channel(target)
        self.stub = audit_pb2_grpc.AuditServiceStub(self._channel)
        self.timeout_s = timeout_s

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def entries(self, request: audit_pb2.ListAuditEntriesRequest | None = None) -> list[Entry]:
        stream = self.stub.ListEntries(request or audit_pb2.ListAuditEntriesRequest(), timeout=self.timeout_s)
        return [entry_from_proto(message) for message in stream]

    def checkpoints(self) -> list[Checkpoint]:
        stream = self.stub.ListCheckpoints(audit_pb2.ListAuditCheckpointsRequest(), timeout=self.timeout_s)
        return [checkpoint_from_proto(message) for message in stream]

    def latest_checkpoint(self) -> Checkpoint | None:
        try:
            message = self.stub.GetCheckpoint(audit_pb2.GetAuditCheckpointRequest(), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return checkpoint_from_proto(message)

    def json_call(self, method: str, request: Any) -> Any:
        response = getattr(self.stub, method)(request, timeout=self.timeout_s)
        return json.loads(response.json)
