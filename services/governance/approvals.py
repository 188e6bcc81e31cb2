"""Approvals: a supervisor's (second person's) consent for one case, valid for a limited time.

Two kinds:
- `data_age`: search reads older than the policy's data-age tier (`Policy.data_age_tier`).
- `analytics`: run an analytics kind the policy marks as needing a second approver (convoy,
  multi_site).

An approval is requested by the person who will use it, for one case number and purpose, and
granted by someone else of the same agency with the approver role. It can only be used by its
requester, for that case, until it expires. Every step is on the audit log.

State: in memory, plus, when a journal is attached (the API does so at start), every change is
written to the compacted GOVERNANCE_STATE topic under `approval/<approval_id>` and every API
replica applies every record (`apply_record`), so an approval requested or decided on one replica
is usable on all of them and survives restarts (services/governance/state_journal.py). Expired
approvals stay visible (and refused as expired) until `sweep` tombstones them after a retention
period.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from services.governance.policy import Policy, PolicyRefusal
from services.governance.state_journal import StateJournal

ApprovalKind = Literal["data_age", "analytics"]
ApprovalStatus = Literal["pending", "approved", "denied"]
DEFAULT_APPROVAL_VALID_FOR = timedelta(hours=24)
# Journal key prefix: records are keyed `approval/<approval_id>`.
JOURNAL_KIND = "approval"
RECORD_VERSION = 1


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

    def settled_at(self) -> datetime:
        """When the approval stopped mattering: its expiry, decision (denied) or request (pending)."""
        return self.expires_at or self.decided_at or self.requested_at


def encode_approval(approval: Approval) -> bytes:
    """The journal value of `approval` (JSON, UTF-8)."""
    record: dict[str, Any] = {"v": RECORD_VERSION}
    for name, value in vars(approval).items():
        record[name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def decode_approval(value: bytes) -> Approval:
    """Inverse of `encode_approval`; ValueError for a record that is not a valid approval."""
    try:
        record = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"approval record is not JSON: {exc}") from exc
    if not isinstance(record, dict) or record.pop("v", None) != RECORD_VERSION:
        raise ValueError("approval record: unknown version")
    known_kind = record.get("kind") in get_args(ApprovalKind)
    if not known_kind or record.get("status") not in get_args(ApprovalStatus):
        raise ValueError("approval record: unknown kind or status")
    for name in ("requested_at", "decided_at", "expires_at"):
        raw = record.get(name)
        record[name] = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    if record["requested_at"] is None:
        raise ValueError("approval record: no requested_at")
    try:
        return Approval(**record)
    except TypeError as exc:
        raise ValueError(f"approval record: {exc}") from exc


class ApprovalStore:
    """Approvals of every agency. `journal`: where changes go (None: this process only)."""

    def __init__(self, policy: Policy, journal: StateJournal | None = None) -> None:
        self._policy = policy
        self._approvals: dict[str, Approval] = {}
        self._lock = threading.Lock()
        self._journal = journal

    def attach_journal(self, journal: StateJournal | None) -> None:
        """Write every later change to `journal` (the API attaches the shared one at start)."""
        self._journal = journal

    def _record(self, approval: Approval) -> None:
        """Store locally and hand to the journal (called with the lock held, so the journal gets a
        key's changes in the order they were made)."""
        self._approvals[approval.approval_id] = approval
        if self._journal is not None:
            self._journal.append(f"{JOURNAL_KIND}/{approval.approval_id}", encode_approval(approval))

    def apply_record(self, approval_id: str, value: bytes | None) -> None:
        """Apply a journal record (every replica's, this one's included). A tombstone removes the
        approval; a decided approval is never taken back to pending (this replica's own request
        record can arrive after its decision); among decisions the later record wins, so every
        replica ends with the same state. ValueError for an invalid record."""
        if value is None:
            with self._lock:
                self._approvals.pop(approval_id, None)
            return
        incoming = decode_approval(value)
        if incoming.approval_id != approval_id:
            raise ValueError(f"approval record key {approval_id} holds {incoming.approval_id}")
        with self._lock:
            current = self._approvals.get(approval_id)
            if current is not None and current.status != "pending" and incoming.status == "pending":
                return
            self._approvals[approval_id] = incoming

    def sweep(self, now: datetime, keep_for: timedelta) -> list[str]:
        """Forget (and tombstone in the journal) approvals settled more than `keep_for` ago:
        expired, denied or never-decided ones. Returns their ids."""
        cutoff = now - keep_for
        with self._lock:
            old = [a.approval_id for a in self._approvals.values() if a.settled_at() < cutoff]
            for approval_id in old:
                del self._approvals[approval_id]
                if self._journal is not None:
                    self._journal.append(f"{JOURNAL_KIND}/{approval_id}", None)
        return old

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
            self._record(approval)
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
            self._record(decided)
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
