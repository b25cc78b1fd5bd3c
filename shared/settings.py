"""Typed settings read from the environment variables the contract names.

Each service subclasses `ServiceSettings`; `bootstrap.py` is the one place that builds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Used only when DEVELOPMENT_MODE is on and SECRETS_KEY is unset; never in production.
_DEVELOPMENT_KEY = hashlib.sha256(b"invitations development key - not secret").digest()


def decode_secrets_key(value: str) -> bytes:
    """Accepts standard or URL-safe base64 of exactly 32 bytes."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decoder(padded.encode("ascii"))
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise ValueError("SECRETS_KEY must be base64 of exactly 32 random bytes")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "postgresql://root@127.0.0.1:5432/test"
    secrets_key: SecretStr | None = None
    development_mode: bool = False
    public_base_url: str = "http://localhost:8000"
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")
    # HTTP port for /healthz, /readyz and /metrics; 0 turns it off.
    http_port: int = 0

    @model_validator(mode="after")
    def _secrets_key_required_outside_development(self) -> ServiceSettings:
        if self.secrets_key is None and not self.development_mode:
            raise ValueError("SECRETS_KEY is required unless DEVELOPMENT_MODE=true")
        if self.secrets_key is not None:
            decode_secrets_key(self.secrets_key.get_secret_value())
        return self

    @property
    def secrets_key_bytes(self) -> bytes:
        if self.secrets_key is None:
            return _DEVELOPMENT_KEY
        return decode_secrets_key(self.secrets_key.get_secret_value())
