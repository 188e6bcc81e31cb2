"""Approvals and login lockouts are shared by API replicas and survive restarts (issue 6): several
real API apps (create_app with their own Governance, lifespan run) on one real Kafka broker and
topic prefix, talking through the compacted GOVERNANCE_STATE topic only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import jwt
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.topics import GOVERNANCE_STATE
from services.governance.identity import IdleSessions, LoginGuard, login_key
from services.governance.state_journal import JournalUnavailable
from tests.governance.conftest import PLATE, A, World, open_world
from tests.governance.helpers import auth_headers, default_policy_dict, token
from tests.governance.test_purpose import Clock
from tests.waiting import until

# Generous for 2 shared cores: a replica replays and follows within a poll (200 ms) normally.
WITHIN_S = 30.0
MAX_FAILURES = 3
LOCKOUT_S = 600.0
IDLE_S = 60.0
LOGIN = "/auth/dev/token"
GOOD = {"password": "platewatch-dev", "otp": "123456"}
BAD = {"password": "wrong", "otp": "123456"}


class LoginClock:
    """Epoch seconds shared by the replicas' LoginGuards, advanced by hand."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def replica(
    bootstrap: str,
    prefix: str,
    clock: Clock,
    login_clock: LoginClock,
    policy: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """One API replica: its own Governance and app, its lifespan run (which loads the shared state);
    yielded once the replay has caught up. Leaving it stops the replica."""
    settings: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": prefix,
        "login_max_failures": MAX_FAILURES,
        "login_lockout_seconds": LOCKOUT_S,
        # Sweeps are driven by the tests.
        "governance_state_sweep_seconds": 3600.0,
        **overrides,
    }
    async with open_world(policy, clock=clock, **settings) as world:
        world.governance.login_guard = LoginGuard(MAX_FAILURES, LOCKOUT_S, clock=login_clock)
        world.governance.idle_sessions = IdleSessions(IDLE_S, clock=login_clock)
        app = world.client.app  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            await until(world.governance.state_ready, "the replica to replay the governance state", WITHIN_S)
            yield world


async def _request_old_data_approval(world: World, officer: dict[str, str]) -> str:
    response = await world.client.post(
        "/api/v1/approvals",
        json={"kind": "data_age", "case_number": "CASE-77", "purpose_code": "stolen-vehicle"},
        headers=officer,
    )
    assert response.status_code == 201, response.text
    approval_id: str = response.json()["approval_id"]
    return approval_id


async def _status_on(world: World, approval_id: str, officer: dict[str, str]) -> str | None:
    listed = await world.client.get("/api/v1/approvals", headers=officer)
    assert listed.status_code == 200, listed.text
    found = [a["status"] for a in listed.json()["approvals"] if a["approval_id"] == approval_id]
    return found[0] if found else None


async def _compacted_values(bootstrap: str, prefix: str) -> dict[bytes, bytes | None]:
    """The latest value of every key in the topic, as compaction will keep it."""
    topic = GOVERNANCE_STATE.name(prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes | None] = {}

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    assert record.key is not None
                    latest[record.key] = record.value
        return latest
    finally:
        await consumer.stop()


async def test_approval_granted_on_one_replica_is_used_on_another_and_survives_a_restart(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    clock, login_clock = Clock(), LoginClock()
    old = {"plate": PLATE, "from": (clock.now - timedelta(days=200)).isoformat()}
    async with (
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as first,
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as second,
    ):
        officer = auth_headers(first.governance, "officer", A, subject="off-1", case="CASE-77")
        supervisor = auth_headers(first.governance, "supervisor", A, subject="sup-1")
        approval_id = await _request_old_data_approval(first, officer)
        # In Kafka before the response came back (read at once, no waiting).
        stored = (await _compacted_values(kafka_bootstrap, topic_prefix))[f"approval/{approval_id}".encode()]
        assert stored is not None and json.loads(stored)["status"] == "pending"
        with_approval = {**officer, "X-Approval-Id": approval_id}

        # The request is seen by the other replica, still pending there.
        async def pending_on_second() -> bool:
            return await _status_on(second, approval_id, officer) == "pending"

        await until(pending_on_second, "the pending approval on the second replica", WITHIN_S)
        pending = await second.client.get("/api/v1/reads", params=old, headers=with_approval)
        assert pending.status_code == 403 and "pending" in pending.json()["detail"]

        granted = await first.client.post(
            f"/api/v1/approvals/{approval_id}/decision", json={"approve": True}, headers=supervisor
        )
        assert granted.status_code == 200 and granted.json()["status"] == "approved"

        async def searched_on_second() -> bool:
            response = await second.client.get("/api/v1/reads", params=old, headers=with_approval)
            return response.status_code == 200

        await until(searched_on_second, "a search on the second replica using the approval", WITHIN_S)
        # A decision cannot be taken again on the other replica.
        again = await second.client.post(
            f"/api/v1/approvals/{approval_id}/decision", json={"approve": False}, headers=supervisor
        )
        assert again.status_code == 409 and again.json()["rule"] == "approval.already_decided"

    # Every replica stopped; a new one knows the approval as soon as it is ready.
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock) as restarted:
        allowed = await restarted.client.get("/api/v1/reads", params=old, headers=with_approval)
        assert allowed.status_code == 200, allowed.text
        assert await _status_on(restarted, approval_id, officer) == "approved"

        # Expiry still applies, and the sweep tombstones the approval once its retention is over.
        clock.now += timedelta(hours=25)
        expired = await restarted.client.get("/api/v1/reads", params=old, headers=with_approval)
        assert expired.status_code == 403
        assert expired.json()["rule"] == "data_age.approval_required.expired"
        clock.now += timedelta(days=8)
        swept = restarted.governance.approvals.sweep(clock.now, timedelta(days=7))
        assert swept == [approval_id]
        await restarted.governance.persist_state()

    latest = await _compacted_values(kafka_bootstrap, topic_prefix)
    assert latest[f"approval/{approval_id}".encode()] is None
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock) as after_sweep:
        assert await _status_on(after_sweep, approval_id, officer) is None


async def test_failed_logins_spread_over_replicas_lock_the_user_everywhere(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    clock, login_clock = Clock(), LoginClock()
    async with (
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as first,
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as second,
    ):
        replicas = (first, second)
        for attempt in range(MAX_FAILURES):
            # Alternate replicas, each attempt after the previous one has reached both.
            target = replicas[attempt % 2]
            failed = await target.client.post(LOGIN, json={"username": "analyst", **BAD})
            assert failed.status_code == 401
            expected = attempt + 1

            def counted(expected: int = expected) -> bool:
                return all(r.governance.login_guard.recent_failures("analyst") == expected for r in replicas)

            await until(counted, f"failure {expected} on both replicas", WITHIN_S)
        for world in replicas:
            # Locked even with the right password, on both replicas.
            locked = await world.client.post(LOGIN, json={"username": "analyst", **GOOD})
            assert locked.status_code == 429 and "auth.locked" in locked.json()["detail"]
        other = await second.client.post(LOGIN, json={"username": "officer", **GOOD})
        assert other.status_code == 200

    # A restarted replica still refuses the locked user; the lock ends after the lockout period.
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock) as restarted:
        still = await restarted.client.post(LOGIN, json={"username": "analyst", **GOOD})
        assert still.status_code == 429
        login_clock.now += LOCKOUT_S + 1
        assert restarted.governance.login_guard.sweep() == [login_key("analyst")]
        await restarted.governance.persist_state()
        released = await restarted.client.post(LOGIN, json={"username": "analyst", **GOOD})
        assert released.status_code == 200, released.text

    latest = await _compacted_values(kafka_bootstrap, topic_prefix)
    key = f"login/{login_key('analyst')}".encode()
    assert key in latest
    assert all(b"analyst" not in k + (v or b"") for k, v in latest.items())


async def test_a_success_on_one_replica_clears_the_failures_on_the_other(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    clock, login_clock = Clock(), LoginClock()
    async with (
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as first,
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as second,
    ):
        for _ in range(MAX_FAILURES - 1):
            assert (await first.client.post(LOGIN, json={"username": "officer", **BAD})).status_code == 401
        guard = second.governance.login_guard
        await until(
            lambda: guard.recent_failures("officer") == MAX_FAILURES - 1,
            "the failures on the second replica",
            WITHIN_S,
        )
        login_clock.now += 1
        assert (await first.client.post(LOGIN, json={"username": "officer", **GOOD})).status_code == 200
        await until(
            lambda: guard.recent_failures("officer") == 0,
            "the success to clear the second replica",
            WITHIN_S,
        )
        # One more failure on the second replica does not lock: the earlier ones were voided.
        assert (await second.client.post(LOGIN, json={"username": "officer", **BAD})).status_code == 401
        assert (await second.client.post(LOGIN, json={"username": "officer", **GOOD})).status_code == 200


async def test_a_session_busy_on_one_replica_is_not_idle_on_another(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    clock, login_clock = Clock(), LoginClock()
    async with (
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as first,
        replica(kafka_bootstrap, topic_prefix, clock, login_clock) as second,
    ):
        bearer = token(first.governance, "officer", A)
        session_id = jwt.decode(bearer, options={"verify_signature": False})["jti"]
        headers = {"Authorization": f"Bearer {bearer}"}
        start = login_clock.now
        assert (await first.client.get("/auth/me", headers=headers)).status_code == 200
        login_clock.now = start + 40
        assert (await second.client.get("/auth/me", headers=headers)).status_code == 200
        await until(
            lambda: first.governance.idle_sessions.last_seen(session_id) == start + 40,
            "the second replica's use of the session on the first",
            WITHIN_S,
        )
        # 90 s after its last use here, but 50 s after the last use anywhere: still on.
        login_clock.now = start + 90
        assert (await first.client.get("/auth/me", headers=headers)).status_code == 200
        login_clock.now = start + 200
        for world in (second, first):
            idle = await world.client.get("/auth/me", headers=headers)
            assert idle.status_code == 401 and "inactivity" in idle.json()["detail"]


async def test_routes_answer_503_until_the_shared_state_is_loaded() -> None:
    """Nothing listens on port 1: the replica keeps retrying and must not serve from empty state."""
    async with open_world(kafka_bootstrap="127.0.0.1:1", topic_prefix="unreachable.") as world:
        app = world.client.app  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            assert not world.governance.state_ready()
            login = await world.client.post(LOGIN, json={"username": "officer", **GOOD})
            assert login.status_code == 503 and "loading" in login.json()["detail"]
            me = await world.client.get("/auth/me", headers=auth_headers(world.governance, "officer", A))
            assert me.status_code == 503
            assert (await world.client.get("/healthz")).status_code == 200
        # Memory-only governance (no lifespan, as in the other governance tests) is ready at once.
    async with open_world() as memory_only:
        assert memory_only.governance.state_ready()
        response = await memory_only.client.post(LOGIN, json={"username": "officer", **GOOD})
        assert response.status_code == 200


class _FailingJournal:
    """A journal whose writes never reach Kafka."""

    healthy = True

    def __init__(self) -> None:
        self.appended: list[str] = []

    def append(self, key: str, value: bytes | None) -> None:
        self.appended.append(key)

    async def flush(self) -> None:
        raise JournalUnavailable("broker gone")


async def test_a_change_that_is_not_in_kafka_is_not_confirmed() -> None:
    async with open_world() as world:
        journal = _FailingJournal()
        world.governance.state_journal = journal  # type: ignore[assignment]
        world.governance.approvals.attach_journal(journal)
        world.governance.login_guard.attach_journal(journal)
        officer = auth_headers(world.governance, "officer", A, subject="off-1", case="CASE-77")
        response = await world.client.post(
            "/api/v1/approvals",
            json={"kind": "data_age", "case_number": "CASE-77", "purpose_code": "stolen-vehicle"},
            headers=officer,
        )
        assert response.status_code == 503 and "not persisted" in response.json()["detail"]
        failed = await world.client.post(LOGIN, json={"username": "analyst", **BAD})
        assert failed.status_code == 503
        assert [key.split("/")[0] for key in journal.appended] == ["approval", "login"]
        # Nothing was audited as done.
        assert world.audit.of_kind("approval") == []


async def test_the_policy_in_force_is_audited_once_per_change(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    clock, login_clock = Clock(), LoginClock()
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock) as first:
        (change,) = first.audit.of_kind("policy_change")
        original = first.governance.policy.fingerprint()
        assert change.agency_id == "", "platform-wide: it concerns every agency"
        assert change.details["sha256"] == original and change.details["previous_sha256"] == ""
        assert change.details["profile"] == "default"

    # A restart (or another replica) with the same rules records nothing new.
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock) as same:
        assert same.audit.of_kind("policy_change") == []

    edited = default_policy_dict()
    edited["retention"]["non_hit_reads"] = "7d"
    async with replica(kafka_bootstrap, topic_prefix, clock, login_clock, edited) as changed:
        (change,) = changed.audit.of_kind("policy_change")
        assert change.details["previous_sha256"] == original
        assert change.details["sha256"] == changed.governance.policy.fingerprint() != original
    stored = await _compacted_values(kafka_bootstrap, topic_prefix)
    assert json.loads(stored[b"policy/in-force"] or b"null")["sha256"] != original
