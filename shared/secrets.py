"""Secrets shared by the invitation service, the notifier and the CLI.

- temporary passwords: generated (rule 11), hashed slowly (argon2id), and sealed with
  AES-GCM for delivery; the sealed copy is the only way back to the plaintext;
- invitation link tokens: HMAC-signed (invitation id, link generation). The store keeps
  only their SHA-256, and the notifier re-derives the token to build the link, so no
  token is ever stored or published in clear.

Every key is derived from SECRETS_KEY with HKDF, one purpose per key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass
from uuid import UUID

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# No look-alikes: 0/O/o, 1/l/I/|, and quotes or backticks that mail clients mangle.
_UPPER = "".join(c for c in string.ascii_uppercase if c not in "OI")
_LOWER = "".join(c for c in string.ascii_lowercase if c not in "lo")
_DIGITS = "23456789"
_SYMBOLS = "!#$%&*+-=?@^_~"
_ALPHABET = _UPPER + _LOWER + _DIGITS + _SYMBOLS
TEMP_PASSWORD_LENGTH = 20
_TOKEN_MAC_BYTES = 16


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


# Random bytes below this bound map uniformly onto the alphabet (rejection sampling).
_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)


def generate_temp_password(length: int = TEMP_PASSWORD_LENGTH) -> str:
    """Rule 11: CSPRNG, >= 16 characters, every class present, no look-alikes."""
    if length < 16:
        raise ValueError("temporary passwords have at least 16 characters")
    while True:
        # One read of the CSPRNG per attempt instead of one `secrets.choice` per
        # character: a mass invite makes 10,000 of these on the hashing threads, where
        # pure-Python time holds the GIL against the thread deciding the batch.
        candidate = ""
        while len(candidate) < length:
            candidate += "".join(
                _ALPHABET[b % len(_ALPHABET)]
                for b in secrets.token_bytes(2 * length)
                if b < _UNBIASED_BELOW
            )
        candidate = candidate[:length]
        if all(any(c in cls for c in candidate) for cls in (_UPPER, _LOWER, _DIGITS, _SYMBOLS)):
            return candidate


@dataclass(frozen=True)
class HashCost:
    """argon2id parameters. See the README: the password has ~118 bits of entropy."""

    time_cost: int = 1
    memory_kib: int = 2048
    parallelism: int = 1


class TempPasswordHasher:
    def __init__(self, cost: HashCost | None = None) -> None:
        cost = cost or HashCost()
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerificationError:
            return False


class Sealer:
    """AES-256-GCM sealing of a temporary password, bound to its id as associated data."""

    def __init__(self, secrets_key: bytes) -> None:
        self._aead = AESGCM(_derive(secrets_key, b"invitations/temp-password-seal/v1"))

    def seal(self, temp_password_id: UUID, password: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, password.encode(), temp_password_id.bytes)

    def unseal(self, temp_password_id: UUID, sealed: bytes) -> str:
        nonce, ciphertext = sealed[:12], sealed[12:]
        return self._aead.decrypt(nonce, ciphertext, temp_password_id.bytes).decode()


@dataclass(frozen=True)
class TokenClaim:
    invitation_id: UUID
    link_generation: int


class TokenSigner:
    """Link tokens: base64url(invitation id | generation | HMAC), ~48 characters."""

    def __init__(self, secrets_key: bytes) -> None:
        self._key = _derive(secrets_key, b"invitations/link-token/v1")

    def token(self, invitation_id: UUID, link_generation: int) -> str:
        payload = invitation_id.bytes + link_generation.to_bytes(4, "big")
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def verify(self, token: str) -> TokenClaim | None:
        """The claim of a token this key signed, or None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 20 + _TOKEN_MAC_BYTES:
            return None
        payload, mac = raw[:20], raw[20:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        return TokenClaim(UUID(bytes=payload[:16]), int.from_bytes(payload[16:], "big"))


class PageTokens:
    """Opaque page tokens for the queries: base64url(cursor JSON | HMAC), signed with a
    key of their own and bound to a scope (the query, its tenant and its filters), so a
    token is refused anywhere but the next page of the listing it came from."""

    def __init__(self, secrets_key: bytes) -> None:
        self._key = _derive(secrets_key, b"invitations/page-token/v1")

    def _mac(self, scope: str, payload: bytes) -> bytes:
        message = hashlib.sha256(scope.encode()).digest() + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]

    def issue(self, scope: str, cursor: object) -> str:
        payload = json.dumps(cursor, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload + self._mac(scope, payload)).decode().rstrip("=")

    def read(self, scope: str, token: str) -> object | None:
        """The cursor of a token issued for `scope`, or None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        payload, mac = raw[:-_TOKEN_MAC_BYTES], raw[-_TOKEN_MAC_BYTES:]
        if len(raw) <= _TOKEN_MAC_BYTES or not hmac.compare_digest(mac, self._mac(scope, payload)):
            return None
        cursor: object = json.loads(payload)
        return cursor


def token_hash(token: str) -> str:
    """What the store keeps of a token. The token carries 128 bits of MAC, so SHA-256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()
