"""libsodium sealed boxes: how a manual temporary password leaves the service.

The caller of `retrieve_temp_password` sends the public half of an X25519 key pair; the
service answers with the password in a sealed box (`crypto_box_seal`, PyNaCl's
`SealedBox`) for that key. Only the private half opens it, so nothing on the broker, in
a log or in a stored reply can read it. Any libsodium binding opens it (JavaScript
`libsodium-wrappers`, Go `x/crypto/nacl/box.OpenAnonymous`, ...).

The CLI makes a fresh key pair for every run (`RecipientKeys`), and forgets it.
"""

from __future__ import annotations

import base64
import binascii

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

__all__ = ["RecipientKeys", "SealedBoxError", "parse_public_key", "seal_for"]


class SealedBoxError(ValueError):
    """A key that is not an X25519 public key, or a box that does not open."""


def _decode(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SealedBoxError("not base64") from None


def parse_public_key(text: str) -> PublicKey:
    """base64 (standard or URL-safe) of a 32-byte X25519 public key."""
    raw = _decode(text)
    if len(raw) != PublicKey.SIZE:
        raise SealedBoxError(f"an X25519 public key has {PublicKey.SIZE} bytes, not {len(raw)}")
    return PublicKey(raw)


def seal_for(recipient: PublicKey, text: str) -> str:
    """base64 of the sealed box of `text` (UTF-8) for `recipient`."""
    try:
        sealed = SealedBox(recipient).encrypt(text.encode())
    except CryptoError:  # a low-order point: no shared secret can come of it
        raise SealedBoxError("not a usable X25519 public key") from None
    return base64.b64encode(bytes(sealed)).decode()


class RecipientKeys:
    """An ephemeral key pair: send `public_key`, open what comes back, then drop it."""

    def __init__(self) -> None:
        self._private = PrivateKey.generate()

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self._private.public_key)).decode()

    def open(self, sealed: str) -> str:
        try:
            return SealedBox(self._private).decrypt(_decode(sealed)).decode()
        except (CryptoError, UnicodeDecodeError):
            raise SealedBoxError("the sealed box does not open with this key") from None
