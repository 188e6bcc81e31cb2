"""`platewatch bench search --reads N [--json]`: search and analytics benchmark (issue 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(help="Benchmarks against a throw-away embedded ClickHouse.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `bench search`. services/inference/cli.py registers a `bench` group too (`bench
    recognition`) and click keeps only the last group of a name, so the command joins that group
    when it exists instead of registering a rival one."""
    try:
        from services.inference.cli import bench_app as shared
    except ImportError:
        app.add_typer(bench_app, name="bench")
        return
    shared.command("search")(search)


@bench_app.callback()
def bench() -> None:
    """Benchmarks against a throw-away embedded ClickHouse."""


def search(
    reads: Annotated[int, typer.Option("--reads", min=1000, help="synthetic reads to build")] = 1_000_000,
    runs: Annotated[int, typer.Option("--runs", min=5, help="warm runs per query (p50/p95)")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="end with one JSON line of the figures")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="embedded ClickHouse directory (default var/bench/clickhouse; emptied)"
        ),
    ] = None,
) -> None:
    """Build N synthetic reads inside ClickHouse (INSERT ... SELECT) and time every query type."""
    import clickhouse_connect

    from services.bench.search_bench import format_table, run_bench
    from services.common.settings import CommonSettings
    from services.storage.migrations import apply_migrations

    directory = (data_dir or CommonSettings().var_dir / "bench" / "clickhouse").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    client = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
    try:
        client.command("CREATE DATABASE IF NOT EXISTS bench")
        client.database = "bench"
        apply_migrations(client)
        result = run_bench(client, reads, runs)
    finally:
        client.close()
        shutil.rmtree(directory, ignore_errors=True)
    typer.echo(format_table(result))
    if as_json:
        typer.echo(json.dumps(result.as_json()))


bench_app.command("search")(search)
