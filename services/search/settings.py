"""Search settings (env `PLATEWATCH_<FIELD>`).

From PolicySettings: `POLICY_PROFILE` / `POLICY_FILE` (the pseudonym key rotation) and
`PSEUDONYM_KEYS_DIR` (default <var_dir>/pseudonym-keys), shared with the writer in this process."""

from __future__ import annotations

from services.retention.settings import PolicySettings


class SearchSettings(PolicySettings):
    search_grpc_port: int = 50051
    search_grpc_host: str = "0.0.0.0"
    search_default_page_size: int = 50
    # Larger requests are cut to this; a page is held in memory and sent in one message.
    search_max_page_size: int = 500
    # A pattern (or fuzzy) search matching more distinct plates than this is refused as too broad.
    search_max_pattern_plates: int = 20_000
    # Analytics (issue 5): longest time window a query may ask for, most result rows per answer.
    analytics_max_days: int = 400
    convoy_max_days: int = 100
    analytics_max_results: int = 1000
    timeline_max_sightings: int = 10_000
    dashboard_max_rows: int = 50_000
