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
    # Early reads (topic READS_EARLY, for the hotlist only): once per pass, in the first transaction
    # after its consensus text is grammar-valid and backed by one frame with at least this top-candidate
    # confidence or by two agreeing frames (and it has `min_frames`), so hotlist hits need not wait for
    # the pass to close (`pass_gap_s`).
    early_reads: bool = True
    early_read_confidence: float = 0.9
    # Stable per process instance: the Kafka transactional id is "<prefix>normalizer-<instance_id>", so a
    # restarted instance fences its previous incarnation.
    instance_id: str = Field(default_factory=socket.gethostname)
    # Consumer group on the raw reads topic (the topic prefix is put in front).
    normalizer_consumer_group: str = "normalizer"
    # Most raw reads handled per transaction.
    normalizer_max_batch: int = 5000
    # A batch (one transaction) takes what arrives within this many ms of its first record: bigger
    # transactions cost much less per raw read; this bounds the latency they add.
    normalizer_batch_linger_ms: int = 50
    # Allocations between young-generation garbage collections (Python's default is 700); 0 leaves the
    # interpreter's setting alone. See `serve` in main.py.
    normalizer_gc_gen0_threshold: int = 50_000
