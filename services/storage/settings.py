"""Settings for reaching ClickHouse, shared by every component that opens it."""

from __future__ import annotations

from services.common.settings import CommonSettings


class StorageSettings(CommonSettings):
    """Where ClickHouse lives.

    `clickhouse_url` empty means the embedded engine (chdb) with its data under
    `var_dir/clickhouse`; `chdb:///abs/dir` names another embedded directory; `http(s)://host:port`
    points the same code at a ClickHouse server (with `clickhouse_user` / `clickhouse_password`).
    """

    clickhouse_url: str = ""
    clickhouse_database: str = "platewatch"
    clickhouse_user: str = "default"
    clickhouse_password: str = ""
    # Name of a ClickHouse cluster (remote_servers) to create replicated, sharded tables on; empty
    # means one node (the embedded default). See services/storage/cluster.py.
    clickhouse_cluster: str = ""

    def clickhouse_dsn(self) -> str:
        """The DSN handed to clickhouse-connect (no credentials in it)."""
        if not self.clickhouse_url:
            return f"chdb://{(self.var_dir / 'clickhouse').resolve()}"
        return self.clickhouse_url

    @property
    def embedded(self) -> bool:
        return self.clickhouse_dsn().startswith("chdb:")
