"""Identity: who is calling. Pure building blocks the API's security layer composes.

- People present OIDC bearer tokens (JWT, RS256). `TokenVerifier` checks signature, issuer,
  audience and expiry against keys from a JWKS URL (`JwksCache`: cached, refreshed on an unknown
  key id at most once per `min_refresh_seconds`) and/or a static key set (the development issuer).
- Machines present API keys `pwk_<key id>_<secret>`; only a salted SHA-256 of the secret is stored
  (`deploy/identity/api-keys.yaml`). Keys are random 256-bit secrets, so a fast salted hash is
  enough; passwords, which people choose, use scrypt.
- `DevIssuer`: a small built-in issuer for the embedded default (`make run` without an external
  identity provider): an RSA key generated under var/ at first start, its JWKS, and tokens for the
  users in `deploy/identity/dev-users.yaml` (scrypt password hashes, a TOTP secret or the configured
  fixed development one-time code, which yields the `amr` second-factor claim).
- `LoginGuard`: failed-login lockout; `IdleSessions`: idle session expiry.

Nothing here knows FastAPI; services/api/security.py turns these into dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from services.governance.state_journal import StateJournal

log = logging.getLogger(__name__)

ROLES = frozenset({"officer", "analyst", "supervisor", "auditor", "admin", "oversight"})
PrincipalKind = Literal["human", "machine"]
API_KEY_PREFIX = "pwk_"
DEV_ISSUER = "platewatch-dev"

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class IdentityError(Exception):
    """Authentication failed; the message is safe to show to the caller."""


class IdentityConfigError(ValueError):
    """An identity file (dev users, API keys) is invalid."""


# Secrets -----------------------------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt_b64),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def hash_api_secret(secret: str, *, salt: bytes | None = None) -> str:
    """`sha256$<salt hex>$<hex of sha256(salt + secret)>`."""
    salt = salt or secrets.token_bytes(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + secret.encode()).hexdigest()}"


def verify_api_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        if scheme != "sha256":
            return False
        digest = hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode()).hexdigest()
    except ValueError:
        return False
    return hmac.compare_digest(digest, digest_hex)


def new_api_key(key_id: str) -> tuple[str, str]:
    """A fresh API key for `key_id`: (the key to hand to the client once, the hash to store)."""
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_PREFIX}{key_id}_{secret}", hash_api_secret(secret)


def totp(secret_b32: str, at: float, *, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 time-based one-time password (HMAC-SHA1), as authenticator apps compute it."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at // step)), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return str(code).zfill(digits)


def verify_totp(secret_b32: str, code: str, at: float, *, window: int = 1) -> bool:
    """True when `code` is the TOTP of the step at `at` or within `window` steps of it."""
    return any(
        hmac.compare_digest(totp(secret_b32, at + drift * 30), code) for drift in range(-window, window + 1)
    )


# Identity files ----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DevUser(_Strict):
    username: str = Field(min_length=1)
    password_hash: str
    agency_id: str = Field(min_length=1)
    roles: list[str] = Field(min_length=1)
    # Base32 TOTP secret; without one the settings' fixed development code is the second factor.
    totp_secret: str | None = None


class ApiKeyRecord(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9-]+$")
    key_hash: str
    agency_id: str = Field(min_length=1)
    roles: list[str] = Field(min_length=1)
    description: str = ""


def _check_roles(owner: str, roles: Iterable[str]) -> None:
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise IdentityConfigError(f"{owner}: unknown role(s) {unknown}; known: {sorted(ROLES)}")


def _load_yaml_list(path: Path, key: str) -> list[Any]:
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IdentityConfigError(f"cannot read {path}: {exc}") from exc
    items = raw.get(key, []) if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise IdentityConfigError(f"{path}: expected a mapping with a list under '{key}'")
    return items


def load_dev_users(path: Path) -> dict[str, DevUser]:
    """Users of the development issuer by username; an absent file is no users."""
    users: dict[str, DevUser] = {}
    for index, item in enumerate(_load_yaml_list(path, "users")):
        try:
            user = DevUser.model_validate(item)
        except ValidationError as exc:
            raise IdentityConfigError(f"{path}: users[{index}]: {exc}") from exc
        _check_roles(f"{path}: user {user.username}", user.roles)
        users[user.username] = user
    return users


def load_api_keys(path: Path) -> dict[str, ApiKeyRecord]:
    """API key records by key id; an absent file is no keys."""
    keys: dict[str, ApiKeyRecord] = {}
    for index, item in enumerate(_load_yaml_list(path, "api_keys")):
        try:
            record = ApiKeyRecord.model_validate(item)
        except ValidationError as exc:
            raise IdentityConfigError(f"{path}: api_keys[{index}]: {exc}") from exc
        _check_roles(f"{path}: api key {record.id}", record.roles)
        keys[record.id] = record
    return keys


def check_api_key(presented: str, keys: Mapping[str, ApiKeyRecord]) -> ApiKeyRecord:
    """The record of a presented `pwk_<id>_<secret>` key; IdentityError when it is not valid."""
    if not presented.startswith(API_KEY_PREFIX):
        raise IdentityError("malformed API key")
    key_id, sep, secret = presented[len(API_KEY_PREFIX) :].partition("_")
    record = keys.get(key_id)
    if not sep or record is None or not verify_api_secret(secret, record.key_hash):
        raise IdentityError("invalid API key")
    return record


# Tokens ------------------------------------------------------------------------------------------


def _public_jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


class DevIssuer:
    """The built-in development issuer. The RSA key is created (mode 0600) at `key_path` on first
    use and reused afterwards, so tokens survive restarts."""

    def __init__(self, key_path: Path, *, issuer: str = DEV_ISSUER, audience: str = "platewatch") -> None:
        self.issuer = issuer
        self.audience = audience
        self._key = self._load_or_create(key_path)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(public_der).hexdigest()[:16]

    @staticmethod
    def _load_or_create(path: Path) -> rsa.RSAPrivateKey:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise IdentityConfigError(f"{path} does not hold an RSA private key")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Another process may create it at the same moment: write aside, then link atomically.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            tmp.unlink()
            return DevIssuer._load_or_create(path)
        tmp.unlink()
        log.info("development issuer key created", extra={"path": str(path)})
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(self._key.public_key(), self.kid)]}

    def mint(
        self,
        subject: str,
        agency_id: str,
        roles: Iterable[str],
        *,
        amr: Iterable[str] = ("pwd", "otp"),
        ttl_seconds: int = 900,
        now: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "agency_id": agency_id,
            "roles": sorted(roles),
            "amr": list(amr),
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": secrets.token_hex(12),
        }
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


class JwksCache:
    """Signing keys from a JWKS URL, cached for `cache_seconds`; an unknown key id triggers a
    refresh (key rotation), at most once per `min_refresh_seconds`."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self.fetches = 0

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.get(self.url)
            response.raise_for_status()
            document = response.json()
        self._keys = keys_from_jwks(document)
        self._fetched_at = self._clock()
        self.fetches += 1

    async def key(self, kid: str | None) -> Any:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_seconds
        may_refresh = self._fetched_at is None or now - self._fetched_at > self._min_refresh
        if stale or (kid not in self._keys and may_refresh):
            try:
                await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                if not self._keys:
                    raise IdentityError(f"cannot fetch signing keys from {self.url}: {exc}") from exc
                log.warning("JWKS refresh failed; using cached keys", extra={"url": self.url})
        return _select_key(self._keys, kid)


def keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Any]:
    """RSA public keys of a JWKS document by kid ("" for a key without one)."""
    keys: dict[str, Any] = {}
    for jwk in document.get("keys", []):
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        keys[jwk.get("kid", "")] = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
    return keys


def _select_key(keys: Mapping[str, Any], kid: str | None) -> Any:
    if kid is not None and kid in keys:
        return keys[kid]
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    raise IdentityError("token signed with an unknown key")


@dataclass
class TrustedIssuer:
    """One issuer whose tokens are accepted: static keys (the dev issuer) or a JWKS cache."""

    issuer: str
    audience: str
    static_keys: dict[str, Any] = field(default_factory=dict)
    jwks: JwksCache | None = None

    async def key(self, kid: str | None) -> Any:
        if self.jwks is not None:
            return await self.jwks.key(kid)
        return _select_key(self.static_keys, kid)


class TokenVerifier:
    """Verifies RS256 bearer tokens from the trusted issuers (chosen by the token's `iss`)."""

    def __init__(self, issuers: Iterable[TrustedIssuer], *, leeway_seconds: int = 30) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._leeway = leeway_seconds

    @property
    def enabled(self) -> bool:
        return bool(self._issuers)

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; IdentityError when the signature, issuer, audience or times are bad."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise IdentityError(f"malformed token: {exc}") from exc
        if header.get("alg") != "RS256":
            raise IdentityError("only RS256 tokens are accepted")
        trusted = self._issuers.get(str(unverified.get("iss", "")))
        if trusted is None:
            raise IdentityError("token from an untrusted issuer")
        key = await trusted.key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=trusted.audience,
                issuer=trusted.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise IdentityError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise IdentityError(f"invalid token: {exc}") from exc
        return claims


# Login protection and sessions -------------------------------------------------------------------


LOGIN_JOURNAL_KIND = "login"
LOGIN_RECORD_VERSION = 1


def login_key(username: str) -> str:
    """The state key of a username: its SHA-256, so what people typed into the username field
    (sometimes a password) is not written to Kafka in clear."""
    return hashlib.sha256(username.encode()).hexdigest()


@dataclass
class LoginFailures:
    """One username's failed logins: `failures` maps a failure id to its time (epoch seconds);
    `cleared_at`: the last successful login, which voids every failure up to it."""

    failures: dict[str, float] = field(default_factory=dict)
    cleared_at: float | None = None

    def merge(self, other: LoginFailures) -> None:
        """Join `other` in (a union: order-independent and idempotent, so replicas converge
        whatever order they apply each other's records in)."""
        if other.cleared_at is not None:
            self.cleared_at = max(self.cleared_at or other.cleared_at, other.cleared_at)
        self.failures.update(other.failures)
        self.prune(None)

    def prune(self, cutoff: float | None) -> None:
        """Drop failures at or before `cutoff` or voided by a success."""
        floors = [f for f in (cutoff, self.cleared_at) if f is not None]
        if floors:
            floor = max(floors)
            self.failures = {fid: at for fid, at in self.failures.items() if at > floor}

    def encode(self) -> bytes:
        record = {
            "v": LOGIN_RECORD_VERSION,
            "failures": [[fid, at] for fid, at in sorted(self.failures.items(), key=lambda f: f[1])],
            "cleared_at": self.cleared_at,
        }
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes) -> LoginFailures:
        """Inverse of `encode`; ValueError for anything else."""
        try:
            record = json.loads(value)
            if not isinstance(record, dict) or record.get("v") != LOGIN_RECORD_VERSION:
                raise ValueError("login record: unknown version")
            failures = {str(fid): float(at) for fid, at in record["failures"]}
            cleared = record["cleared_at"]
            return cls(failures=failures, cleared_at=None if cleared is None else float(cleared))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid login record: {exc}") from exc


class LoginGuard:
    """Locks a username for `lockout_seconds` after `max_failures` failed logins within that time.

    `clock`: epoch seconds (failure times are shared between replicas, so wall-clock time).
    With a journal attached (the API does so at start) every change is written under
    `login/<login_key(username)>` and `apply_record` merges every replica's records, so failures
    spread over several API replicas add up and a lockout survives restarts."""

    def __init__(
        self,
        max_failures: int,
        lockout_seconds: float,
        clock: Callable[[], float] = time.time,
        journal: StateJournal | None = None,
    ) -> None:
        self._max = max_failures
        self._lockout = lockout_seconds
        self._clock = clock
        self._state: dict[str, LoginFailures] = {}
        self._lock = threading.Lock()
        self._journal = journal

    def attach_journal(self, journal: StateJournal | None) -> None:
        self._journal = journal

    def locked(self, username: str) -> bool:
        with self._lock:
            return self._max > 0 and self._recent(login_key(username)) >= self._max

    def recent_failures(self, username: str) -> int:
        """Failed logins of `username` inside the lockout window (every replica's, once applied)."""
        with self._lock:
            return self._recent(login_key(username))

    def failed(self, username: str) -> None:
        key = login_key(username)
        with self._lock:
            self._recent(key)
            state = self._state.setdefault(key, LoginFailures())
            state.failures[secrets.token_hex(8)] = self._clock()
            self._write(key, state)

    def succeeded(self, username: str) -> None:
        key = login_key(username)
        with self._lock:
            if key not in self._state:
                return
            if self._journal is None:
                del self._state[key]
                return
            # Kept (until `sweep`) so that the success also voids failures of this username that
            # other replicas recorded before it but that reach this one later.
            state = self._state[key] = LoginFailures(cleared_at=self._clock())
            self._write(key, state)

    def apply_record(self, key: str, value: bytes | None) -> None:
        """Merge a journal record (any replica's); a tombstone forgets the username's state."""
        if value is None:
            with self._lock:
                self._state.pop(key, None)
            return
        incoming = LoginFailures.decode(value)
        with self._lock:
            self._state.setdefault(key, LoginFailures()).merge(incoming)
            self._recent(key)

    def sweep(self) -> list[str]:
        """Forget (and tombstone) usernames with no failure inside the lockout window whose last
        success is older than the window too. Returns their keys."""
        cutoff = self._clock() - self._lockout
        with self._lock:
            stale = [
                key
                for key, state in self._state.items()
                if (state.cleared_at is None or state.cleared_at <= cutoff)
                and all(at <= cutoff for at in state.failures.values())
            ]
            for key in stale:
                del self._state[key]
                if self._journal is not None:
                    self._journal.append(f"{LOGIN_JOURNAL_KIND}/{key}", None)
        return stale

    def _write(self, key: str, state: LoginFailures) -> None:
        if self._journal is not None:
            self._journal.append(f"{LOGIN_JOURNAL_KIND}/{key}", state.encode())

    def _recent(self, key: str) -> int:
        """Failures of `key` inside the window (pruning older ones); lock held."""
        state = self._state.get(key)
        if state is None:
            return 0
        state.prune(self._clock() - self._lockout)
        return len(state.failures)


SESSION_JOURNAL_KIND = "session"
SESSION_RECORD_VERSION = 1
# A replica shares a session's last use at most this often (a fraction of the idle timeout), so
# another replica may see it up to that much older: sessions end after 90-100% of the timeout.
SESSION_WRITE_FRACTION = 0.1


def session_key(session_id: str) -> str:
    """The state key of a session (token id): its SHA-256."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class SessionSeen:
    """A session's last use (epoch seconds) and whether it has ended through inactivity."""

    last_seen: float
    expired: bool = False

    def merge(self, other: SessionSeen) -> None:
        """Latest use wins; an ended session stays ended (order-independent, idempotent)."""
        self.last_seen = max(self.last_seen, other.last_seen)
        self.expired = self.expired or other.expired

    def encode(self) -> bytes:
        record = {"v": SESSION_RECORD_VERSION, "last_seen": self.last_seen, "expired": self.expired}
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes) -> SessionSeen:
        """Inverse of `encode`; ValueError for anything else."""
        try:
            record = json.loads(value)
            if not isinstance(record, dict) or record.get("v") != SESSION_RECORD_VERSION:
                raise ValueError("session record: unknown version")
            return cls(last_seen=float(record["last_seen"]), expired=bool(record["expired"]))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid session record: {exc}") from exc


class IdleSessions:
    """Idle expiry: a session (token id) unused for `idle_seconds` is over even if its token has
    not expired. `clock`: epoch seconds (shared between replicas). Without a journal it is kept in
    this process's memory (a restart forgets idleness, not validity); with one (the API attaches
    it at start) each replica shares a session's last use under `session/<session_key(id)>` at
    most every `SESSION_WRITE_FRACTION` of the timeout, and its end at once, so a session busy on
    other replicas is not ended by this one and an ended session is ended on every replica."""

    def __init__(
        self,
        idle_seconds: float,
        clock: Callable[[], float] = time.time,
        journal: StateJournal | None = None,
    ) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._sessions: dict[str, SessionSeen] = {}
        # When this replica last wrote each session's last use.
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()
        self._journal = journal

    def attach_journal(self, journal: StateJournal | None) -> None:
        self._journal = journal

    def touch(self, session_id: str) -> bool:
        """Record a use; False when the session had been idle too long (it stays expired)."""
        if self._idle <= 0 or not session_id:
            return True
        key = session_key(session_id)
        now = self._clock()
        with self._lock:
            seen = self._sessions.get(key)
            if seen is not None and (seen.expired or now - seen.last_seen > self._idle):
                if not seen.expired:
                    seen.expired = True
                    self._write(key, seen)
                return False
            seen = self._sessions[key] = SessionSeen(now)
            if now - self._written.get(key, -math.inf) >= self._idle * SESSION_WRITE_FRACTION:
                self._write(key, seen)
            if len(self._sessions) > 100_000:
                self._prune(now)
            return True

    def last_seen(self, session_id: str) -> float | None:
        """The session's last use as this replica knows it (every replica's, once applied)."""
        with self._lock:
            seen = self._sessions.get(session_key(session_id))
            return seen.last_seen if seen is not None else None

    def apply_record(self, key: str, value: bytes | None) -> None:
        """Merge a journal record (any replica's); a tombstone forgets the session."""
        if value is None:
            with self._lock:
                self._sessions.pop(key, None)
                self._written.pop(key, None)
            return
        incoming = SessionSeen.decode(value)
        with self._lock:
            seen = self._sessions.get(key)
            if seen is None:
                self._sessions[key] = incoming
            else:
                seen.merge(incoming)

    def sweep(self) -> list[str]:
        """Forget (and tombstone) sessions unused for long past any token lifetime."""
        with self._lock:
            return self._prune(self._clock())

    def _write(self, key: str, seen: SessionSeen) -> None:
        if self._journal is not None:
            self._written[key] = self._clock()
            self._journal.append(f"{SESSION_JOURNAL_KIND}/{key}", seen.encode())

    def _prune(self, now: float) -> list[str]:
        horizon = max(self._idle * 4, 86400.0)
        stale = [key for key, seen in self._sessions.items() if now - seen.last_seen > horizon]
        for key in stale:
            del self._sessions[key]
            self._written.pop(key, None)
            if self._journal is not None:
                self._journal.append(f"{SESSION_JOURNAL_KIND}/{key}", None)
        return stale


def main(argv: list[str] | None = None) -> None:
    """`python -m services.governance.identity hash-password|new-api-key|totp-secret ...`"""
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m services.governance.identity")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash-password", help="read a password, print its scrypt hash for dev-users.yaml")
    key_parser = sub.add_parser("new-api-key", help="print a new API key and the hash to store")
    key_parser.add_argument("key_id")
    sub.add_parser("totp-secret", help="print a new base32 TOTP secret")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        print(hash_password(getpass.getpass("password: ")))
    elif args.command == "new-api-key":
        key, stored = new_api_key(args.key_id)
        print(f"key (give to the client once): {key}\nkey_hash (store): {stored}")
    else:
        print(base64.b32encode(secrets.token_bytes(20)).decode().rstrip("="))


if __name__ == "__main__":
    main()
