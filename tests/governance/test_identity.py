"""Identity: JWKS-verified RS256 tokens (issuer, audience, expiry, key rotation), hashed API keys,
the development issuer's login (password + one-time code -> amr), lockout and idle expiry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.api.security import Governance
from services.common.settings import REPO_ROOT
from services.governance.identity import (
    DevIssuer,
    IdentityError,
    IdleSessions,
    JwksCache,
    LoginGuard,
    TokenVerifier,
    TrustedIssuer,
    check_api_key,
    hash_password,
    load_api_keys,
    load_dev_users,
    new_api_key,
    totp,
    verify_password,
    verify_totp,
)
from tests.governance.conftest import PLATE, A, World, open_world
from tests.governance.helpers import TEST_KEY_FILE, auth_headers, token


def test_password_and_api_key_hashes_verify_and_are_salted() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("S3cret", stored)
    assert hash_password("s3cret") != stored
    key, key_hash = new_api_key("cam-gw")
    assert key.startswith("pwk_cam-gw_") and key.split("_", 2)[2] not in key_hash
    from services.governance.identity import ApiKeyRecord

    records = {"cam-gw": ApiKeyRecord(id="cam-gw", key_hash=key_hash, agency_id=A, roles=["admin"])}
    assert check_api_key(key, records).agency_id == A
    for wrong in (key + "x", "pwk_cam-gw_nope", "pwk_other_" + key.split("_", 2)[2], "Bearer x"):
        with pytest.raises(IdentityError):
            check_api_key(wrong, records)


def test_totp_matches_rfc_6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1, secret "12345678901234567890", T = 59 s -> 94287082 (8 digits).
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp(secret, 59, digits=8) == "94287082"
    assert verify_totp(secret, totp(secret, 1000), 1000 + 30) and not verify_totp(secret, "000000", 1000)


def test_shipped_identity_files_are_valid() -> None:
    users = load_dev_users(REPO_ROOT / "deploy" / "identity" / "dev-users.yaml")
    assert {u.roles[0] for u in users.values()} == {
        "officer",
        "analyst",
        "supervisor",
        "auditor",
        "admin",
        "oversight",
    }
    assert all(u.password_hash.startswith("scrypt$") for u in users.values())
    assert load_api_keys(REPO_ROOT / "deploy" / "identity" / "api-keys.yaml") == {}


class _Jwks:
    """A JWKS endpoint on localhost serving whatever `document` holds; counts requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    served = _Jwks()
    yield served
    served.server.shutdown()
    served.server.server_close()


def _idp(tmp_path: Path, name: str) -> DevIssuer:
    return DevIssuer(tmp_path / f"{name}.pem", issuer="https://idp.example/realms/pd", audience="platewatch")


async def test_tokens_verified_against_jwks_url_with_cache_and_rotation(tmp_path: Path, jwks: _Jwks) -> None:
    first, second = _idp(tmp_path, "k1"), _idp(tmp_path, "k2")
    jwks.document = first.jwks()
    cache = JwksCache(jwks.url, cache_seconds=300, min_refresh_seconds=0)
    verifier = TokenVerifier([TrustedIssuer(first.issuer, "platewatch", jwks=cache)])

    claims = await verifier.verify(first.mint("u1", A, ["officer"]))
    assert claims["sub"] == "u1" and claims["agency_id"] == A
    await verifier.verify(first.mint("u2", A, ["officer"]))
    assert jwks.requests == 1, "keys are cached"

    # Rotation: a token with a new key id makes the cache fetch the keys again.
    jwks.document = {"keys": first.jwks()["keys"] + second.jwks()["keys"]}
    await verifier.verify(second.mint("u3", A, ["officer"]))
    assert jwks.requests == 2

    bad = [
        first.mint("u", A, ["officer"], now=time.time() - 7200, ttl_seconds=60),  # expired
        first.mint("u", A, ["officer"], extra={"aud": "someone-else"}),
        first.mint("u", A, ["officer"], extra={"iss": "https://evil.example"}),
        _idp(tmp_path, "stranger").mint("u", A, ["officer"]),  # key not in the JWKS
        jwt.encode(
            {"sub": "u", "iss": first.issuer, "aud": "platewatch", "exp": time.time() + 60}, "k" * 32, "HS256"
        ),
        "not.a.token",
    ]
    for candidate in bad:
        with pytest.raises(IdentityError):
            await verifier.verify(candidate)


async def test_api_accepts_an_external_providers_tokens(tmp_path: Path, jwks: _Jwks) -> None:
    idp = _idp(tmp_path, "idp")
    jwks.document = idp.jwks()
    async with open_world(
        oidc_jwks_url=jwks.url, oidc_issuer=idp.issuer, oidc_roles_claim="groups", dev_issuer=True
    ) as world:
        good = idp.mint("jane", A, [], amr=["pwd", "hwk"], extra={"groups": ["analyst", "unknown-group"]})
        me = await world.client.get("/auth/me", headers={"Authorization": f"Bearer {good}"})
        assert me.status_code == 200, me.text
        assert me.json()["roles"] == ["analyst"] and me.json()["kind"] == "human"
        no_mfa = idp.mint("jane", A, [], amr=["pwd"], extra={"groups": ["analyst"]})
        refused = await world.client.get("/auth/me", headers={"Authorization": f"Bearer {no_mfa}"})
        assert refused.status_code == 401 and "second factor" in refused.json()["detail"]
        no_agency = idp.mint("jane", "", [], extra={"groups": ["analyst"]})
        assert (
            await world.client.get("/auth/me", headers={"Authorization": f"Bearer {no_agency}"})
        ).status_code == 401


async def test_api_keys_authenticate_machines(tmp_path: Path) -> None:
    key, key_hash = new_api_key("plate-feed")
    keys_file = tmp_path / "api-keys.yaml"
    keys_file.write_text(
        f"api_keys:\n  - id: plate-feed\n    key_hash: '{key_hash}'\n    agency_id: {A}\n    roles: [admin]\n"
    )
    async with open_world(api_keys_file=keys_file) as world:
        me = await world.client.get("/auth/me", headers={"X-API-Key": key})
        assert me.json() == {
            "subject": "apikey:plate-feed",
            "agency_id": A,
            "roles": ["admin"],
            "kind": "machine",
            "permissions": ["cameras.read", "hotlists.read", "hotlists.write", "stats.read"],
        }
        # A machine key with the admin role manages hotlists but cannot search.
        search = await world.client.get(
            "/api/v1/reads",
            params={"plate": PLATE},
            headers={"X-API-Key": key, "X-Purpose-Code": "stolen-vehicle", "X-Case-Number": "CASE-1"},
        )
        assert search.status_code == 403 and search.json()["rule"] == "role.reads.search"


async def test_dev_login_second_factor_lockout_and_audit() -> None:
    async with open_world(login_max_failures=3, login_lockout_seconds=600) as world:
        url = "/auth/dev/token"
        ok = await world.client.post(
            url, json={"username": "officer", "password": "platewatch-dev", "otp": "123456"}
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["amr"] == ["pwd", "otp"] and claims["agency_id"] == "demo-pd"
        me = await world.client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["subject"] == "officer" and me.json()["roles"] == ["officer"]

        jwks = await world.client.get("/auth/dev/jwks.json")
        assert jwks.json()["keys"][0]["alg"] == "RS256" and "d" not in jwks.json()["keys"][0]

        for wrong in ({"password": "platewatch-dev", "otp": "000000"}, {"password": "nope", "otp": "123456"}):
            response = await world.client.post(url, json={"username": "analyst", **wrong})
            assert response.status_code == 401
        unknown = await world.client.post(url, json={"username": "ghost", "password": "x", "otp": "123456"})
        assert unknown.status_code == 401
        await world.client.post(url, json={"username": "analyst", "password": "nope", "otp": "123456"})
        locked = await world.client.post(
            url, json={"username": "analyst", "password": "platewatch-dev", "otp": "123456"}
        )
        assert locked.status_code == 429 and "auth.locked" in locked.json()["detail"]
        logins = [(e.actor, e.outcome, e.details.get("rule", "")) for e in world.audit.of_kind("login")]
        assert logins == [
            ("officer", "allowed", ""),
            ("analyst", "refused", "auth.bad_credentials"),
            ("analyst", "refused", "auth.bad_credentials"),
            ("ghost", "refused", "auth.bad_credentials"),
            ("analyst", "refused", "auth.bad_credentials"),
            ("analyst", "refused", "auth.locked"),
        ]


async def test_dev_issuer_routes_absent_when_disabled() -> None:
    async with open_world(dev_issuer=False) as world:
        assert (await world.client.get("/auth/dev/jwks.json")).status_code == 404
        response = await world.client.post(
            "/auth/dev/token", json={"username": "officer", "password": "platewatch-dev", "otp": "123456"}
        )
        assert response.status_code == 404


def test_idle_sessions_expire_and_stay_expired() -> None:
    now = [0.0]
    sessions = IdleSessions(60, clock=lambda: now[0])
    assert sessions.touch("s1")
    now[0] = 50
    assert sessions.touch("s1")
    now[0] = 200
    assert not sessions.touch("s1")
    now[0] = 201
    assert not sessions.touch("s1"), "an idle session does not come back"
    assert sessions.touch("s2")


def test_login_guard_locks_then_releases() -> None:
    now = [0.0]
    guard = LoginGuard(2, 100, clock=lambda: now[0])
    guard.failed("u")
    assert not guard.locked("u")
    guard.failed("u")
    assert guard.locked("u")
    now[0] = 150
    assert not guard.locked("u")


async def test_idle_token_is_refused_by_the_api(world: World) -> None:
    governance: Governance = world.governance
    clock = [0.0]
    governance.idle_sessions = IdleSessions(60, clock=lambda: clock[0])
    headers = {"Authorization": f"Bearer {token(governance, 'officer', A)}"}
    assert (await world.client.get("/auth/me", headers=headers)).status_code == 200
    clock[0] = 120
    idle = await world.client.get("/auth/me", headers=headers)
    assert idle.status_code == 401 and "inactivity" in idle.json()["detail"]


def test_dev_issuer_key_is_kept_across_restarts(tmp_path: Path) -> None:
    first = DevIssuer(tmp_path / "id" / "key.pem")
    again = DevIssuer(tmp_path / "id" / "key.pem")
    assert first.kid == again.kid and (tmp_path / "id" / "key.pem").stat().st_mode & 0o077 == 0
    assert DevIssuer(TEST_KEY_FILE).kid != first.kid


def test_helpers_headers_shape(world: World) -> None:
    headers = auth_headers(world.governance, "officer", A)
    assert set(headers) == {"Authorization", "X-Purpose-Code", "X-Case-Number"}
    assert httpx.Headers(headers)["x-purpose-code"] == "stolen-vehicle"
