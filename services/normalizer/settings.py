"""Normalizer configuration (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

import socket

from pydantic import Field

from services.common.settings import CommonSettings


class NormalizerSettings(CommonSettings):
    """Settings of the normalizer service."""

    # A vehicle pass ends when no raw read joined it for this many seconds of event time (captured_at).
    pass_gap_s: float = 2.0
    # ...or when its source partition got no raw read for this many seconds of wall clock.
    idle_close_s: float = 3.0
    # Passes with fewer frames or a lower consensus confidence are dropped, not emitted.
    min_frames: int = 1
    min_confidence: float = 0.0
    # Stable per process instance: the Kafka transactional id is "<prefix>normalizer-<instance_id>", so a
    # restarted instance fences its previous incarnation.
    instance_id: str = Field(default_factory=socket.gethostname)
    # Consumer group on the raw reads topic (the topic prefix is put in front).
    normalizer_consumer_group: str = "normalizer"
    # Most raw reads handled per transaction.
    normalizer_max_batch: int = 2000
