"""Policy as code: `deploy/policies/<profile>.yaml`, loaded and validated once at start.

A policy decides, per agency, which purposes a search may serve, which partners may receive which
data under which agreement, how old data may be before a supervisor must approve its use, which
analytics need a second approver, which hotlist sources may be subscribed to, and how long each
class of data is kept (`Policy.retention`, read by the retention job).

`load_policy(path)` raises `PolicyError` naming the offending field when the file is invalid, so a
bad policy stops the API at start rather than being half applied. Every refusal the API derives
from a policy names its rule (`PolicyRefusal.rule`), e.g. `purpose.forbidden`, so the person
refused and the audit log both say exactly which rule applied.

The decision functions here are pure (no I/O, the clock is a parameter) so they are unit-testable;
services/api/security.py turns their refusals into HTTP errors and audit events.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from services.common.settings import REPO_ROOT

POLICIES_DIR = REPO_ROOT / "deploy" / "policies"
DEFAULT_PROFILE = "default"

# Data classes an agreement can share and retention applies to.
DataClass = Literal["reads", "images", "alerts", "hotlists", "statistics"]
Jurisdiction = Literal["in_state", "out_of_state", "federal"]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|y)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_ISO_DURATION = TypeAdapter(timedelta)
# Audit entries are kept at least a year whatever a profile says.
MIN_AUDIT_RETENTION = timedelta(days=365)


class PolicyError(ValueError):
    """The policy file is missing, unreadable or invalid; the message names the field."""


def parse_duration(value: Any) -> timedelta:
    """'21d', '5m', '12h', '30s', '2w', '1y' (365 days) or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        if value.strip().upper().startswith("P"):
            # ISO 8601 (how a dumped Policy writes durations back).
            try:
                return _ISO_DURATION.validate_python(value.strip())
            except ValidationError:
                pass
    raise ValueError(f"not a duration: {value!r} (use e.g. '30s', '5m', '12h', '21d', '2w', '1y')")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purpose(_Strict):
    """One entry of the configured purpose list; searches must name one by `code`."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    description: str = ""


class Retention(_Strict):
    """How long each data class is kept. Audit is never kept less than a year."""

    non_hit_reads: Duration
    hit_reads: Duration
    images: Duration
    alerts: Duration
    audit: Duration = MIN_AUDIT_RETENTION

    @model_validator(mode="after")
    def _audit_at_least_a_year(self) -> Retention:
        if self.audit < MIN_AUDIT_RETENTION:
            raise ValueError(f"retention.audit must be at least 365d, not {self.audit}")
        return self

    def for_class(self, data_class: str) -> timedelta:
        value: timedelta = getattr(self, data_class)
        return value


class DataAgeTier(_Strict):
    """Data older than `older_than` may only be searched with an approval by `approver_role`,
    valid for `approval_valid_for` after it is granted."""

    older_than: Duration
    approver_role: str = "supervisor"
    approval_valid_for: Duration = timedelta(hours=24)


class HotlistSourceRule(_Strict):
    """A hotlist source the agency may not subscribe to. `match` patterns are compared
    case-insensitively as substrings of a list's name, an entry's source and a CSV file name."""

    id: str
    match: list[str] = Field(min_length=1)
    reason: str = ""


class AgencyRules(_Strict):
    """Rules for one agency. Unset fields take the policy-wide defaults (`Policy.defaults`)."""

    # None = every configured purpose that is not forbidden.
    permitted_purposes: list[str] | None = None
    forbidden_purposes: list[str] | None = None
    data_age_tiers: list[DataAgeTier] | None = None
    # Analytics kinds (e.g. convoy, multi_site) that need a second approver.
    second_approver_analytics: list[str] | None = None
    forbidden_hotlist_sources: list[HotlistSourceRule] | None = None
    retention: Retention | None = None
    jurisdiction: Jurisdiction = "in_state"
    # Store this agency's plates only as tokens; None = the policy-wide `pseudonymization.enabled`.
    pseudonymize: bool | None = None


class SharingAgreement(_Strict):
    """`owner` lets `partner` search the owner's data of `data_classes` for `purposes` until
    `expires_at`. Denied by default: nothing crosses agencies without one of these."""

    id: str
    owner: str
    partner: str
    purposes: list[str] = Field(min_length=1)
    data_classes: list[DataClass] = Field(min_length=1)
    expires_at: datetime
    partner_jurisdiction: Jurisdiction = "in_state"
    # Reference of the court order that authorises the agreement, where a profile requires one.
    court_order: str | None = None

    def active(self, now: datetime) -> bool:
        expires = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return now < expires


class SharingRules(_Strict):
    # Jurisdictions a partner may only receive data from with a court order on the agreement.
    court_order_required_for: list[Jurisdiction] = Field(default_factory=list)
    agreements: list[SharingAgreement] = Field(default_factory=list)


class Pseudonymization(_Strict):
    """Plates of non-hit reads stored only as HMAC tokens under per-agency, per-period keys.
    `enabled` is the switch for agencies whose rules (own or `defaults`) leave `pseudonymize` unset;
    the key rotation period is policy-wide."""

    enabled: bool = False
    key_rotation: Duration = timedelta(days=30)


class PolicyRefusal(Exception):
    """A request the policy refuses. `rule` names it (stable identifier, for the HTTP body and the
    audit log); `status` is 403 (not allowed) or 422 (not well formed, e.g. an unknown code)."""

    def __init__(self, rule: str, message: str, status: int = 403) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class EffectiveRules:
    """One agency's rules with the defaults filled in."""

    agency_id: str
    permitted_purposes: frozenset[str]
    forbidden_purposes: frozenset[str]
    data_age_tiers: tuple[DataAgeTier, ...]
    second_approver_analytics: frozenset[str]
    forbidden_hotlist_sources: tuple[HotlistSourceRule, ...]
    retention: Retention
    jurisdiction: Jurisdiction
    pseudonymize: bool


class Policy(_Strict):
    """A validated policy profile."""

    profile: str
    description: str = ""
    purposes: list[Purpose] = Field(min_length=1)
    defaults: AgencyRules
    agencies: dict[str, AgencyRules] = Field(default_factory=dict)
    sharing: SharingRules = Field(default_factory=SharingRules)
    retention: Retention
    pseudonymization: Pseudonymization = Field(default_factory=Pseudonymization)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        codes = [p.code for p in self.purposes]
        if len(set(codes)) != len(codes):
            raise ValueError("purposes: duplicate code")
        known = set(codes)
        for name, rules in [("defaults", self.defaults), *self.agencies.items()]:
            for field_name in ("permitted_purposes", "forbidden_purposes"):
                listed: list[str] | None = getattr(rules, field_name)
                unknown = sorted(set(listed or []) - known)
                if unknown:
                    raise ValueError(f"{name}.{field_name}: unknown purpose code(s) {unknown}")
        ids = [a.id for a in self.sharing.agreements]
        if len(set(ids)) != len(ids):
            raise ValueError("sharing.agreements: duplicate id")
        for agreement in self.sharing.agreements:
            unknown = sorted(set(agreement.purposes) - known)
            if unknown:
                raise ValueError(f"sharing agreement {agreement.id}: unknown purpose code(s) {unknown}")
            if agreement.owner == agreement.partner:
                raise ValueError(f"sharing agreement {agreement.id}: owner and partner are the same")
            if (
                agreement.partner_jurisdiction in self.sharing.court_order_required_for
                and not agreement.court_order
            ):
                raise ValueError(
                    f"sharing agreement {agreement.id}: sharing with a {agreement.partner_jurisdiction} "
                    "partner requires a court_order under this profile"
                )
            owner_rules = self.rules_for(agreement.owner)
            forbidden = sorted(set(agreement.purposes) & owner_rules.forbidden_purposes)
            if forbidden:
                raise ValueError(
                    f"sharing agreement {agreement.id}: purposes {forbidden} "
                    f"are forbidden for {agreement.owner}"
                )
        return self

    # Rules ---------------------------------------------------------------------------------------

    @property
    def purpose_codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.purposes)

    def rules_for(self, agency_id: str) -> EffectiveRules:
        """The agency's rules; fields it does not set come from `defaults`."""
        own = self.agencies.get(agency_id)
        base = self.defaults

        def pick(name: str) -> Any:
            value = getattr(own, name) if own is not None else None
            return value if value is not None else getattr(base, name)

        forbidden = frozenset(pick("forbidden_purposes") or [])
        permitted_list = pick("permitted_purposes")
        permitted = frozenset(permitted_list) if permitted_list is not None else self.purpose_codes
        pseudonymize: bool | None = pick("pseudonymize")
        return EffectiveRules(
            agency_id=agency_id,
            permitted_purposes=permitted - forbidden,
            forbidden_purposes=forbidden,
            data_age_tiers=tuple(
                sorted(pick("data_age_tiers") or [], key=lambda tier: tier.older_than, reverse=True)
            ),
            second_approver_analytics=frozenset(pick("second_approver_analytics") or []),
            forbidden_hotlist_sources=tuple(pick("forbidden_hotlist_sources") or []),
            retention=pick("retention") or self.retention,
            jurisdiction=own.jurisdiction if own is not None else base.jurisdiction,
            pseudonymize=self.pseudonymization.enabled if pseudonymize is None else pseudonymize,
        )

    def pseudonymizes_any(self) -> bool:
        """Whether some agency's plates are stored as tokens (every agency not listed gets the
        defaults, so an enabled default counts)."""
        return self.rules_for("").pseudonymize or any(
            self.rules_for(agency_id).pseudonymize for agency_id in self.agencies
        )

    def retention_for(self, agency_id: str) -> Retention:
        """The agency's retention (its own section, else the policy-wide `retention`)."""
        return self.rules_for(agency_id).retention

    def check_purpose(self, agency_id: str, purpose_code: str) -> None:
        """Raise PolicyRefusal unless `agency_id` may search for `purpose_code`."""
        if purpose_code not in self.purpose_codes:
            raise PolicyRefusal(
                "purpose.unknown",
                f"purpose code {purpose_code!r} is not in the configured list of profile {self.profile!r}",
                422,
            )
        rules = self.rules_for(agency_id)
        if purpose_code in rules.forbidden_purposes:
            raise PolicyRefusal(
                f"purpose.forbidden.{purpose_code}",
                f"searching for purpose {purpose_code!r} is forbidden for agency {agency_id!r}",
            )
        if purpose_code not in rules.permitted_purposes:
            raise PolicyRefusal(
                "purpose.not_permitted",
                f"purpose {purpose_code!r} is not among the purposes permitted for agency {agency_id!r}",
            )

    def agreements_for(
        self, partner: str, purpose_code: str, data_class: str, now: datetime
    ) -> list[SharingAgreement]:
        """Active agreements letting `partner` receive `data_class` for `purpose_code`."""
        return [
            agreement
            for agreement in self.sharing.agreements
            if agreement.partner == partner
            and purpose_code in agreement.purposes
            and data_class in agreement.data_classes
            and agreement.active(now)
            and purpose_code not in self.rules_for(agreement.owner).forbidden_purposes
        ]

    def shared_agencies(self, partner: str, purpose_code: str, data_class: str, now: datetime) -> list[str]:
        """Agencies (owners) sharing `data_class` with `partner` for `purpose_code` now, sorted."""
        return sorted({a.owner for a in self.agreements_for(partner, purpose_code, data_class, now)})

    def owners_sharing(self, partner: str, data_class: str, now: datetime) -> list[str]:
        """Agencies sharing `data_class` with `partner` now for any purpose (for data that is not
        searched for a purpose: statistics, hotlists, alerts), sorted."""
        return sorted(
            {
                a.owner
                for a in self.sharing.agreements
                if a.partner == partner and data_class in a.data_classes and a.active(now)
            }
        )

    def data_age_tier(self, agency_id: str, oldest: datetime | None, now: datetime) -> DataAgeTier | None:
        """The strictest tier a search reaching back to `oldest` (None = unbounded) falls in."""
        for tier in self.rules_for(agency_id).data_age_tiers:
            if oldest is None or now - oldest > tier.older_than:
                return tier
        return None

    def check_hotlist_source(self, agency_id: str, *labels: str) -> None:
        """Raise PolicyRefusal if any label (list name, entry source, file name) matches a source
        the agency may not subscribe to."""
        for rule in self.rules_for(agency_id).forbidden_hotlist_sources:
            for label in labels:
                lowered = label.lower()
                for pattern in rule.match:
                    if pattern.lower() in lowered:
                        raise PolicyRefusal(
                            f"hotlist_source.forbidden.{rule.id}",
                            f"hotlist source {label!r} matches forbidden source {rule.id!r}"
                            + (f": {rule.reason}" if rule.reason else ""),
                        )

    def needs_second_approver(self, agency_id: str, analytics_kind: str) -> bool:
        return analytics_kind in self.rules_for(agency_id).second_approver_analytics

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the validated policy in a canonical JSON form: equal for equal rules
        whatever the file's layout, comments or key order; any change of a rule changes it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy file; PolicyError names what is wrong."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy {path}: expected a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PolicyError(f"policy {path} is invalid: {problems}") from exc


def policy_path(profile_or_path: str) -> Path:
    """A profile name (`virginia-strict`) -> deploy/policies/virginia-strict.yaml; a path as is."""
    if "/" in profile_or_path or profile_or_path.endswith((".yaml", ".yml")):
        return Path(profile_or_path)
    return POLICIES_DIR / f"{profile_or_path}.yaml"
