"""Which policy file the storage components use (same env names as the API's policy), and the
pseudonym key store that goes with it."""

from __future__ import annotations

from services.governance.policy import Policy, load_policy, policy_path
from services.governance.pseudonymize import PeriodKeyStore
from services.retention.settings import PolicySettings


def load_configured_policy(settings: PolicySettings) -> Policy:
    """PLATEWATCH_POLICY_FILE when set, else deploy/policies/<PLATEWATCH_POLICY_PROFILE>.yaml."""
    if settings.policy_file is not None:
        return load_policy(settings.policy_file)
    return load_policy(policy_path(settings.policy_profile))


def configured_key_store(settings: PolicySettings, policy: Policy) -> PeriodKeyStore:
    """The pseudonym keys under PLATEWATCH_PSEUDONYM_KEYS_DIR (default <var_dir>/pseudonym-keys),
    with the policy's key rotation. Creating it touches nothing on disk."""
    return PeriodKeyStore(settings.keys_dir(), policy.pseudonymization.key_rotation)


def pseudonymizes(policy: Policy, agency_id: str) -> bool:
    """Whether plates of `agency_id`'s reads are stored as tokens: the agency's own `pseudonymize`
    rule, else the defaults', else the policy-wide `pseudonymization.enabled`."""
    return policy.rules_for(agency_id).pseudonymize
