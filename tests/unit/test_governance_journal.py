"""The governance state journal's records (services/governance/state_journal.py): approvals, login
failures and idle sessions encode to JSON and back, replicas applying each other's records (in any order,
their own included) end in the same state, tombstones and sweeps forget what has expired."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.settings import REPO_ROOT
from services.governance.approvals import (
    Approval,
    ApprovalStore,
    decode_approval,
    encode_approval,
)
from services.governance.identity import (
    IdleSessions,
    LoginFailures,
    LoginGuard,
    SessionSeen,
    login_key,
    session_key,
)
from services.governance.policy import PolicyRefusal, load_policy
from services.governance.state_journal import RecordingJournal, split_key

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY: Path = REPO_ROOT / "deploy" / "policies" / "default.yaml"


def _store(journal: RecordingJournal | None = None) -> ApprovalStore:
    return ApprovalStore(load_policy(POLICY), journal)


def _request(store: ApprovalStore, now: datetime = NOW) -> Approval:
    return store.request(
        agency_id="agency-a",
        kind="data_age",
        scope="",
        case_number="CASE-1",
        purpose_code="stolen-vehicle",
        reason="cold case",
        requested_by="off-1",
        now=now,
    )


def _decide(store: ApprovalStore, approval_id: str, approve: bool = True, now: datetime = NOW) -> Approval:
    return store.decide(
        approval_id,
        agency_id="agency-a",
        decider="sup-1",
        roles=frozenset({"supervisor"}),
        approve=approve,
        now=now,
    )


def _replay(records: list[tuple[str, bytes | None]], store: ApprovalStore) -> None:
    for key, value in records:
        kind, approval_id = split_key(key)
        assert kind == "approval"
        store.apply_record(approval_id, value)


# Approvals -------------------------------------------------------------------------------------


def test_approval_round_trips_through_its_record() -> None:
    store = _store()
    approval = _decide(store, _request(store).approval_id)
    value = encode_approval(approval)
    record = json.loads(value)
    assert record["v"] == 1 and record["status"] == "approved"
    assert record["expires_at"] == approval.expires_at.isoformat()  # type: ignore[union-attr]
    assert decode_approval(value) == approval
    pending = _request(store)
    assert decode_approval(encode_approval(pending)) == pending
    assert decode_approval(encode_approval(pending)).expires_at is None


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1, 2]",
        b'{"v": 2}',
        b'{"v": 1, "kind": "data_age", "status": "granted"}',
        b'{"v": 1, "kind": "teleport", "status": "approved"}',
        b'{"v": 1, "kind": "data_age", "status": "pending", "requested_at": "2026-06-01T12:00:00+00:00"}',
    ],
)
def test_invalid_approval_records_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode_approval(value)


def test_every_change_is_journaled_under_the_approval_key_and_replays_to_the_same_state() -> None:
    journal = RecordingJournal()
    store = _store(journal)
    approval = _request(store)
    decided = _decide(store, approval.approval_id)
    assert [key for key, _ in journal.records] == [f"approval/{approval.approval_id}"] * 2
    replica = _store()
    _replay(journal.records, replica)
    assert replica.get(approval.approval_id, "agency-a") == decided
    used = replica.require(
        approval.approval_id,
        agency_id="agency-a",
        subject="off-1",
        kind="data_age",
        scope="",
        case_number="CASE-1",
        now=NOW + timedelta(hours=1),
        rule="data_age.approval_required",
        what="old reads",
    )
    assert used == decided
    # A replica applies its own records too, after its own later change: never back to pending.
    _replay(journal.records[:1], store)
    assert store.get(approval.approval_id, "agency-a") == decided


def test_concurrent_decisions_converge_on_the_later_record() -> None:
    first, second = RecordingJournal(), RecordingJournal()
    replica_a, replica_b = _store(first), _store(second)
    approval = _request(replica_a)
    _replay(first.records, replica_b)
    _decide(replica_a, approval.approval_id, approve=True)
    _decide(replica_b, approval.approval_id, approve=False)
    # The topic orders A's decision, then B's; both replicas apply both in that order.
    log = [first.records[-1], second.records[-1]]
    _replay(log, replica_a)
    _replay(log, replica_b)
    a = replica_a.get(approval.approval_id, "agency-a")
    b = replica_b.get(approval.approval_id, "agency-a")
    assert a == b and a is not None and a.status == "denied"


def test_sweep_tombstones_settled_approvals_after_the_retention() -> None:
    journal = RecordingJournal()
    store = _store(journal)
    expired = _decide(store, _request(store).approval_id)  # expires NOW + 24 h
    denied = _decide(store, _request(store).approval_id, approve=False)
    fresh = _request(store, now=NOW + timedelta(days=3))
    journal.records.clear()
    assert store.sweep(NOW + timedelta(days=2), keep_for=timedelta(days=7)) == []
    swept = store.sweep(NOW + timedelta(days=9), keep_for=timedelta(days=7))
    assert sorted(swept) == sorted([expired.approval_id, denied.approval_id])
    assert journal.records == [(f"approval/{i}", None) for i in swept]
    assert [a.approval_id for a in store.list("agency-a")] == [fresh.approval_id]
    # The tombstones remove them on a replica too.
    replica = _store()
    replica.apply_record(expired.approval_id, encode_approval(expired))
    _replay(journal.records, replica)
    assert replica.get(expired.approval_id, "agency-a") is None


def test_expired_approval_is_refused_as_expired_until_swept() -> None:
    store = _store()
    approval = _decide(store, _request(store).approval_id)
    with pytest.raises(PolicyRefusal) as refused:
        store.require(
            approval.approval_id,
            agency_id="agency-a",
            subject="off-1",
            kind="data_age",
            scope="",
            case_number="CASE-1",
            now=NOW + timedelta(hours=25),
            rule="data_age.approval_required",
            what="old reads",
        )
    assert refused.value.rule == "data_age.approval_required.expired"


def test_approval_record_under_another_key_is_refused() -> None:
    store = _store()
    approval = _request(store)
    with pytest.raises(ValueError):
        _store().apply_record("someone-else", encode_approval(approval))


# Login failures --------------------------------------------------------------------------------


def test_login_failures_round_trip_and_reject_garbage() -> None:
    state = LoginFailures(failures={"f1": 10.5, "f2": 11.0}, cleared_at=3.0)
    assert LoginFailures.decode(state.encode()) == state
    assert LoginFailures.decode(LoginFailures().encode()) == LoginFailures()
    for garbage in (b"{", b'{"v": 9}', b'{"v": 1, "failures": [["x"]], "cleared_at": null}', b"[]"):
        with pytest.raises(ValueError):
            LoginFailures.decode(garbage)


def test_login_merge_is_a_union_in_any_order() -> None:
    a = LoginFailures(failures={"a1": 1.0, "a2": 2.0})
    b = LoginFailures(failures={"b1": 1.5})
    success = LoginFailures(cleared_at=1.7)
    results = []
    for order in ((a, b, success), (success, b, a), (b, success, a, a)):
        merged = LoginFailures()
        for record in order:
            merged.merge(LoginFailures.decode(record.encode()))
        results.append(merged)
    assert all(r == LoginFailures(failures={"a2": 2.0}, cleared_at=1.7) for r in results)


def test_failures_on_two_replicas_add_up_and_a_success_clears_both() -> None:
    now = [1000.0]
    journals = RecordingJournal(), RecordingJournal()
    guards = [LoginGuard(3, 60, clock=lambda: now[0], journal=j) for j in journals]

    def exchange() -> None:
        records = [record for journal in journals for record in journal.records]
        for journal in journals:
            journal.records.clear()
        for guard in guards:
            for key, value in records:
                kind, rest = split_key(key)
                assert kind == "login"
                guard.apply_record(rest, value)

    guards[0].failed("alice")
    guards[1].failed("alice")
    exchange()
    guards[0].failed("alice")
    assert guards[0].locked("alice") and not guards[1].locked("alice")
    exchange()
    assert all(g.locked("alice") for g in guards)
    assert not any(g.locked("bob") for g in guards)
    # The username is never written in clear.
    now[0] += 1
    guards[1].succeeded("alice")
    (key, value), *_ = journals[1].records
    assert key == f"login/{login_key('alice')}" and b"alice" not in key.encode() + (value or b"")
    exchange()
    assert not any(g.locked("alice") for g in guards)


def test_lockout_expires_and_the_sweep_tombstones_it() -> None:
    now = [1000.0]
    journal = RecordingJournal()
    guard = LoginGuard(2, 60, clock=lambda: now[0], journal=journal)
    guard.failed("mallory")
    guard.failed("mallory")
    assert guard.locked("mallory")
    journal.records.clear()
    assert guard.sweep() == []
    now[0] += 61
    assert not guard.locked("mallory")
    assert guard.sweep() == [login_key("mallory")]
    assert journal.records == [(f"login/{login_key('mallory')}", None)]
    replica = LoginGuard(2, 60, clock=lambda: now[0])
    replica.apply_record(login_key("mallory"), LoginFailures(failures={"x": now[0]}).encode())
    replica.apply_record(login_key("mallory"), None)
    replica.failed("mallory")
    assert not replica.locked("mallory")


def test_guard_without_journal_behaves_as_before() -> None:
    now = [0.0]
    guard = LoginGuard(2, 100, clock=lambda: now[0])
    guard.failed("u")
    guard.failed("u")
    assert guard.locked("u")
    guard.succeeded("u")
    assert not guard.locked("u")
    guard.failed("u")
    assert not guard.locked("u")


# Idle sessions ---------------------------------------------------------------------------------


def test_session_records_round_trip_and_merge_in_any_order() -> None:
    seen = SessionSeen(last_seen=12.5, expired=True)
    assert SessionSeen.decode(seen.encode()) == seen
    for garbage in (b"", b'{"v": 1}', b'{"v": 3, "last_seen": 1, "expired": false}'):
        with pytest.raises(ValueError):
            SessionSeen.decode(garbage)
    records = [SessionSeen(10.0), SessionSeen(30.0), SessionSeen(20.0, expired=True)]
    for order in (records, records[::-1], [records[1], records[2], records[0], records[1]]):
        merged = SessionSeen(0.0)
        for record in order:
            merged.merge(record)
        assert merged == SessionSeen(30.0, expired=True)


def test_a_session_busy_on_another_replica_is_not_ended_and_writes_are_throttled() -> None:
    now = [1000.0]
    journals = RecordingJournal(), RecordingJournal()
    replicas = [IdleSessions(60, clock=lambda: now[0], journal=j) for j in journals]

    def exchange() -> None:
        records = [record for journal in journals for record in journal.records]
        for journal in journals:
            journal.records.clear()
        for sessions in replicas:
            for key, value in records:
                kind, rest = split_key(key)
                assert kind == "session"
                sessions.apply_record(rest, value)

    assert replicas[0].touch("tok-1")
    for step in range(1, 5):
        now[0] = 1000.0 + 20 * step
        assert replicas[1].touch("tok-1")
        exchange()
    # Replica 1 wrote its first use and then at most every 6 s (10% of 60 s): here every touch.
    assert replicas[0].last_seen("tok-1") == 1080.0
    now[0] = 1100.0
    assert replicas[0].touch("tok-1"), "busy on the other replica, so not idle here"
    # Touches within 6 s of the last write are not written again.
    now[0] = 1102.0
    assert replicas[0].touch("tok-1")
    assert [key for key, _ in journals[0].records] == [f"session/{session_key('tok-1')}"]
    exchange()
    # Idle everywhere: whichever replica notices ends it for all.
    now[0] = 1200.0
    assert not replicas[1].touch("tok-1")
    exchange()
    now[0] = 1100.0  # even a replica whose clock lags agrees
    assert not replicas[0].touch("tok-1")
    assert b"tok-1" not in b"".join(k.encode() for k, _ in journals[0].records)


def test_old_sessions_are_swept_and_tombstoned() -> None:
    now = [0.0]
    journal = RecordingJournal()
    sessions = IdleSessions(60, clock=lambda: now[0], journal=journal)
    assert sessions.touch("tok-1")
    journal.records.clear()
    now[0] = 86_000.0
    assert sessions.sweep() == []
    now[0] = 86_401.0
    assert sessions.sweep() == [session_key("tok-1")]
    assert journal.records == [(f"session/{session_key('tok-1')}", None)]
    assert sessions.last_seen("tok-1") is None
