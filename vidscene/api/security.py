"""Password hashing (Argon2id), access tokens (JWT HS256 with a pinned algorithm) and the format of personal
API tokens.

A token carries the user's ``token_version``; bumping that column (password change) or deleting the user
revokes every token issued before, without a deny list. A personal API token is a random secret whose
SHA-256 is stored (``db.models.ApiToken``); its claims come from the database on every use (``api.auth``).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ALGORITHM = "HS256"
TOKEN_VERSION_CLAIM = "ver"  # noqa: S105 - a claim name



def production_hasher() -> PasswordHash:
    """Argon2id with the argon2-cffi defaults (64 MiB, 3 passes, 4 lanes): RFC 9106's second recommendation."""
    return PasswordHash((Argon2Hasher(),))


_hasher = production_hasher()


def use_password_hasher(hasher: PasswordHash) -> PasswordHash:
    """Hash and verify passwords with ``hasher`` from now on; returns the hasher it replaces.

    For a deployment that must tune Argon2's cost to its machine, and for tests: the production parameters
    cost 0.1-0.5 s per hash on a 2-core machine and would dominate a test run."""
    global _hasher
    previous, _hasher = _hasher, hasher
    _dummy_hash.cache_clear()  # the timing equaliser must cost what a real verification costs
    return previous


def initial_token_version() -> int:
    """A random starting version for a new account.

    SQLite may hand a deleted user's id to the next account; tokens of the deleted user carry its version,
    which a random start makes (all but surely) different from the new account's.
    """
    return secrets.randbelow(2**30)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a failed login costs the same time either way and
    response timing does not reveal which usernames exist."""
    return _hasher.hash("vidscene-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; ``password_hash=None`` (no such user) burns the same time and fails."""
    if password_hash is None:
        _hasher.verify(password, _dummy_hash())
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a corrupt or foreign hash in the database must not become a 500 on login
        return False


class InvalidTokenError(Exception):
    """The token is malformed, forged, expired or lacks a claim; ``str()`` says which for the client."""


@dataclass(frozen=True)
class TokenClaims:
    """Who a request acts for. ``scopes`` is None for the login token (every scope, and the account itself);
    for a personal API token it is the token's scopes, and ``token_version`` the user's current one."""

    user_id: int
    token_version: int
    scopes: frozenset[str] | None = None
    api_token_id: str | None = None


API_TOKEN_PREFIX = "vst_"  # noqa: S105 - a prefix, not a credential; a JWT starts with "eyJ"
API_TOKEN_BYTES = 32


def new_api_token() -> str:
    """A personal API token: the prefix (so scanners and people can tell what leaked) and 256 random bits."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(API_TOKEN_BYTES)


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)


def hash_api_token(token: str) -> str:
    """The stored form of a personal API token: hex SHA-256.

    A plain fast hash is right here, unlike for passwords: the secret is 256 random bits, so there is no
    dictionary to try and brute force is hopeless however fast the hash is; a slow hash (Argon2) would only
    cost every API request tens of milliseconds, and a salt would stop the lookup by hash that finds the
    token in one indexed query.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True)
class TokenCodec:
    """Issues and verifies tokens.

    Verified tokens are remembered (up to ``remember_at_most``, until their ``exp``): a client sends the
    same token with every poll and every 1 MiB chunk, and PyJWT's verification was the largest single cost
    of a chunk request. Only the signature work is skipped; expiry is checked on every use, and revocation is
    a database check that does not depend on this.
    """

    secret: str
    lifetime_seconds: int
    remember_at_most: int = VERIFIED_TOKENS_KEPT
    _verified: dict[str, tuple[TokenClaims, float]] = field(default_factory=dict, init=False, repr=False,
                                                            compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def issue(self, *, user_id: int, token_version: int, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        payload = {
            "sub": str(user_id),
            "iat": issued,
            "exp": issued + self.lifetime_seconds,
            TOKEN_VERSION_CLAIM: token_version,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        """Verify signature, algorithm (HS256 only: ``none`` and RS/HS confusion are refused) and expiry."""
        with self._lock:
            known = self._verified.get(token)
        if known is not None:
            claims, expires = known
            if time.time() < expires:
                return claims
            with self._lock:
                self._verified.pop(token, None)
        claims, expires = self._verify(token)
        with self._lock:
            if len(self._verified) >= self.remember_at_most:
                self._verified.pop(next(iter(self._verified)))  # the oldest entry
            self._verified[token] = (claims, expires)
        return claims

    def remembered(self) -> frozenset[str]:
        """The tokens verified and remembered now (expired ones go when next presented)."""
        with self._lock:
            return frozenset(self._verified)

    def _verify(self, token: str) -> tuple[TokenClaims, float]:
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "iat", "exp", TOKEN_VERSION_CLAIM]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("The token has expired; log in again.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("The token is invalid.") from exc
        try:
            user_id = int(payload["sub"])
            version = payload[TOKEN_VERSION_CLAIM]
            if not isinstance(version, int) or isinstance(version, bool):
                raise TypeError("token version must be an integer")
            # Ids and versions the database can hold (a 64-bit id, a 31-bit version, see update_password);
            # anything else, even signed with the real secret, must not reach a query and overflow there.
            if not (0 <= user_id < 2**63 and 0 <= version < 2**31):
                raise ValueError("claim out of range")
        except (TypeError, ValueError) as exc:
            raise InvalidTokenError("The token is invalid.") from exc
        return TokenClaims(user_id=user_id, token_version=version), float(payload["exp"])
