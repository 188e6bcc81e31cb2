"""Test helpers for calling the API as someone: a Governance with an in-memory audit sink and
development-issuer tokens, minted directly (no login round trip).

    governance = make_governance()
    app = create_app(settings, backends=..., governance=governance)
    client = httpx.AsyncClient(..., headers=auth_headers(governance, "officer", "agency-a"))

`auth_headers(..., purpose=None)` leaves out the purpose headers a search or image view needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from services.api.security import Governance, MemoryAuditSink
from services.api.settings import ApiSettings
from services.common.settings import REPO_ROOT
from services.governance.policy import Policy, load_policy

# Generated once (RSA) and reused by every test run; var/ is git-ignored.
TEST_KEY_FILE = REPO_ROOT / "var" / "test-identity" / "dev-issuer-key.pem"
DEFAULT_PURPOSE = "stolen-vehicle"
DEFAULT_CASE = "CASE-2024-001"


def make_governance(
    settings: ApiSettings | None = None,
    *,
    policy: Policy | dict[str, Any] | Path | None = None,
    clock: Any = None,
    **overrides: Any,
) -> Governance:
    """A Governance for tests: dev issuer with a cached key, an in-memory audit sink (the
    `audit_sink` attribute, a MemoryAuditSink) and the default policy unless another is given
    (a Policy, a dict in the YAML's shape, or a path)."""
    settings = settings or ApiSettings()
    settings = settings.model_copy(
        update={"dev_issuer_key_file": TEST_KEY_FILE, "dev_issuer": True, **overrides}
    )
    if isinstance(policy, dict):
        policy = Policy.model_validate(policy)
    elif isinstance(policy, Path):
        policy = load_policy(policy)
    kwargs: dict[str, Any] = {"audit": MemoryAuditSink(), "policy": policy}
    if clock is not None:
        kwargs["clock"] = clock
    return Governance.build(settings, **kwargs)


def default_policy_dict() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((REPO_ROOT / "deploy" / "policies" / "default.yaml").read_text())
    return raw


def token(
    governance: Governance,
    role: str | Iterable[str] = "officer",
    agency_id: str = "agency-a",
    *,
    subject: str | None = None,
    amr: Iterable[str] = ("pwd", "otp"),
    ttl_seconds: int = 900,
    now: datetime | None = None,
) -> str:
    roles = [role] if isinstance(role, str) else list(role)
    assert governance.dev_issuer is not None
    return governance.dev_issuer.mint(
        subject or f"{agency_id}-{'-'.join(roles)}",
        agency_id,
        roles,
        amr=amr,
        ttl_seconds=ttl_seconds,
        now=now.timestamp() if now else None,
    )


def auth_headers(
    governance: Governance,
    role: str | Iterable[str] = "officer",
    agency_id: str = "agency-a",
    *,
    purpose: str | None = DEFAULT_PURPOSE,
    case: str | None = DEFAULT_CASE,
    subject: str | None = None,
) -> dict[str, str]:
    """Bearer token headers plus (unless None) the purpose and case headers."""
    headers = {"Authorization": f"Bearer {token(governance, role, agency_id, subject=subject)}"}
    if purpose is not None:
        headers["X-Purpose-Code"] = purpose
    if case is not None:
        headers["X-Case-Number"] = case
    return headers


def audit_events(governance: Governance) -> MemoryAuditSink:
    sink = governance.audit_sink
    assert isinstance(sink, MemoryAuditSink)
    return sink


# For API processes started from the environment (services.api.main.serve, the stack) --------------

ISSUER_ENV = {"PLATEWATCH_DEV_ISSUER_KEY_FILE": str(TEST_KEY_FILE)}


def process_headers(
    role: str | Iterable[str] = "officer",
    agency_id: str = "agency-a",
    *,
    purpose: str | None = DEFAULT_PURPOSE,
    case: str | None = DEFAULT_CASE,
    subject: str | None = None,
) -> dict[str, str]:
    """Headers for an API process started with ISSUER_ENV in its environment (same dev key)."""
    from services.governance.identity import DevIssuer

    issuer = DevIssuer(TEST_KEY_FILE)
    roles = [role] if isinstance(role, str) else list(role)
    headers = {
        "Authorization": "Bearer "
        + issuer.mint(subject or f"{agency_id}-{'-'.join(roles)}", agency_id, roles, amr=("pwd", "otp"))
    }
    if purpose is not None:
        headers["X-Purpose-Code"] = purpose
    if case is not None:
        headers["X-Case-Number"] = case
    return headers
