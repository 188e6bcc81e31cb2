"""Which policy file the retention job and reports use (same env names as the API's policy)."""

from __future__ import annotations

from services.governance.policy import Policy, load_policy, policy_path
from services.retention.settings import RetentionSettings


def load_configured_policy(settings: RetentionSettings) -> Policy:
    """PLATEWATCH_POLICY_FILE when set, else deploy/policies/<PLATEWATCH_POLICY_PROFILE>.yaml."""
    if settings.policy_file is not None:
        return load_policy(settings.policy_file)
    return load_policy(policy_path(settings.policy_profile))
