"""`platewatch kafka start|stop|status|topics`: a local single-node Kafka for the dev stack."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError

from services.common.kafka_admin import ensure_topics
from services.common.settings import CommonSettings
from services.deploy_tools.kafka_broker import (
    KafkaBroker,
    KafkaBrokerError,
    ensure_kafka_jars,
    run_coroutine_sync,
)

kafka_app = typer.Typer(help="Local single-node Apache Kafka (KRaft) under var/kafka.", no_args_is_help=True)

DEFAULT_PORT = 9092


def _default_port(settings: CommonSettings) -> int:
    """The port of PLATEWATCH_KAFKA_BOOTSTRAP's first address (so `start` serves what services use)."""
    first = settings.kafka_bootstrap.split(",")[0].strip()
    _, _, port = first.rpartition(":")
    return int(port) if port.isdigit() else DEFAULT_PORT


def _broker(
    port: int | None,
    controller_port: int | None,
    data_dir: Path | None,
    classpath: list[Path] | None = None,
) -> KafkaBroker:
    settings = CommonSettings()
    broker_port = port if port is not None else _default_port(settings)
    return KafkaBroker(
        data_dir if data_dir is not None else settings.var_dir / "kafka" / "data",
        broker_port,
        controller_port if controller_port is not None else broker_port + 1,
        classpath=classpath,
    )


PortOption = Annotated[
    int | None, typer.Option("--port", help="client port (default: from PLATEWATCH_KAFKA_BOOTSTRAP, 9092)")
]
ControllerPortOption = Annotated[
    int | None, typer.Option("--controller-port", help="KRaft controller port (default: port + 1)")
]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="default: var/kafka/data")]


@kafka_app.command()
def start(
    port: PortOption = None,
    controller_port: ControllerPortOption = None,
    data_dir: DataDirOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the broker to answer")] = 90.0,
) -> None:
    """Fetch the jars (cached), start a detached broker, wait until it answers, create all topics."""
    settings = CommonSettings()
    broker = _broker(port, controller_port, data_dir)
    pid = broker.running_pid()
    bootstrap = broker.bootstrap
    if pid is not None:
        bootstrap = broker.configured_bootstrap() or bootstrap
        typer.echo(f"kafka already running (pid {pid}, {bootstrap})")
    else:
        started = time.monotonic()
        classpath = ensure_kafka_jars(settings.var_dir / "kafka" / "libs")
        broker = _broker(port, controller_port, data_dir, classpath)
        try:
            broker.start(detach=True)
            broker.wait_ready(timeout)
        except KafkaBrokerError as exc:
            broker.stop()
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        elapsed = time.monotonic() - started
        typer.echo(f"kafka started in {elapsed:.1f}s (pid {broker.running_pid()}, log {broker.log_file})")
    created = run_coroutine_sync(lambda: ensure_topics(bootstrap, settings.topic_prefix))
    typer.echo(f"topics: {len(created)} created, prefix {settings.topic_prefix!r}")
    typer.echo(bootstrap)


@kafka_app.command()
def stop(
    port: PortOption = None,
    controller_port: ControllerPortOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop the broker started by `start` (SIGTERM, SIGKILL after 30 s)."""
    broker = _broker(port, controller_port, data_dir)
    typer.echo("kafka stopped" if broker.stop() else "kafka was not running")


@kafka_app.command()
def status(data_dir: DataDirOption = None) -> None:
    """Exit 0 and print the pid when the local broker is running, exit 1 otherwise."""
    broker = _broker(None, None, data_dir)
    pid = broker.running_pid()
    if pid is None:
        typer.echo("kafka not running")
        raise typer.Exit(1)
    typer.echo(f"kafka running (pid {pid}, data {broker.data_dir})")


@kafka_app.command()
def topics() -> None:
    """Create every registry topic (with PLATEWATCH_TOPIC_PREFIX) on PLATEWATCH_KAFKA_BOOTSTRAP."""
    settings = CommonSettings()
    try:
        created = run_coroutine_sync(lambda: ensure_topics(settings.kafka_bootstrap, settings.topic_prefix))
    except KafkaError as exc:
        typer.echo(f"cannot create topics on {settings.kafka_bootstrap}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(created)} topics created on {settings.kafka_bootstrap}: {', '.join(created) or '-'}")


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
