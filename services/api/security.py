"""Who may call the API, for which agency's data, and for what purpose (contract 1).

FastAPI dependencies:

- `current_principal` -> `Principal` from `Authorization: Bearer <JWT RS256>` (people; keys from the
  configured JWKS URL and/or the built-in development issuer) or `X-API-Key` (machines). 401 when
  missing or invalid; people must carry a second factor in the token's `amr` claim.
- `require(permission)` -> a dependency returning the Principal when one of its roles grants the
  permission (`PERMISSIONS`), else 403 naming the rule `role.<permission>` (audited).
- `search_context` / `image_context` -> `SearchContext`: the caller's purpose (`X-Purpose-Code`
  from the policy's list, `X-Case-Number`, optional `X-Purpose-Note`) checked against the policy,
  and the agencies it may query: its own plus those sharing that data class with it for that
  purpose under an active agreement. Refusals are 403/422 naming the rule, and audited.

Every refusal is an HTTP error whose JSON body is `{"detail": ..., "rule": ...}`.

`Governance` (one per app, `app.state.governance`) holds the policy, the identity machinery, the
approval store and the audit sink. Audit goes through `AuditSink` (an adapter over
services.audit.client.AuditRecorder) so tests can collect events in memory.

Approvals and failed-login lockouts are shared by every API replica through the compacted
GOVERNANCE_STATE topic once `Governance.start_state()` has run (the app's lifespan calls it;
routes that need governance answer 503 until the replay has caught up). A request that changed
them is answered only after Kafka has the change: `Governance.audit` flushes the state journal
first, and every such change is audited.
Without `start_state` (tests over ASGI, tools) they stay in this process's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Header, HTTPException, Request, status

from services.api.settings import ApiSettings
from services.audit.client import AuditEvent, AuditRecorder
from services.common.metrics import REFUSALS, SEARCHES
from services.governance.approvals import JOURNAL_KIND as APPROVAL_JOURNAL_KIND
from services.governance.approvals import ApprovalStore
from services.governance.identity import (
    LOGIN_JOURNAL_KIND,
    ROLES,
    SESSION_JOURNAL_KIND,
    ApiKeyRecord,
    DevIssuer,
    DevUser,
    IdentityError,
    IdleSessions,
    JwksCache,
    LoginGuard,
    TokenVerifier,
    TrustedIssuer,
    check_api_key,
    keys_from_jwks,
    load_api_keys,
    load_dev_users,
)
from services.governance.policy import Policy, PolicyRefusal, load_policy
from services.governance.state_journal import JournalUnavailable, KafkaStateJournal

log = logging.getLogger(__name__)

PrincipalKind = Literal["human", "machine"]
# Pause between attempts to load the shared governance state while Kafka is unreachable.
STATE_RETRY_SECONDS = 2.0
# Shared-state record of the policy last recorded as in force (`Governance.record_policy_in_force`).
POLICY_JOURNAL_KIND = "policy"
POLICY_IN_FORCE_KEY = "in-force"

# Which roles grant what. Oversight sees aggregate statistics only; auditors read the audit log
# (GOV-AUDIT's routes) and statistics, never plates or images.
PERMISSIONS: dict[str, frozenset[str]] = {
    "reads.search": frozenset({"officer", "analyst", "supervisor"}),
    "reads.image": frozenset({"officer", "analyst", "supervisor"}),
    "reads.export": frozenset({"analyst", "supervisor"}),
    "analytics.run": frozenset({"analyst", "supervisor"}),
    "stats.read": frozenset({"officer", "analyst", "supervisor", "auditor", "admin", "oversight"}),
    "hotlists.read": frozenset({"officer", "analyst", "supervisor", "admin"}),
    "hotlists.write": frozenset({"supervisor", "admin"}),
    "alerts.read": frozenset({"officer", "analyst", "supervisor"}),
    "alerts.act": frozenset({"officer", "supervisor"}),
    "approvals.request": frozenset({"officer", "analyst", "supervisor"}),
    "approvals.decide": frozenset({"supervisor"}),
    "audit.read": frozenset({"auditor", "oversight"}),
    # Individual entries say who looked for what: oversight gets aggregates only.
    "audit.entries": frozenset({"auditor"}),
    "cameras.read": frozenset({"officer", "analyst", "supervisor", "admin"}),
}

PURPOSE_HEADER = "X-Purpose-Code"
CASE_HEADER = "X-Case-Number"
NOTE_HEADER = "X-Purpose-Note"
APPROVAL_HEADER = "X-Approval-Id"
CASE_NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{1,63}$")
MAX_NOTE_LENGTH = 500


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. `session_id` is the token id (people) or the API key id."""

    subject: str
    agency_id: str
    roles: frozenset[str]
    kind: PrincipalKind
    session_id: str = ""

    def has_any(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)

    def may(self, permission: str) -> bool:
        return self.has_any(PERMISSIONS.get(permission, frozenset()))

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "agency_id": self.agency_id,
            "roles": sorted(self.roles),
            "kind": self.kind,
            "permissions": sorted(p for p in PERMISSIONS if self.may(p)),
        }


@dataclass(frozen=True)
class SearchContext:
    """A purpose-checked request for data. `agency_ids`: the caller's agency first, then the
    agencies sharing the data class with it for this purpose (never empty). `agreement_ids`: the
    agreements that let the others in."""

    principal: Principal
    agency_ids: tuple[str, ...]
    purpose_code: str
    case_number: str
    purpose_note: str | None
    data_class: str = "reads"
    approval_id: str | None = None
    agreement_ids: tuple[str, ...] = ()

    @property
    def shared_agency_ids(self) -> tuple[str, ...]:
        return tuple(a for a in self.agency_ids if a != self.principal.agency_id)


# Audit adapter ---------------------------------------------------------------------------------


class AuditSink(Protocol):
    async def record(self, event: AuditEvent) -> Any: ...


class MemoryAuditSink:
    """Collects events in a list (tests, tools)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> AuditEvent:
        self.events.append(event)
        return event

    def of_kind(self, kind: str) -> list[AuditEvent]:
        return [e for e in self.events if e.kind == kind]


class AuditUnavailable(Exception):
    """An audit event could not be recorded: the audited action must not go ahead."""


class RecorderSink:
    """AuditRecorder started on first use (so the API starts even while Kafka is still coming up;
    audited requests then answer 503 until it is reachable)."""

    def __init__(self, recorder: AuditRecorder) -> None:
        self._recorder = recorder
        self._started = False
        self._lock = asyncio.Lock()

    async def record(self, event: AuditEvent) -> Any:
        if not self._started:
            async with self._lock:
                if not self._started:
                    await self._recorder.start()
                    self._started = True
        return await self._recorder.record(event)

    async def close(self) -> None:
        async with self._lock:
            if self._started:
                self._started = False
                await self._recorder.stop()


# Governance ------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Governance:
    """Everything the security layer needs, built once per app from settings."""

    settings: ApiSettings
    policy: Policy
    verifier: TokenVerifier
    dev_issuer: DevIssuer | None
    dev_users: dict[str, DevUser]
    api_keys: dict[str, ApiKeyRecord]
    login_guard: LoginGuard
    idle_sessions: IdleSessions
    approvals: ApprovalStore
    audit_sink: AuditSink | None = None
    clock: Callable[[], datetime] = _utcnow
    # Recorder this object created itself (closed by `close`).
    owned_recorder: RecorderSink | None = field(default=None, repr=False)
    # Shared approval/lockout state (`start_state`); None: this process's memory only.
    state_journal: KafkaStateJournal | None = field(default=None, repr=False)
    # Loads the shared state, then sweeps expired entries out of it (`start_state`).
    _state_runner: asyncio.Task[None] | None = field(default=None, repr=False)
    # The policy last recorded as in force by any replica (the journal's `policy/in-force`).
    _recorded_policy: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: ApiSettings,
        *,
        audit: AuditSink | None = None,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> Governance:
        """Load the policy and identity files (raising on invalid ones) and set up the issuers."""
        policy = policy or load_policy(settings.policy_path())
        issuers: list[TrustedIssuer] = []
        dev_issuer = None
        if settings.dev_issuer:
            dev_issuer = DevIssuer(settings.dev_issuer_key_path(), audience=settings.oidc_audience)
            issuers.append(
                TrustedIssuer(
                    dev_issuer.issuer, dev_issuer.audience, static_keys=keys_from_jwks(dev_issuer.jwks())
                )
            )
        if settings.oidc_jwks_url:
            if not settings.oidc_issuer:
                raise ValueError("PLATEWATCH_OIDC_ISSUER must be set with PLATEWATCH_OIDC_JWKS_URL")
            issuers.append(
                TrustedIssuer(
                    settings.oidc_issuer,
                    settings.oidc_audience,
                    jwks=JwksCache(settings.oidc_jwks_url, cache_seconds=settings.oidc_jwks_cache_seconds),
                )
            )
        owned = None
        if audit is None and settings.audit_enabled:
            owned = RecorderSink(AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="api"))
            audit = owned
        return cls(
            settings=settings,
            policy=policy,
            verifier=TokenVerifier(issuers),
            dev_issuer=dev_issuer,
            dev_users=load_dev_users(settings.dev_users_file) if settings.dev_issuer else {},
            api_keys=load_api_keys(settings.api_keys_file),
            login_guard=LoginGuard(settings.login_max_failures, settings.login_lockout_seconds),
            idle_sessions=IdleSessions(settings.idle_session_timeout_seconds),
            approvals=ApprovalStore(policy),
            audit_sink=audit,
            clock=clock,
            owned_recorder=owned,
        )

    async def start_state(self) -> None:
        """Share approvals and lockouts with the other API replicas (when
        `governance_state_journal` is set): replay GOVERNANCE_STATE, then write every change to it
        and keep applying the others'. Returns when the first attempt has caught up or failed (the
        app's lifespan awaits it, so with Kafka up the API only starts serving, and reports ready,
        once replayed); after a failure it keeps retrying in the background. Until the replay has
        caught up `state_ready()` is false and every route that needs governance answers 503
        (`get_governance`), so no request sees half-loaded approvals or lockouts."""
        if not self.settings.governance_state_journal or self._state_runner is not None:
            return
        first_attempt = asyncio.Event()
        self._state_runner = asyncio.create_task(self._run_state(first_attempt), name="governance-state")
        waiter = asyncio.create_task(first_attempt.wait())
        try:
            await asyncio.wait([waiter, self._state_runner], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _apply_policy_record(self, key: str, value: bytes | None) -> None:
        if key == POLICY_IN_FORCE_KEY:
            self._recorded_policy = None if value is None else json.loads(value)

    async def record_policy_in_force(self) -> bool:
        """Audit a `policy_change` (platform-wide: empty agency) when the policy this process
        loaded differs from the one last recorded in the replicas' shared state (or none was
        recorded yet), then record it there. Called once the shared state is replayed; True when
        a change was audited. Comparing canonical fingerprints, not files, means a reformatted file
        is no change and any edited rule is."""
        if self.state_journal is None:
            return False
        current = {"profile": self.policy.profile, "sha256": self.policy.fingerprint()}
        previous = self._recorded_policy or {}
        if previous.get("sha256") == current["sha256"]:
            return False
        await self.audit(
            AuditEvent(
                kind="policy_change",
                actor="system:api",
                agency_id="",
                action="policy in force",
                details={
                    **current,
                    "previous_profile": previous.get("profile", ""),
                    "previous_sha256": previous.get("sha256", ""),
                    "source": str(self.settings.policy_path()),
                },
            )
        )
        self.state_journal.append(
            f"{POLICY_JOURNAL_KIND}/{POLICY_IN_FORCE_KEY}", json.dumps(current).encode()
        )
        await self.state_journal.flush()
        self._recorded_policy = current
        return True

    def state_ready(self) -> bool:
        """True when approvals and lockouts are complete: in memory only (no `start_state`), or
        the shared state is replayed and still followed."""
        if self._state_runner is None:
            return True
        return self.state_journal is not None and self.state_journal.healthy

    async def _run_state(self, first_attempt: asyncio.Event) -> None:
        timeout = self.settings.governance_state_start_timeout_seconds
        while True:
            journal = KafkaStateJournal(
                self.settings.kafka_bootstrap,
                self.settings.topic_prefix,
                {
                    APPROVAL_JOURNAL_KIND: self.approvals.apply_record,
                    LOGIN_JOURNAL_KIND: self.login_guard.apply_record,
                    SESSION_JOURNAL_KIND: self.idle_sessions.apply_record,
                    POLICY_JOURNAL_KIND: self._apply_policy_record,
                },
                write_timeout_s=self.settings.governance_state_write_timeout_seconds,
                topic_wait_s=timeout,
            )
            try:
                await journal.start()
                # Started means the topic answers: wait for the replay however long it takes.
                await journal.wait_ready()
                break
            except asyncio.CancelledError:
                await journal.stop()
                raise
            except Exception as exc:
                await journal.stop()
                first_attempt.set()
                log.warning(
                    "governance state not loaded yet, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(STATE_RETRY_SECONDS)
        self.approvals.attach_journal(journal)
        self.login_guard.attach_journal(journal)
        self.idle_sessions.attach_journal(journal)
        self.state_journal = journal
        try:
            await self.record_policy_in_force()
        except (AuditUnavailable, JournalUnavailable) as exc:
            # Not recorded in the journal either, so the next start (of any replica) tries again.
            log.error("policy change not audited", extra={"error": str(exc)})
        first_attempt.set()
        log.info("governance state shared with the other API replicas", extra={"topic": journal.topic})
        keep_for = timedelta(hours=self.settings.approval_retention_hours)
        while True:
            await asyncio.sleep(self.settings.governance_state_sweep_seconds)
            try:
                approvals = self.approvals.sweep(self.clock(), keep_for)
                logins = self.login_guard.sweep()
                sessions = self.idle_sessions.sweep()
                await self.persist_state()
            except Exception as exc:
                log.warning("governance state sweep failed", extra={"error": str(exc)})
                continue
            if approvals or logins or sessions:
                log.info(
                    "governance state swept",
                    extra={"approvals": len(approvals), "logins": len(logins), "sessions": len(sessions)},
                )

    async def persist_state(self) -> None:
        """Wait until every approval/lockout change made so far is in Kafka (no-op in memory);
        JournalUnavailable otherwise."""
        if self.state_journal is not None:
            await self.state_journal.flush()

    async def close(self) -> None:
        if self._state_runner is not None:
            self._state_runner.cancel()
            await asyncio.gather(self._state_runner, return_exceptions=True)
        if self.state_journal is not None:
            journal, self.state_journal = self.state_journal, None
            self.approvals.attach_journal(None)
            self.login_guard.attach_journal(None)
            self.idle_sessions.attach_journal(None)
            await journal.stop()
        if self.owned_recorder is not None:
            await self.owned_recorder.close()

    async def audit(self, event: AuditEvent) -> None:
        """Record `event`; AuditUnavailable when the sink does not take it, or when the approval or
        lockout change it records could not be made durable first (every such change is audited,
        so this is where a request that made one waits for Kafka)."""
        try:
            await self.persist_state()
        except JournalUnavailable as exc:
            log.error("governance state not persisted", extra={"kind": event.kind, "error": str(exc)})
            raise AuditUnavailable(f"governance state not persisted: {exc}") from exc
        if self.audit_sink is None:
            log.info("audit (no sink)", extra={"kind": event.kind, "action": event.action})
            return
        try:
            await self.audit_sink.record(event)
        except Exception as exc:
            log.error("audit event not recorded", extra={"kind": event.kind, "error": str(exc)})
            raise AuditUnavailable(str(exc)) from exc

    async def refuse(
        self,
        rule: str,
        message: str,
        http_status: int,
        *,
        principal: Principal | None,
        action: str,
        purpose_code: str = "",
        case_number: str = "",
        details: dict[str, Any] | None = None,
    ) -> HTTPException:
        """Audit a refusal and return the HTTPException to raise (body names the rule)."""
        agency = principal.agency_id if principal else ""
        REFUSALS.labels(agency or "-", rule).inc()
        log.info("request refused", extra={"rule": rule, "action": action, "agency": agency})
        await self.audit(
            AuditEvent(
                kind="refusal",
                actor=principal.subject if principal else "anonymous",
                agency_id=agency,
                action=action,
                outcome="refused",
                purpose_code=purpose_code,
                case_number=case_number,
                details={"rule": rule, "message": message, **(details or {})},
            )
        )
        return RuleRefused(http_status, rule, message)

    async def refusal_from(
        self, exc: PolicyRefusal, *, principal: Principal | None, action: str, **kwargs: Any
    ) -> HTTPException:
        return await self.refuse(
            exc.rule, exc.message, exc.status, principal=principal, action=action, **kwargs
        )

    # Authentication -----------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal:
        """The caller of `request`; IdentityError (with a safe message) when not authenticated."""
        api_key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if api_key:
            record = check_api_key(api_key, self.api_keys)
            return Principal(
                subject=f"apikey:{record.id}",
                agency_id=record.agency_id,
                roles=frozenset(record.roles),
                kind="machine",
                session_id=record.id,
            )
        scheme, _, token = authorization.partition(" ")
        if not authorization and request.url.path.endswith("/alerts/stream"):
            # EventSource cannot set headers; the stream alone accepts the token as a parameter.
            scheme, token = "bearer", request.query_params.get("access_token", "")
        if scheme.lower() != "bearer" or not token.strip():
            raise IdentityError("authentication required: Authorization: Bearer <token> or X-API-Key")
        if not self.verifier.enabled:
            raise IdentityError("no token issuer is configured")
        claims = await self.verifier.verify(token.strip())
        return self.principal_from_claims(claims)

    def principal_from_claims(self, claims: dict[str, Any]) -> Principal:
        agency = claims.get(self.settings.oidc_agency_claim)
        if not isinstance(agency, str) or not agency:
            raise IdentityError(f"token has no '{self.settings.oidc_agency_claim}' claim")
        raw_roles = claims.get(self.settings.oidc_roles_claim, [])
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        roles = frozenset(r for r in raw_roles if isinstance(r, str) and r in ROLES)
        amr = claims.get("amr", [])
        if not isinstance(amr, list) or not set(amr) & set(self.settings.second_factor_amr):
            raise IdentityError("second factor required: the token's amr claim has none")
        session_id = str(claims.get("sid") or claims.get("jti") or "")
        if not self.idle_sessions.touch(session_id):
            raise IdentityError("session expired after inactivity: sign in again")
        return Principal(
            subject=str(claims["sub"]), agency_id=agency, roles=roles, kind="human", session_id=session_id
        )


class RuleRefused(HTTPException):
    """An HTTP refusal naming the policy/role rule (rendered as {"detail", "rule"})."""

    def __init__(self, status_code: int, rule: str, message: str) -> None:
        super().__init__(status_code, f"{message} (rule {rule})")
        self.rule = rule


def get_governance(request: Request) -> Governance:
    """The app's Governance; 503 while the replicas' shared approvals and lockouts are still being
    loaded (a lockout or approval must not be missed because this replica has just started)."""
    governance: Governance = request.app.state.governance
    if not governance.state_ready():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "governance state (approvals, login lockouts) is loading from Kafka: try again shortly",
            headers={"Retry-After": "2"},
        )
    return governance


GovernanceDep = Annotated[Governance, Depends(get_governance)]


async def current_principal(request: Request, governance: GovernanceDep) -> Principal:
    """The authenticated caller (401 with a reason otherwise). Failures are audited as logins."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    try:
        principal = await governance.authenticate(request)
    except IdentityError as exc:
        REFUSALS.labels("-", "auth.unauthenticated").inc()
        await _audit_or_503(
            governance,
            AuditEvent(
                kind="login",
                actor="anonymous",
                agency_id="",
                action=f"{request.method} {request.url.path}",
                outcome="refused",
                details={"rule": "auth.unauthenticated", "message": str(exc)},
            ),
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def _audit_or_503(governance: Governance, event: AuditEvent) -> None:
    try:
        await governance.audit(event)
    except AuditUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"audit log unavailable, request not served: {exc}"
        ) from exc


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the principal, if one of its roles grants `permission`; else 403 (audited)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request, principal: PrincipalDep, governance: GovernanceDep) -> Principal:
        if not principal.may(permission):
            raise await _refuse(
                governance,
                f"role.{permission}",
                f"roles {sorted(principal.roles)} do not allow {permission}",
                status.HTTP_403_FORBIDDEN,
                principal=principal,
                action=f"{request.method} {request.url.path}",
            )
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


async def _refuse(
    governance: Governance, rule: str, message: str, http_status: int, **kwargs: Any
) -> HTTPException:
    try:
        return await governance.refuse(rule, message, http_status, **kwargs)
    except AuditUnavailable as exc:
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"audit log unavailable: {exc}")


def _purpose_dependency(permission: str, data_class: str) -> Callable[..., Awaitable[SearchContext]]:
    require_permission = require(permission)

    async def dependency(
        request: Request,
        governance: GovernanceDep,
        purpose_code: Annotated[
            str | None,
            Header(
                alias=PURPOSE_HEADER,
                description="Purpose code from the policy's configured list (required).",
            ),
        ] = None,
        case_number: Annotated[
            str | None,
            Header(alias=CASE_HEADER, description="Case or incident number (required)."),
        ] = None,
        purpose_note: Annotated[
            str | None,
            Header(alias=NOTE_HEADER, description="Optional free text; never replaces the code."),
        ] = None,
        approval_id: Annotated[
            str | None,
            Header(alias=APPROVAL_HEADER, description="Approval for old data or gated analytics."),
        ] = None,
        # A default, not Annotated: the closure variable is not visible to string annotations.
        principal: Principal = Depends(require_permission),  # noqa: B008
    ) -> SearchContext:
        action = f"{request.method} {request.url.path}"
        code = (purpose_code or "").strip()
        case = (case_number or "").strip()
        note = (purpose_note or "").strip() or None

        async def refuse(rule: str, message: str, http_status: int) -> HTTPException:
            return await _refuse(
                governance,
                rule,
                message,
                http_status,
                principal=principal,
                action=action,
                purpose_code=code,
                case_number=case,
                details={"data_class": data_class},
            )

        if not code:
            raise await refuse("purpose.code_required", f"send the purpose code in {PURPOSE_HEADER}", 422)
        if not case:
            raise await refuse("purpose.case_number_required", f"send the case number in {CASE_HEADER}", 422)
        if not CASE_NUMBER_PATTERN.match(case):
            raise await refuse(
                "purpose.case_number_format",
                "case number: 2-64 characters, letters, digits and . _ : / # -",
                422,
            )
        if note is not None and len(note) > MAX_NOTE_LENGTH:
            raise await refuse(
                "purpose.note_too_long", f"purpose note: at most {MAX_NOTE_LENGTH} characters", 422
            )
        try:
            governance.policy.check_purpose(principal.agency_id, code)
        except PolicyRefusal as exc:
            raise await refuse(exc.rule, exc.message, exc.status) from exc
        now = governance.clock()
        agreements = governance.policy.agreements_for(principal.agency_id, code, data_class, now)
        owners = sorted({a.owner for a in agreements} - {principal.agency_id})
        return SearchContext(
            principal=principal,
            agency_ids=(principal.agency_id, *owners),
            purpose_code=code,
            case_number=case,
            purpose_note=note,
            data_class=data_class,
            approval_id=(approval_id or "").strip() or None,
            agreement_ids=tuple(sorted(a.id for a in agreements)),
        )

    dependency.__name__ = f"{data_class}_context"
    return dependency


# Contract 1: `search_context` for reads; `image_context` for image views; exports and analytics
# use their own data classes / permissions.
search_context = _purpose_dependency("reads.search", "reads")
image_context = _purpose_dependency("reads.image", "images")
export_context = _purpose_dependency("reads.export", "reads")
analytics_context = _purpose_dependency("analytics.run", "reads")

SearchContextDep = Annotated[SearchContext, Depends(search_context)]
ImageContextDep = Annotated[SearchContext, Depends(image_context)]


async def audit_data_access(
    governance: Governance,
    context: SearchContext,
    *,
    kind: str,
    action: str,
    result_count: int,
    details: dict[str, Any] | None = None,
    agencies_returned: Iterable[str] = (),
) -> None:
    """Audit a search / image view / export on the caller's side and, for every other agency whose
    data was queried under an agreement, on that agency's side too. 503 when the audit log is down
    (the result must not be handed out unaudited)."""
    principal = context.principal
    common = {
        "agency_ids": list(context.agency_ids),
        "agreement_ids": list(context.agreement_ids),
        "purpose_note": context.purpose_note,
        "approval_id": context.approval_id,
        **(details or {}),
    }
    events = [
        AuditEvent(
            kind=kind,
            actor=principal.subject,
            agency_id=principal.agency_id,
            action=action,
            purpose_code=context.purpose_code,
            case_number=context.case_number,
            result_count=result_count,
            details=common,
        )
    ]
    returned = set(agencies_returned)
    for owner in context.shared_agency_ids:
        events.append(
            AuditEvent(
                kind="sharing",
                actor=principal.subject,
                agency_id=owner,
                action=f"shared {kind}: {action}",
                purpose_code=context.purpose_code,
                case_number=context.case_number,
                result_count=int(owner in returned),
                details={**common, "partner_agency_id": principal.agency_id, "partner_kind": principal.kind},
            )
        )
    if kind == "search":
        SEARCHES.labels(principal.agency_id, context.purpose_code).inc()
    for event in events:
        await _audit_or_503(governance, event)


async def audit_action(governance: Governance, event: AuditEvent) -> None:
    """Record any other audited action (alert steps, hotlist changes, approvals); 503 if the audit
    log does not take it."""
    await _audit_or_503(governance, event)


async def refuse_policy(
    governance: Governance, exc: PolicyRefusal, *, principal: Principal, action: str, **kwargs: Any
) -> HTTPException:
    """Audit a PolicyRefusal raised by a route and return the HTTPException to raise."""
    return await _refuse(
        governance, exc.rule, exc.message, exc.status, principal=principal, action=action, **kwargs
    )


async def refuse_rule(
    governance: Governance, rule: str, message: str, http_status: int, *, principal: Principal, action: str
) -> HTTPException:
    return await _refuse(governance, rule, message, http_status, principal=principal, action=action)
