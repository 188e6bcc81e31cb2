"""Authentication and approval routes.

- `GET /auth/me`: the caller as the API sees it (subject, agency, roles, kind, permissions).
- Development issuer (only when `PLATEWATCH_DEV_ISSUER` is true, the embedded default):
  `GET /auth/dev/jwks.json` (its public keys) and `POST /auth/dev/token`
  `{"username", "password", "otp"}` -> `{"access_token", "token_type": "bearer", "expires_in"}`.
  Failed logins count towards the lockout; every attempt is audited (kind "login").
- Approvals (`/api/v1/approvals`): request a supervisor's approval for old data or for analytics
  that need a second approver, decide it, list them. See services/governance/approvals.py.

`dev_login(base_url, ...)` and `purpose_headers(...)` are small helpers for the local stack and
tests that need to call the API as a person.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from services.api.models import API_PREFIX, ErrorOut
from services.api.security import (
    CASE_HEADER,
    PURPOSE_HEADER,
    GovernanceDep,
    Principal,
    PrincipalDep,
    audit_action,
    refuse_policy,
    refuse_rule,
    require,
)
from services.audit.client import AuditEvent
from services.governance.approvals import Approval, ApprovalKind
from services.governance.identity import hash_password, verify_password, verify_totp
from services.governance.policy import PolicyRefusal

DEV_PASSWORD = "platewatch-dev"
# Verified against for unknown usernames so that timing does not tell which usernames exist.
_DUMMY_HASH = hash_password("not a password")

router = APIRouter(tags=["auth"])
approvals_router = APIRouter(prefix=API_PREFIX, tags=["approvals"])

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated"},
    403: {"model": ErrorOut, "description": "Refused by a rule (named in the body)"},
}


class MeOut(BaseModel):
    subject: str
    agency_id: str
    roles: list[str]
    kind: Literal["human", "machine"]
    permissions: list[str]


@router.get("/auth/me", response_model=MeOut, responses=AUTH_ERRORS)
async def me(principal: PrincipalDep) -> MeOut:
    """The authenticated caller."""
    return MeOut.model_validate(principal.to_json())


class DevTokenIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=500)
    otp: str = Field(default="", max_length=20)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


def _dev_issuer_enabled(governance: GovernanceDep) -> GovernanceDep:
    if governance.dev_issuer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the development issuer is not enabled")
    return governance


DevGovernanceDep = Annotated[Any, Depends(_dev_issuer_enabled)]


@router.get("/auth/dev/jwks.json", responses={404: {"model": ErrorOut}})
async def dev_jwks(governance: DevGovernanceDep) -> dict[str, Any]:
    """Public signing keys of the development issuer (JWKS)."""
    jwks: dict[str, Any] = governance.dev_issuer.jwks()
    return jwks


@router.post(
    "/auth/dev/token",
    response_model=TokenOut,
    responses={
        401: {"model": ErrorOut, "description": "Wrong username, password or one-time code"},
        404: {"model": ErrorOut, "description": "Development issuer not enabled"},
        429: {"model": ErrorOut, "description": "Locked after too many failed logins"},
    },
)
async def dev_token(body: DevTokenIn, governance: DevGovernanceDep) -> TokenOut:
    """Sign in a development user (password + one-time code) and get a bearer token whose `amr`
    claim records both factors."""
    settings = governance.settings
    guard = governance.login_guard
    user = governance.dev_users.get(body.username)

    async def audit(outcome: Literal["allowed", "refused"], rule: str = "") -> None:
        await audit_action(
            governance,
            AuditEvent(
                kind="login",
                actor=body.username,
                agency_id=user.agency_id if user else "",
                action="dev token",
                outcome=outcome,
                details={"rule": rule} if rule else {},
            ),
        )

    if guard.locked(body.username):
        await audit("refused", "auth.locked")
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins: try again later (rule auth.locked)",
        )
    password_ok = verify_password(body.password, user.password_hash if user else _DUMMY_HASH)
    if user is not None and user.totp_secret:
        otp_ok = verify_totp(user.totp_secret, body.otp, time.time())
    else:
        fixed = settings.dev_fixed_otp
        otp_ok = bool(fixed) and hmac.compare_digest(body.otp.encode(), fixed.encode())
    if user is None or not password_ok or not otp_ok:
        guard.failed(body.username)
        await audit("refused", "auth.bad_credentials")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username, password or one-time code")
    guard.succeeded(body.username)
    token = governance.dev_issuer.mint(
        user.username,
        user.agency_id,
        user.roles,
        amr=("pwd", "otp"),
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    await audit("allowed")
    return TokenOut(access_token=token, expires_in=settings.access_token_ttl_seconds)


# Approvals -------------------------------------------------------------------------------------


class ApprovalIn(BaseModel):
    kind: ApprovalKind
    # For kind "analytics": the analytics kind (e.g. convoy, multi_site).
    scope: str = Field(default="", max_length=64)
    case_number: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{1,63}$")
    purpose_code: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=1000)


class DecisionIn(BaseModel):
    approve: bool
    note: str = Field(default="", max_length=1000)


class ApprovalOut(BaseModel):
    approval_id: str
    agency_id: str
    kind: ApprovalKind
    scope: str
    case_number: str
    purpose_code: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: Literal["pending", "approved", "denied"]
    decided_by: str
    decided_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, approval: Approval) -> ApprovalOut:
        return cls.model_validate(approval, from_attributes=True)


class ApprovalsOut(BaseModel):
    approvals: list[ApprovalOut]


APPROVAL_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: {"model": ErrorOut, "description": "No such approval in the caller's agency"},
    409: {"model": ErrorOut, "description": "Already decided"},
}


@approvals_router.post(
    "/approvals", response_model=ApprovalOut, status_code=status.HTTP_201_CREATED, responses=APPROVAL_ERRORS
)
async def request_approval(
    request: Request,
    body: ApprovalIn,
    governance: GovernanceDep,
    principal: Annotated[Principal, Depends(require("approvals.request"))],
) -> ApprovalOut:
    """Ask for an approval (the requester is the only one who may later use it)."""
    action = "request approval"
    try:
        governance.policy.check_purpose(principal.agency_id, body.purpose_code)
        approval = governance.approvals.request(
            agency_id=principal.agency_id,
            kind=body.kind,
            scope=body.scope,
            case_number=body.case_number,
            purpose_code=body.purpose_code,
            reason=body.reason,
            requested_by=principal.subject,
            now=governance.clock(),
        )
    except PolicyRefusal as exc:
        raise await refuse_policy(governance, exc, principal=principal, action=action) from exc
    await _audit_approval(governance, principal, approval, action)
    return ApprovalOut.of(approval)


@approvals_router.get("/approvals", response_model=ApprovalsOut, responses=AUTH_ERRORS)
async def list_approvals(
    governance: GovernanceDep,
    principal: Annotated[Principal, Depends(require("approvals.request"))],
) -> ApprovalsOut:
    """Approvals of the caller's agency, newest first."""
    return ApprovalsOut(approvals=[ApprovalOut.of(a) for a in governance.approvals.list(principal.agency_id)])


@approvals_router.post(
    "/approvals/{approval_id}/decision", response_model=ApprovalOut, responses=APPROVAL_ERRORS
)
async def decide_approval(
    approval_id: str,
    body: DecisionIn,
    governance: GovernanceDep,
    principal: Annotated[Principal, Depends(require("approvals.decide"))],
) -> ApprovalOut:
    """Grant or deny a pending approval: a supervisor of the same agency other than the requester."""
    action = "grant approval" if body.approve else "deny approval"
    try:
        approval = governance.approvals.decide(
            approval_id,
            agency_id=principal.agency_id,
            decider=principal.subject,
            roles=principal.roles,
            approve=body.approve,
            now=governance.clock(),
        )
    except PolicyRefusal as exc:
        if exc.status == 404:
            raise await refuse_rule(
                governance, exc.rule, exc.message, 404, principal=principal, action=action
            ) from exc
        raise await refuse_policy(governance, exc, principal=principal, action=action) from exc
    await _audit_approval(governance, principal, approval, action, note=body.note)
    return ApprovalOut.of(approval)


async def _audit_approval(
    governance: GovernanceDep, principal: Principal, approval: Approval, action: str, note: str = ""
) -> None:
    await audit_action(
        governance,
        AuditEvent(
            kind="approval",
            actor=principal.subject,
            agency_id=principal.agency_id,
            action=action,
            purpose_code=approval.purpose_code,
            case_number=approval.case_number,
            details={
                "approval_id": approval.approval_id,
                "kind": approval.kind,
                "scope": approval.scope,
                "status": approval.status,
                "requested_by": approval.requested_by,
                "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
                "note": note,
            },
        ),
    )


# Helpers for the local stack and tests ----------------------------------------------------------


def dev_login(
    base_url: str,
    username: str = "officer",
    password: str = DEV_PASSWORD,
    otp: str = "123456",
    *,
    timeout: float = 10.0,
) -> str:
    """Sign in to a running API's development issuer; returns the bearer token."""
    response = httpx.post(
        f"{base_url.rstrip('/')}/auth/dev/token",
        json={"username": username, "password": password, "otp": otp},
        timeout=timeout,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def auth_headers(
    token: str, purpose_code: str | None = None, case_number: str | None = None
) -> dict[str, str]:
    """Authorization header, plus the purpose headers a search or image view needs."""
    headers = {"Authorization": f"Bearer {token}"}
    if purpose_code is not None:
        headers[PURPOSE_HEADER] = purpose_code
    if case_number is not None:
        headers[CASE_HEADER] = case_number
    return headers
