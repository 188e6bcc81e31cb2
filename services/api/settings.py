"""Configuration of the API process (environment variables `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import REPO_ROOT, CommonSettings


class ApiSettings(CommonSettings):
    """Where the API listens, which gRPC services it fronts, how much alert history it keeps, who may
    call it (identity) and under which policy (governance)."""

    api_host: str = "0.0.0.0"
    api_port: int = 8080
    search_grpc_target: str = "localhost:50051"
    hotlist_grpc_target: str = "localhost:50052"
    # Alerts kept in memory for GET /alerts and preloaded from Kafka at start.
    alert_buffer_size: int = 500
    # Events one SSE subscriber may have queued before its oldest are dropped.
    sse_queue_size: int = 100
    # Seconds between SSE heartbeat comments (keeps proxies from closing idle streams).
    sse_heartbeat_seconds: float = 15.0
    # Deadline for each gRPC call the API makes.
    grpc_timeout_seconds: float = 10.0
    # Seconds an alert workflow step may take to be acknowledged by Kafka before the API answers 503.
    publish_timeout_seconds: float = 10.0
    # Seconds uvicorn waits for open requests (SSE streams end at once) when stopping.
    api_shutdown_grace_seconds: float = 5.0

    # Identity ----------------------------------------------------------------------------------
    # External OIDC provider: tokens (RS256) verified with keys from this JWKS URL; "" = none.
    oidc_jwks_url: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = "platewatch"
    # Claims of the provider's tokens that carry the agency and the roles (a list or a
    # space-separated string).
    oidc_agency_claim: str = "agency_id"
    oidc_roles_claim: str = "roles"
    # Seconds JWKS keys are cached before they are fetched again.
    oidc_jwks_cache_seconds: float = 300.0
    # The built-in development issuer (`POST /auth/dev/token`, `/auth/dev/jwks.json`): the embedded
    # default so `make run` needs no identity provider. Set false in production.
    dev_issuer: bool = True
    dev_issuer_key_file: Path | None = None  # None = $VAR_DIR/identity/dev-issuer-key.pem
    dev_users_file: Path = REPO_ROOT / "deploy" / "identity" / "dev-users.yaml"
    # One-time code accepted as second factor for dev users without a TOTP secret; "" = TOTP only.
    dev_fixed_otp: str = "123456"
    # Lifetime of tokens the dev issuer mints.
    access_token_ttl_seconds: int = 900
    # Machine clients: API keys (salted hashes) with agency and roles.
    api_keys_file: Path = REPO_ROOT / "deploy" / "identity" / "api-keys.yaml"
    # People must present one of these in the token's `amr` claim (second factor).
    second_factor_amr: list[str] = ["otp", "mfa", "hwk", "totp", "swk", "sms"]
    # Failed logins (dev issuer) before a username is locked, and for how long.
    login_max_failures: int = 5
    login_lockout_seconds: float = 900.0
    # A session (token id) unused this long is over even before its token expires; 0 = off.
    idle_session_timeout_seconds: float = 900.0

    # Governance --------------------------------------------------------------------------------
    # Policy profile in deploy/policies/ (default, virginia-strict, new-hampshire-minimal), or a
    # file given by policy_file.
    policy_profile: str = "default"
    policy_file: Path | None = None
    # Audit events go to the AUDIT topic; false only for tests/tools that supply their own sink.
    audit_enabled: bool = True
    # Approvals and failed-login lockouts live in the compacted GOVERNANCE_STATE topic, shared by
    # every API replica and replayed at start (authenticated routes answer 503 until caught up).
    # False keeps them in this process's memory (one replica, forgotten on restart).
    governance_state_journal: bool = True
    # How long one attempt waits for the state topic to appear before it is retried.
    governance_state_start_timeout_seconds: float = 60.0
    # A request that changed approvals or lockouts fails (503) unless Kafka took the change in time.
    governance_state_write_timeout_seconds: float = 10.0
    # How often expired state is swept out (tombstoned), and how long settled approvals (expired,
    # denied or never decided) stay listed, and refused as expired, before that.
    governance_state_sweep_seconds: float = 60.0
    approval_retention_hours: float = 168.0

    def dev_issuer_key_path(self) -> Path:
        return self.dev_issuer_key_file or self.var_dir / "identity" / "dev-issuer-key.pem"

    def policy_path(self) -> Path:
        from services.governance.policy import policy_path

        return self.policy_file or policy_path(self.policy_profile)
