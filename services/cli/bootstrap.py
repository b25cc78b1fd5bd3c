"""The one place that reads the environment and builds what the commands use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from services.invitation.eventstore import (
    AuditTables,
    InvitationStore,
    SealedPasswords,
    SideTables,
    store_env,
)
from shared.settings import ServiceSettings


class ConfigurationError(Exception):
    """The environment does not name a usable store or key."""


def load_settings() -> ServiceSettings:
    try:
        return ServiceSettings()
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

    @property
    def sealed_passwords(self) -> SealedPasswords:
        return SealedPasswords(
            cast("SideTables", self.store.recorder), self.settings.secrets_key_bytes
        )

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
