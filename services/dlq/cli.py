"""`platewatch dlq list|replay`: inspect dead-letter topics and replay them under an explicit policy.

Uses PLATEWATCH_KAFKA_BOOTSTRAP and PLATEWATCH_TOPIC_PREFIX. `replay` has no default policy: name
the reasons to replay (`--reason`, repeatable) or `--all-reasons`, and say whether to decode with
the topic's schema first (`--validate`) or re-send the bytes unchecked (`--no-validate`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from services.common.settings import CommonSettings
from services.dlq.policy import SOURCE_TOPICS, ReplayPolicy, parse_time, source_topic
from services.dlq.replay import replay, summarize

dlq_app = typer.Typer(help="Inspect and replay dead-letter topics.", no_args_is_help=True)

TopicOption = Annotated[
    str, typer.Option("--topic", help=f"source topic whose dead letters to use: {', '.join(SOURCE_TOPICS)}")
]


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _topic(short_name: str) -> typer.BadParameter | None:
    try:
        source_topic(short_name)
    except ValueError as exc:
        return typer.BadParameter(str(exc), param_hint="--topic")
    return None


@dlq_app.command("list")
def list_dead_letters(
    topic: TopicOption,
    limit: Annotated[int, typer.Option(min=0, help="dead letters to show individually")] = 20,
) -> None:
    """Summarize a dead-letter topic.

    Counts by reason, oldest and newest failure, how many replay has not settled, and the first
    LIMIT dead letters."""
    if (error := _topic(topic)) is not None:
        raise error
    settings = CommonSettings()
    summary = asyncio.run(
        summarize(settings.kafka_bootstrap, settings.topic_prefix, source_topic(topic), limit)
    )
    typer.echo(f"{summary.topic}: {summary.total} dead letters, {summary.pending_replay} not replayed")
    typer.echo(
        f"oldest failure {_when(summary.oldest_failed_at_ms)}, newest {_when(summary.newest_failed_at_ms)}"
    )
    for reason, count in summary.by_reason.most_common():
        typer.echo(f"  {count:>8}  {reason}")
    for letter in summary.sample:
        typer.echo(
            f"{letter.address}  {_when(letter.failed_at_ms)}  reason={letter.reason}  "
            f"service={letter.header('service')}  replay_count={letter.replay_count}  "
            f"detail={letter.header('detail')[:120]!r}"
        )


@dlq_app.command("replay")
def replay_dead_letters(
    topic: TopicOption,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate",
            help="decode with the topic's schema first and never re-send what still fails (required)",
        ),
    ],
    reasons: Annotated[
        list[str] | None,
        typer.Option("--reason", help="replay only dead letters with this reason (repeatable)"),
    ] = None,
    all_reasons: Annotated[bool, typer.Option("--all-reasons", help="replay whatever the reason")] = False,
    since: Annotated[
        str | None, typer.Option(help="only dead letters that failed at or after (ISO-8601 or epoch ms)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="only dead letters that failed before this")] = None,
    max_messages: Annotated[int | None, typer.Option("--max", min=1, help="replay at most this many")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be replayed; send nothing")
    ] = False,
) -> None:
    """Re-send dead letters to their source topic under an explicit policy; prints a JSON report.

    Progress is kept by the consumer group <prefix>dlq-replay-<topic>, so a second run does not
    re-send what the first one did; dead letters the policy filtered out stay for a later run."""
    if (error := _topic(topic)) is not None:
        raise error
    if bool(reasons) == all_reasons:
        raise typer.BadParameter("give --reason (one or more) or --all-reasons, not both or neither")
    try:
        policy = ReplayPolicy(
            reasons=None if all_reasons else frozenset(reasons or ()),
            validate=validate,
            since_ms=parse_time(since) if since else None,
            until_ms=parse_time(until) if until else None,
            max_messages=max_messages,
            dry_run=dry_run,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = CommonSettings()
    report = asyncio.run(replay(settings.kafka_bootstrap, settings.topic_prefix, source_topic(topic), policy))
    typer.echo(json.dumps(report.as_dict(), indent=2))


if __name__ == "__main__":
    dlq_app()
