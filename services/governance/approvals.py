"""Approvals: a supervisor's (second person's) consent for one case, valid for a limited time.

Two kinds:
- `data_age`: search reads older than the policy's data-age tier (`Policy.data_age_tier`).
- `analytics`: run an analytics kind the policy marks as needing a second approver (convoy,
  multi_site).

An approval is requested by the person who will use it, for one case number and purpose, and
granted by someone else of the same agency with the approver role. It can only be used by its
requester, for that case, until it expires. The store is in the API process's memory: a restart
drops pending and granted approvals (people ask again); every step is on the audit log.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.governance.policy import Policy, PolicyRefusal

ApprovalKind = Literal["data_age", "analytics"]
ApprovalStatus = Literal["pending", "approved", "denied"]
DEFAULT_APPROVAL_VALID_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Approval:
    approval_id: str
    agency_id: str
    kind: ApprovalKind
    # data_age: "" ; analytics: the analytics kind (convoy, multi_site, ...).
    scope: str
    case_number: str
    purpose_code: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: ApprovalStatus = "pending"
    decided_by: str = ""
    decided_at: datetime | None = None
    expires_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.status == "approved" and self.expires_at is not None and now < self.expires_at


class ApprovalStore:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._approvals: dict[str, Approval] = {}
        self._lock = threading.Lock()

    def request(
        self,
        *,
        agency_id: str,
        kind: ApprovalKind,
        scope: str,
        case_number: str,
        purpose_code: str,
        reason: str,
        requested_by: str,
        now: datetime,
    ) -> Approval:
        if kind == "analytics" and not self._policy.needs_second_approver(agency_id, scope):
            raise PolicyRefusal(
                "approval.not_required",
                f"analytics {scope!r} needs no second approver under this policy",
                422,
            )
        if kind == "data_age" and not self._policy.rules_for(agency_id).data_age_tiers:
            raise PolicyRefusal("approval.not_required", "this policy has no data-age tiers", 422)
        approval = Approval(
            approval_id=secrets.token_hex(8),
            agency_id=agency_id,
            kind=kind,
            scope=scope if kind == "analytics" else "",
            case_number=case_number,
            purpose_code=purpose_code,
            reason=reason,
            requested_by=requested_by,
            requested_at=now,
        )
        with self._lock:
            self._approvals[approval.approval_id] = approval
        return approval

    def get(self, approval_id: str, agency_id: str) -> Approval | None:
        approval = self._approvals.get(approval_id)
        return approval if approval is not None and approval.agency_id == agency_id else None

    def list(self, agency_id: str) -> list[Approval]:
        with self._lock:
            found = [a for a in self._approvals.values() if a.agency_id == agency_id]
        return sorted(found, key=lambda a: a.requested_at, reverse=True)

    def approver_role(self, approval: Approval) -> str:
        if approval.kind == "data_age":
            tiers = self._policy.rules_for(approval.agency_id).data_age_tiers
            return tiers[0].approver_role if tiers else "supervisor"
        return "supervisor"

    def decide(
        self,
        approval_id: str,
        *,
        agency_id: str,
        decider: str,
        roles: frozenset[str],
        approve: bool,
        now: datetime,
    ) -> Approval:
        """Grant or deny; the decider must hold the approver role, belong to the approval's agency
        and not be its requester."""
        with self._lock:
            approval = self.get(approval_id, agency_id)
            if approval is None:
                raise PolicyRefusal(
                    "approval.not_found", f"no approval {approval_id} in agency {agency_id}", 404
                )
            role = self.approver_role(approval)
            if role not in roles:
                raise PolicyRefusal("approval.approver_role", f"only a {role} may decide this approval")
            if decider == approval.requested_by:
                raise PolicyRefusal(
                    "approval.second_person",
                    "an approval must be decided by someone other than its requester",
                )
            if approval.status != "pending":
                raise PolicyRefusal("approval.already_decided", f"approval is already {approval.status}", 409)
            valid_for = self._valid_for(approval)
            decided = replace(
                approval,
                status="approved" if approve else "denied",
                decided_by=decider,
                decided_at=now,
                expires_at=now + valid_for if approve else None,
            )
            self._approvals[approval_id] = decided
            return decided

    def _valid_for(self, approval: Approval) -> timedelta:
        tiers = self._policy.rules_for(approval.agency_id).data_age_tiers
        return tiers[0].approval_valid_for if tiers else DEFAULT_APPROVAL_VALID_FOR

    def require(
        self,
        approval_id: str | None,
        *,
        agency_id: str,
        subject: str,
        kind: ApprovalKind,
        scope: str,
        case_number: str,
        now: datetime,
        rule: str,
        what: str,
    ) -> Approval:
        """The usable approval `approval_id`, else PolicyRefusal(`rule`) saying why not."""
        if not approval_id:
            raise PolicyRefusal(rule, f"{what} needs an approval: send its id in X-Approval-Id")
        approval = self.get(approval_id, agency_id)
        if approval is None or approval.kind != kind or (kind == "analytics" and approval.scope != scope):
            raise PolicyRefusal(rule, f"approval {approval_id} does not cover {what}")
        if approval.requested_by != subject or approval.case_number != case_number:
            raise PolicyRefusal(rule, f"approval {approval_id} was granted to another person or case")
        if approval.status != "approved":
            raise PolicyRefusal(rule, f"approval {approval_id} is {approval.status}")
        if not approval.usable(now):
            raise PolicyRefusal(f"{rule}.expired", f"approval {approval_id} expired at {approval.expires_at}")
        return approval
