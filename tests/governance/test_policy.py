"""Policy files: the shipped profiles load and say what they promise; invalid files are refused at
load with the field named; decisions (purposes, sharing, data age, hotlist sources)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.governance.policy import (
    Policy,
    PolicyError,
    PolicyRefusal,
    load_policy,
    parse_duration,
    policy_path,
)
from tests.governance.helpers import default_policy_dict

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("21d", timedelta(days=21)),
        ("1y", timedelta(days=365)),
        (90, timedelta(seconds=90)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["21 days", "-1d", "d", "", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_shipped_profiles() -> None:
    default = load_policy(policy_path("default"))
    virginia = load_policy(policy_path("virginia-strict"))
    nh = load_policy(policy_path("new-hampshire-minimal"))
    assert {p.profile for p in (default, virginia, nh)} == {
        "default",
        "virginia-strict",
        "new-hampshire-minimal",
    }
    for policy in (default, virginia, nh):
        assert "civil-immigration-enforcement" in policy.rules_for("any").forbidden_purposes
        assert policy.retention.audit >= timedelta(days=365)
        with pytest.raises(PolicyRefusal) as refused:
            policy.check_hotlist_source("any", "NCIC-IVF weekly extract")
        assert refused.value.rule == "hotlist_source.forbidden.ncic-immigration-violator"
    assert virginia.retention.non_hit_reads == virginia.retention.hit_reads == timedelta(days=21)
    assert len(virginia.rules_for("any-agency").permitted_purposes) == 3
    assert set(virginia.sharing.court_order_required_for) == {"out_of_state", "federal"}
    assert nh.retention.non_hit_reads <= timedelta(minutes=5) and nh.pseudonymization.enabled
    assert default.rules_for("x").data_age_tiers[0].older_than == timedelta(days=90)
    assert default.needs_second_approver("x", "convoy") and default.needs_second_approver("x", "multi_site")
    assert not default.needs_second_approver("x", "timeline")


def _agreement(**fields: object) -> dict[str, object]:
    return {
        "id": "a1",
        "owner": "pd-1",
        "partner": "fed-1",
        "purposes": ["homicide"],
        "data_classes": ["reads"],
        "expires_at": "2027-01-01T00:00:00Z",
        **fields,
    }


def test_virginia_refuses_out_of_state_sharing_without_a_court_order(tmp_path: Path) -> None:
    raw = yaml.safe_load(policy_path("virginia-strict").read_text())
    purpose = "criminal-investigation"
    raw["sharing"]["agreements"] = [_agreement(purposes=[purpose], partner_jurisdiction="out_of_state")]
    path = tmp_path / "va.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match="a1: sharing with a out_of_state partner requires a court_order"):
        load_policy(path)
    raw["sharing"]["agreements"][0]["court_order"] = "CR-2026-0042"
    path.write_text(yaml.safe_dump(raw))
    assert load_policy(path).shared_agencies("fed-1", purpose, "reads", NOW) == ["pd-1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["retention"].update(audit="30d"), "retention.audit must be at least 365d"),
        (lambda p: p["retention"].update(images="soon"), "retention.images"),
        (lambda p: p["defaults"].update(forbidden_purposes=["nope"]), "unknown purpose code"),
        (lambda p: p.update(surprise=1), "surprise"),
        (
            lambda p: p["sharing"].update(
                agreements=[_agreement(purposes=["civil-immigration-enforcement"])]
            ),
            "forbidden",
        ),
        (lambda p: p["sharing"].update(agreements=[_agreement(data_classes=["everything"])]), "data_classes"),
        (lambda p: p["sharing"].update(agreements=[_agreement(owner="fed-1")]), "same"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(tmp_path: Path, change: object, message: str) -> None:
    raw = default_policy_dict()
    change(raw)  # type: ignore[operator]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(tmp_path / "list.yaml")


def test_sharing_is_per_purpose_class_direction_and_time() -> None:
    raw = default_policy_dict()
    raw["sharing"]["agreements"] = [_agreement(expires_at="2026-07-01T00:00:00Z")]
    policy = Policy.model_validate(raw)
    assert policy.shared_agencies("fed-1", "homicide", "reads", NOW) == ["pd-1"]
    assert policy.shared_agencies("fed-1", "homicide", "images", NOW) == []
    assert policy.shared_agencies("fed-1", "terrorism", "reads", NOW) == []
    assert policy.shared_agencies("pd-1", "homicide", "reads", NOW) == []
    assert policy.shared_agencies("fed-1", "homicide", "reads", NOW + timedelta(days=31)) == []


def test_agency_overrides_and_data_age() -> None:
    raw = default_policy_dict()
    raw["agencies"]["strict-pd"] = {
        "permitted_purposes": ["homicide"],
        "retention": {"non_hit_reads": "7d", "hit_reads": "30d", "images": "7d", "alerts": "30d"},
    }
    policy = Policy.model_validate(raw)
    policy.check_purpose("strict-pd", "homicide")
    with pytest.raises(PolicyRefusal) as refused:
        policy.check_purpose("strict-pd", "stolen-vehicle")
    assert refused.value.rule == "purpose.not_permitted"
    assert policy.retention_for("strict-pd").non_hit_reads == timedelta(days=7)
    assert policy.retention_for("other").non_hit_reads == timedelta(days=30)
    assert policy.data_age_tier("x", NOW - timedelta(days=10), NOW) is None
    assert policy.data_age_tier("x", NOW - timedelta(days=100), NOW) is not None
    assert policy.data_age_tier("x", None, NOW) is not None


def test_fingerprint_follows_the_rules_not_the_file_layout(tmp_path: Path) -> None:
    raw = default_policy_dict()
    shipped = load_policy(policy_path("default"))
    # The same rules written with other key order, flow style and no comments.
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(dict(reversed(list(raw.items()))), default_flow_style=True))
    assert load_policy(reordered).fingerprint() == shipped.fingerprint()
    raw["retention"]["non_hit_reads"] = "29d"
    assert Policy.model_validate(raw).fingerprint() != shipped.fingerprint()
    assert load_policy(policy_path("virginia-strict")).fingerprint() != shipped.fingerprint()
