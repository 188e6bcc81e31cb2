"""The `platewatch` command: starts services and runs the operational tools."""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import Annotated, Protocol

import typer

from services.common.health import HealthServer, HealthState
from services.common.logging import configure_logging
from services.common.service import install_stop_signals
from services.common.settings import CommonSettings

app = typer.Typer(help="platewatch: privacy-first licence plate recognition", no_args_is_help=True)

# Component name -> module exposing `async def serve(stop: asyncio.Event, health: HealthState)`.
COMPONENTS: dict[str, str] = {
    "capture": "services.capture.main",
    "inference": "services.inference.main",
    "normalizer": "services.normalizer.main",
    "hotlist": "services.hotlist.main",
    "writer": "services.writer.main",
    "search": "services.search.main",
    "api": "services.api.main",
    "notifier": "services.notifier.main",
    "audit": "services.audit.main",
    "retention": "services.retention.main",
}
# Components that open ClickHouse. With the embedded engine only one process may own the data
# directory, so these must share a process (`platewatch serve writer search audit retention`);
# against a ClickHouse server each can be its own deployment.
STORAGE_COMPONENTS = frozenset({"writer", "search", "audit", "retention"})

log = logging.getLogger("platewatch")


@app.callback()
def _root() -> None:
    """platewatch: privacy-first licence plate recognition."""


class Component(Protocol):
    async def serve(self, stop: asyncio.Event, health: HealthState) -> None: ...


@app.command()
def serve(
    components: Annotated[list[str], typer.Argument(help=f"one or more of: {', '.join(COMPONENTS)}")],
) -> None:
    """Run one or more components in this process until SIGTERM/SIGINT, then drain and exit."""
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise typer.BadParameter(f"unknown component(s) {unknown}; choose from {sorted(COMPONENTS)}")
    settings = CommonSettings()
    configure_logging("+".join(components), settings.log_level)
    modules = [importlib.import_module(COMPONENTS[c]) for c in components]

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        health = HealthState()
        server = HealthServer(health, settings.metrics_port).start()
        log.info("starting", extra={"components": components, "metrics_port": server.port})
        tasks = [
            asyncio.create_task(m.serve(stop, health), name=c)
            for c, m in zip(components, modules, strict=True)
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    health.alive = False
                    stop.set()
            await asyncio.gather(*tasks)
        finally:
            server.stop()
            log.info("stopped", extra={"components": components})

    asyncio.run(main())


def _register_tool_groups() -> None:
    """Every service package may contribute sub-commands (e.g. `platewatch migrate`) via a `cli` module
    exposing `register(app: typer.Typer)`; packages are discovered, so a new one needs no edit here."""
    package_dir = Path(__file__).resolve().parent
    for cli_file in sorted(package_dir.glob("*/cli.py")):
        module = importlib.import_module(f"services.{cli_file.parent.name}.cli")
        module.register(app)


_register_tool_groups()

if __name__ == "__main__":
    app()
