"""Entry validation of the hotlist gRPC service (pure, no Kafka)."""

from __future__ import annotations

import pytest

from services.common.pb.platewatch.v1 import hotlist_pb2
from services.hotlist.grpc_service import validate_entry


@pytest.mark.parametrize("plate", ["ABC123", "AB?123", "AB*", "7*Q", "X"])
def test_valid_plates(plate: str) -> None:
    assert validate_entry(hotlist_pb2.HotlistEntry(plate=plate, priority=1)) is None


@pytest.mark.parametrize(
    ("plate", "priority", "complaint"),
    [
        ("", 1, "empty"),
        ("abc123", 1, "upper-case"),
        ("AB-123", 1, "upper-case"),
        ("AB 123", 1, "upper-case"),
        ("ÄBC", 1, "upper-case"),
        ("*", 1, "only wildcards"),
        ("??*", 1, "only wildcards"),
        ("ABC123", 0, "priority"),
        ("ABC123", -2, "priority"),
    ],
)
def test_invalid_entries(plate: str, priority: int, complaint: str) -> None:
    problem = validate_entry(hotlist_pb2.HotlistEntry(plate=plate, priority=priority))
    assert problem is not None
    assert complaint in problem
