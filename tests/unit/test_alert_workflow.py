"""The alert workflow state machine: every allowed and every refused step, who/when bookkeeping,
request validation, and which version of an alert wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api.alert_workflow import (
    Action,
    InvalidAction,
    Outcome,
    TransitionRefused,
    allowed_actions,
    apply_action,
    is_update,
    outcome_name,
    status_name,
    supersedes,
)
from services.common.pb.platewatch.v1 import alerts_pb2, reads_pb2

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
U = alerts_pb2.ALERT_STATUS_UNCONFIRMED
CV = alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL
CD = alerts_pb2.ALERT_STATUS_CONFIRMED_DISPATCH
DM = alerts_pb2.ALERT_STATUS_DISMISSED_MISREAD


def _raised(status: int = U) -> alerts_pb2.Alert:
    alert = alerts_pb2.Alert(
        alert_id="a1", read=reads_pb2.Read(read_id="r1", plate="7XY2AB"), hotlist_name="Stolen"
    )
    alert.status = status  # type: ignore[assignment]
    alert.raised_at.FromDatetime(NOW - timedelta(minutes=1))
    return alert


def _step(alert: alerts_pb2.Alert, action: str, minutes: int = 1, **kwargs: str) -> alerts_pb2.Alert:
    return apply_action(alert, action, "officer-7", NOW + timedelta(minutes=minutes), **kwargs)  # type: ignore[arg-type]


def _at(alert: alerts_pb2.Alert, field: str) -> datetime:
    return getattr(alert, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


# The states reachable by the workflow, built by its own steps.
def _states() -> dict[str, alerts_pb2.Alert]:
    unconfirmed = _raised()
    visual = _step(unconfirmed, "confirm_visual", 1)
    dispatch = _step(visual, "confirm_dispatch", 2)
    return {
        "unconfirmed": unconfirmed,
        "unspecified": _raised(alerts_pb2.ALERT_STATUS_UNSPECIFIED),
        "confirmed_visual": visual,
        "confirmed_dispatch": dispatch,
        "dismissed_from_unconfirmed": _step(unconfirmed, "dismiss_misread", 1),
        "dismissed_from_visual": _step(visual, "dismiss_misread", 2),
        "visual_with_outcome": _step(visual, "record_outcome", 2, outcome="none"),
        "dispatch_with_outcome": _step(dispatch, "record_outcome", 3, outcome="arrest"),
    }


ALLOWED = {
    "unconfirmed": {"confirm_visual", "dismiss_misread"},
    "unspecified": {"confirm_visual", "dismiss_misread"},
    "confirmed_visual": {"confirm_dispatch", "dismiss_misread", "record_outcome"},
    "confirmed_dispatch": {"record_outcome"},
    "dismissed_from_unconfirmed": set(),
    "dismissed_from_visual": set(),
    "visual_with_outcome": set(),
    "dispatch_with_outcome": set(),
}
EXPECTED_STATUS_AFTER = {
    "confirm_visual": CV,
    "confirm_dispatch": CD,
    "dismiss_misread": DM,
}


@pytest.mark.parametrize("state", sorted(ALLOWED))
@pytest.mark.parametrize("action", [a.value for a in Action])
def test_every_step_from_every_state_is_allowed_or_refused_as_specified(state: str, action: str) -> None:
    alert = _states()[state]
    outcome = {"outcome": "stop"} if action == "record_outcome" else {}
    assert {str(a) for a in allowed_actions(alert)} == ALLOWED[state]
    if action in ALLOWED[state]:
        updated = _step(alert, action, 10, **outcome)
        expected_status = EXPECTED_STATUS_AFTER.get(action, alert.status)
        assert updated.status == expected_status
        assert _at(updated, "updated_at") == NOW + timedelta(minutes=10)
        # The input is a version that stays as it was.
        assert updated != alert and alert == _states()[state]
    else:
        with pytest.raises(TransitionRefused) as refused:
            _step(alert, action, 10, **outcome)
        message = str(refused.value)
        assert f"status is {status_name(alert.status) if alert.status else 'unconfirmed'}" in message
        assert refused.value.allowed == allowed_actions(alert)
        if ALLOWED[state]:
            assert all(a in message for a in ALLOWED[state])
        else:
            assert "none (the alert is closed)" in message


def test_dispatch_without_visual_confirmation_is_refused_with_the_reason() -> None:
    with pytest.raises(TransitionRefused) as refused:
        _step(_raised(), "confirm_dispatch")
    assert refused.value.status == "unconfirmed"
    assert "requires a recorded visual confirmation" in str(refused.value)
    assert "allowed actions: confirm_visual, dismiss_misread" in str(refused.value)


def test_each_step_records_who_and_when_and_keeps_earlier_steps() -> None:
    visual = _step(_raised(), "confirm_visual", 1, note="plate matches crop")
    assert (visual.confirmed_by, _at(visual, "confirmed_at")) == ("officer-7", NOW + timedelta(minutes=1))
    assert visual.note == "plate matches crop"
    assert not visual.HasField("dispatched_at") and visual.dispatched_by == ""

    dispatch = apply_action(visual, "confirm_dispatch", "  dispatcher-2 ", NOW + timedelta(minutes=2))
    assert dispatch.dispatched_by == "dispatcher-2"
    assert _at(dispatch, "dispatched_at") == NOW + timedelta(minutes=2)
    assert dispatch.confirmed_by == "officer-7" and dispatch.note == "plate matches crop"

    done = _step(dispatch, "record_outcome", 3, outcome="arrest", note="suspect detained")
    assert done.status == CD
    assert done.outcome == alerts_pb2.ALERT_OUTCOME_ARREST and outcome_name(done.outcome) == "arrest"
    assert done.outcome_recorded_by == "officer-7"
    assert _at(done, "outcome_recorded_at") == NOW + timedelta(minutes=3)
    assert done.note == "suspect detained"
    # Everything the alert carried as raised is kept.
    assert (
        done.read.plate == "7XY2AB"
        and done.hotlist_name == "Stolen"
        and done.raised_at == _raised().raised_at
    )

    dismissed = _step(_raised(), "dismiss_misread", 1)
    assert dismissed.status == DM and dismissed.dismissed_by == "officer-7"
    assert _at(dismissed, "dismissed_at") == NOW + timedelta(minutes=1)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_maps_to_its_proto_value(outcome: Outcome) -> None:
    visual = _step(_raised(), "confirm_visual")
    recorded = _step(visual, "record_outcome", 2, outcome=outcome.value)
    assert outcome_name(recorded.outcome) == outcome.value


def test_outcome_is_recorded_once() -> None:
    visual = _step(_raised(), "confirm_visual")
    recorded = _step(visual, "record_outcome", 2, outcome="stop")
    with pytest.raises(TransitionRefused, match=r"outcome already recorded \(stop\)"):
        _step(recorded, "record_outcome", 3, outcome="arrest")


def test_updated_at_always_moves_forward_even_with_a_clock_behind() -> None:
    visual = _step(_raised(), "confirm_visual", 5)
    # A second API replica whose clock is two minutes behind.
    dispatch = _step(visual, "confirm_dispatch", 3)
    assert _at(dispatch, "updated_at") == _at(visual, "updated_at") + timedelta(milliseconds=1)
    assert supersedes(dispatch, visual)
    # Naive `now` is UTC.
    naive = apply_action(_raised(), "confirm_visual", "x", datetime(2025, 6, 1, 13, 0))
    assert _at(naive, "updated_at") == datetime(2025, 6, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "actor", "kwargs", "message"),
    [
        ("confirm_visual", "", {}, "actor is required"),
        ("confirm_visual", "   ", {}, "actor is required"),
        ("confirm_visual", "x" * 201, {}, "actor longer than 200"),
        ("confirm_visual", "ok", {"note": "n" * 2001}, "note longer than 2000"),
        ("escalate", "ok", {}, "unknown action 'escalate'"),
        ("record_outcome", "ok", {}, "needs an outcome"),
        ("record_outcome", "ok", {"outcome": "released"}, "unknown outcome 'released'"),
        ("confirm_visual", "ok", {"outcome": "stop"}, "outcome is only accepted with record_outcome"),
    ],
)
def test_malformed_requests_are_invalid_not_refused(
    action: str, actor: str, kwargs: dict[str, str], message: str
) -> None:
    visual = _step(_raised(), "confirm_visual")
    with pytest.raises(InvalidAction, match=message):
        apply_action(visual, action, actor, NOW, **kwargs)  # type: ignore[arg-type]


def test_a_re_raised_alert_never_undoes_a_workflow_step() -> None:
    raised = _raised()
    confirmed = _step(raised, "confirm_visual")
    re_raised = _raised()
    re_raised.raised_at.FromDatetime(NOW + timedelta(hours=1))  # the hotlist replays later
    assert not supersedes(re_raised, confirmed)
    assert supersedes(confirmed, raised)
    # Same version: identical is a duplicate, different content (a re-raise) refreshes.
    assert not supersedes(_raised(), raised)
    assert supersedes(re_raised, raised)
    # With equal timestamps further progress wins.
    dispatch = _step(confirmed, "confirm_dispatch", 2)
    same_time_visual = alerts_pb2.Alert()
    same_time_visual.CopyFrom(confirmed)
    same_time_visual.updated_at.CopyFrom(dispatch.updated_at)
    assert supersedes(dispatch, same_time_visual) and not supersedes(same_time_visual, dispatch)


def test_is_update_tells_workflow_versions_from_raised_alerts() -> None:
    assert not is_update(_raised())
    assert is_update(_step(_raised(), "dismiss_misread"))


def test_names_of_unknown_enum_values_are_their_numbers() -> None:
    assert status_name(CV) == "confirmed_visual"
    assert status_name(99) == "99"
    assert outcome_name(alerts_pb2.ALERT_OUTCOME_UNSPECIFIED) == ""
    assert outcome_name(42) == "42"
