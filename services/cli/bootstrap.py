"""The one place that reads the environment and builds what the commands use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError, model_validator

from services.invitation.eventstore import AuditTables, InvitationStore, store_env
from shared.settings import ServiceSettings, decode_secrets_key


class ConfigurationError(Exception):
    """The environment does not name a usable store or key."""


class CliSettings(ServiceSettings):
    """The services' settings, SECRETS_KEY optional: only `verify` (the checkpoints' key)
    needs it. Manual passwords reach the CLI sealed to a key pair of its own."""

    @model_validator(mode="after")
    def _secrets_key_required_outside_development(self) -> CliSettings:
        if self.secrets_key is not None:
            decode_secrets_key(self.secrets_key.get_secret_value())
        return self


def checkpoint_secret(settings: ServiceSettings) -> bytes:
    """SECRETS_KEY, which signs the history's checkpoints; refused when missing."""
    if settings.secrets_key is None and not settings.development_mode:
        raise ConfigurationError("SECRETS_KEY is required unless DEVELOPMENT_MODE=true")
    return settings.secrets_key_bytes


def load_settings() -> CliSettings:
    try:
        return CliSettings()
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]) for e in error.errors())
        raise ConfigurationError(problems) from None


@dataclass
class Operator:
    """The store for one CLI run (commands go to the invitation service over the broker)."""

    settings: ServiceSettings
    store: InvitationStore

    @property
    def audit(self) -> AuditTables:
        return cast("AuditTables", self.store.recorder.audit)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.store.close()


def open_operator(settings: ServiceSettings) -> Operator:
    try:
        env = store_env(settings.database_url)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    try:
        store = InvitationStore(env={**env, "POSTGRES_CONNECT_TIMEOUT": "5"})
    except (PersistenceError, OSError) as error:
        raise ConfigurationError(f"cannot open the event store: {error}") from None
    if not hasattr(store.recorder, "audit"):
        store.close()
        raise ConfigurationError("the store's recorder has no audit tables")
    return Operator(settings, store)
