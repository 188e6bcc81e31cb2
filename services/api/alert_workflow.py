"""The operator workflow of an alert, as a pure state machine over `alerts_pb2.Alert`.

    UNCONFIRMED --confirm_visual--> CONFIRMED_VISUAL --confirm_dispatch--> CONFIRMED_DISPATCH
    UNCONFIRMED | CONFIRMED_VISUAL --dismiss_misread--> DISMISSED_MISREAD
    CONFIRMED_VISUAL | CONFIRMED_DISPATCH --record_outcome--> (same status, outcome set; once)

Dispatch is only reachable through a recorded visual confirmation: nothing becomes actionable on the
strength of a machine read alone. An alert with an outcome recorded, or dismissed, is closed. An
alert whose status is UNSPECIFIED (a producer that did not set it) is treated as UNCONFIRMED.

Every step returns a new Alert (the input is never modified) naming who did it and when, with
`updated_at` strictly later than the previous version's, so "latest updated_at wins" orders versions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import alerts_pb2

MAX_ACTOR_LENGTH = 200
MAX_NOTE_LENGTH = 2000


class Action(StrEnum):
    confirm_visual = "confirm_visual"
    confirm_dispatch = "confirm_dispatch"
    dismiss_misread = "dismiss_misread"
    record_outcome = "record_outcome"


class Outcome(StrEnum):
    stop = "stop"
    arrest = "arrest"
    none = "none"

    def to_proto(self) -> alerts_pb2.AlertOutcome:
        return alerts_pb2.AlertOutcome.Value(f"ALERT_OUTCOME_{self.value.upper()}")


class InvalidAction(ValueError):
    """The request itself is malformed (no actor, outcome missing or misplaced): HTTP 422."""


class TransitionRefused(Exception):
    """The action is not allowed in the alert's current state: HTTP 409. The message names the
    current status and the actions that are allowed."""

    def __init__(
        self, alert_id: str, status: str, action: Action, allowed: list[Action], reason: str
    ) -> None:
        self.alert_id = alert_id
        self.status = status
        self.action = action
        self.allowed = allowed
        self.reason = reason
        allowed_text = ", ".join(allowed) if allowed else "none (the alert is closed)"
        super().__init__(
            f"cannot {action} alert {alert_id}: {reason}; status is {status}; allowed actions: {allowed_text}"
        )


U = alerts_pb2.ALERT_STATUS_UNCONFIRMED
CV = alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL
CD = alerts_pb2.ALERT_STATUS_CONFIRMED_DISPATCH
DM = alerts_pb2.ALERT_STATUS_DISMISSED_MISREAD

# How far along the workflow each status is; a later version never goes back.
_STATUS_RANK = {alerts_pb2.ALERT_STATUS_UNSPECIFIED: 0, U: 0, CV: 1, CD: 2, DM: 2}


def status_name(status: int) -> str:
    """`confirmed_visual` for ALERT_STATUS_CONFIRMED_VISUAL, the number for an unknown value."""
    try:
        return alerts_pb2.AlertStatus.Name(status).removeprefix("ALERT_STATUS_").lower()  # type: ignore[arg-type]
    except ValueError:
        return str(status)


def outcome_name(outcome: int) -> str:
    """`stop` for ALERT_OUTCOME_STOP, "" when unset."""
    if outcome == alerts_pb2.ALERT_OUTCOME_UNSPECIFIED:
        return ""
    try:
        return alerts_pb2.AlertOutcome.Name(outcome).removeprefix("ALERT_OUTCOME_").lower()  # type: ignore[arg-type]
    except ValueError:
        return str(outcome)


def _effective_status(alert: alerts_pb2.Alert) -> int:
    return U if alert.status == alerts_pb2.ALERT_STATUS_UNSPECIFIED else alert.status


def allowed_actions(alert: alerts_pb2.Alert) -> list[Action]:
    """The actions the alert accepts now, in workflow order."""
    if alert.outcome != alerts_pb2.ALERT_OUTCOME_UNSPECIFIED:
        return []
    status = _effective_status(alert)
    if status == U:
        return [Action.confirm_visual, Action.dismiss_misread]
    if status == CV:
        return [Action.confirm_dispatch, Action.dismiss_misread, Action.record_outcome]
    if status == CD:
        return [Action.record_outcome]
    return []


def _refusal_reason(alert: alerts_pb2.Alert, action: Action) -> str:
    status = _effective_status(alert)
    if alert.outcome != alerts_pb2.ALERT_OUTCOME_UNSPECIFIED:
        return f"outcome already recorded ({outcome_name(alert.outcome)})"
    if status == DM:
        return "the alert was dismissed as a misread"
    if action == Action.confirm_dispatch and status == U:
        return "dispatch requires a recorded visual confirmation first"
    if action == Action.record_outcome and status == U:
        return "an outcome can only be recorded on a confirmed alert"
    if action == Action.confirm_visual:
        return "the alert is already confirmed"
    if action == Action.confirm_dispatch:
        return "the alert is already dispatched"
    if action == Action.dismiss_misread:
        return "a dispatched alert cannot be dismissed"
    return "not allowed in this state"


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _step_time(alert: alerts_pb2.Alert, now: datetime) -> datetime:
    """`now`, moved 1 ms past the previous version's updated_at if a clock is behind, so versions
    always order by updated_at."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if alert.HasField("updated_at"):
        previous = alert.updated_at.ToDatetime(tzinfo=UTC)
        if now <= previous:
            now = previous + timedelta(milliseconds=1)
    return now


def apply_action(
    alert: alerts_pb2.Alert,
    action: Action | str,
    actor: str,
    now: datetime,
    outcome: Outcome | str | None = None,
    note: str | None = None,
) -> alerts_pb2.Alert:
    """The next version of `alert` after `actor` performed `action` at `now`.

    Raises InvalidAction for a malformed request (unknown action or outcome, empty actor, outcome
    missing on record_outcome or given with another action, over-long actor or note) and
    TransitionRefused when the current state does not allow the action. A given `note` replaces the
    previous one; None keeps it.
    """
    try:
        action = Action(action)
    except ValueError:
        raise InvalidAction(f"unknown action {action!r}; one of {', '.join(Action)}") from None
    actor = actor.strip()
    if not actor:
        raise InvalidAction("actor is required")
    if len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidAction(f"actor longer than {MAX_ACTOR_LENGTH} characters")
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise InvalidAction(f"note longer than {MAX_NOTE_LENGTH} characters")
    chosen: Outcome | None = None
    if action == Action.record_outcome:
        if outcome is None:
            raise InvalidAction(f"record_outcome needs an outcome: one of {', '.join(Outcome)}")
        try:
            chosen = Outcome(outcome)
        except ValueError:
            raise InvalidAction(f"unknown outcome {outcome!r}; one of {', '.join(Outcome)}") from None
    elif outcome is not None:
        raise InvalidAction(f"outcome is only accepted with {Action.record_outcome}")

    allowed = allowed_actions(alert)
    if action not in allowed:
        raise TransitionRefused(
            alert.alert_id,
            status_name(_effective_status(alert)),
            action,
            allowed,
            _refusal_reason(alert, action),
        )

    at = _step_time(alert, now)
    stamp = _timestamp(at)
    updated = alerts_pb2.Alert()
    updated.CopyFrom(alert)
    if action == Action.confirm_visual:
        updated.status = CV
        updated.confirmed_by = actor
        updated.confirmed_at.CopyFrom(stamp)
    elif action == Action.confirm_dispatch:
        updated.status = CD
        updated.dispatched_by = actor
        updated.dispatched_at.CopyFrom(stamp)
    elif action == Action.dismiss_misread:
        updated.status = DM
        updated.dismissed_by = actor
        updated.dismissed_at.CopyFrom(stamp)
    else:
        assert chosen is not None
        updated.outcome = chosen.to_proto()
        updated.outcome_recorded_by = actor
        updated.outcome_recorded_at.CopyFrom(stamp)
    if note is not None:
        updated.note = note
    updated.updated_at.CopyFrom(stamp)
    return updated


def _version(alert: alerts_pb2.Alert) -> tuple[int, int, int]:
    updated_ns = alert.updated_at.ToNanoseconds() if alert.HasField("updated_at") else 0
    closed = int(alert.outcome != alerts_pb2.ALERT_OUTCOME_UNSPECIFIED)
    return (updated_ns, _STATUS_RANK.get(alert.status, 0), closed)


def supersedes(incoming: alerts_pb2.Alert, known: alerts_pb2.Alert) -> bool:
    """Whether `incoming` should replace `known` (same alert_id) as the current state.

    Later updated_at wins, then further workflow progress. An alert as raised has no updated_at,
    so the hotlist re-raising it on replay never undoes a confirmation; between two equal versions
    the incoming one wins when it differs (a re-raise refreshes the alert's content)."""
    incoming_version, known_version = _version(incoming), _version(known)
    if incoming_version != known_version:
        return incoming_version > known_version
    return incoming != known


def is_update(alert: alerts_pb2.Alert) -> bool:
    """True for a workflow step (a version the API published), False for the alert as raised."""
    return alert.HasField("updated_at")
