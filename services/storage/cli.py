"""`platewatch migrate`: apply pending schema migrations and exit."""

from __future__ import annotations

import typer

from services.common.logging import configure_logging


def register(app: typer.Typer) -> None:
    @app.command()
    def migrate() -> None:
        """Apply pending ClickHouse migrations (services/storage/migrations) and exit.

        With the embedded engine, run it while no writer/search process owns the data directory
        (they migrate on start anyway)."""
        from services.storage.client import close_client, get_client
        from services.storage.migrations import MigrationError, apply_migrations
        from services.storage.settings import StorageSettings

        settings = StorageSettings()
        configure_logging("migrate", settings.log_level)
        try:
            applied = apply_migrations(get_client(settings), cluster=settings.clickhouse_cluster)
        except MigrationError as exc:
            typer.echo(f"migration error: {exc}", err=True)
            raise typer.Exit(1) from exc
        finally:
            close_client()
        if applied:
            typer.echo("applied: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        else:
            typer.echo("schema up to date")
