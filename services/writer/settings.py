"""Writer settings (env `PLATEWATCH_<FIELD>`).

From PolicySettings: `POLICY_PROFILE` / `POLICY_FILE` (whether plates are pseudonymized and the key
rotation) and `PSEUDONYM_KEYS_DIR` (default <var_dir>/pseudonym-keys)."""

from __future__ import annotations

from services.retention.settings import PolicySettings


class WriterSettings(PolicySettings):
    # A batch is inserted when it holds this many messages, or this many bytes of message values
    # (crops and thumbnails dominate: the memory bound), or its first message is this old. A batch
    # is one insert per table, and ClickHouse wants few large inserts: at 500 rows per insert the
    # writer spent ~4x the CPU per read that it does at 2,000-5,000 (README, load test figures).
    batch_max_rows: int = 5000
    batch_max_bytes: int = 64 * 1024 * 1024
    batch_max_seconds: float = 1.0
    # Insert tokens plus the "read_id already stored" check. Off only to demonstrate duplicates.
    deduplicate: bool = True
    # Failed ClickHouse calls are retried with exponential backoff capped at this many seconds.
    retry_max_seconds: float = 10.0
    # Test hook: die (exit 137) right after a successful insert, before committing offsets.
    test_crash_after_insert: bool = False
    # Allocations between young-generation garbage collections (Python's default is 700; 0 leaves it
    # alone): every read allocates a few dozen objects while a batch holds thousands, and at the
    # default the cyclic collector took ~14 % of the storage process's CPU in the load test.
    writer_gc_gen0_threshold: int = 50_000
