"""Writer settings (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from services.storage.settings import StorageSettings


class WriterSettings(StorageSettings):
    # A batch is inserted when it holds this many messages or its first message is this old.
    batch_max_rows: int = 500
    batch_max_seconds: float = 1.0
    # Insert tokens plus the "read_id already stored" check. Off only to demonstrate duplicates.
    deduplicate: bool = True
    # Failed ClickHouse calls are retried with exponential backoff capped at this many seconds.
    retry_max_seconds: float = 10.0
    # Test hook: die (exit 137) right after a successful insert, before committing offsets.
    test_crash_after_insert: bool = False
