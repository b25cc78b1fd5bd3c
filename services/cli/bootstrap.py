"""The one place that reads the environment and builds what the commands use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from services.invitation.adapters.chain import AuditTables
from services.invitation.adapters.store import store_env
from services.invitation.application import InvitationService, InvitationStore
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
    """The store (and, when a command needs it, the invitation service) for one CLI run."""

    settings: ServiceSettings
    store: InvitationStore
    _service: InvitationService | None = field(default=None, repr=False)

    @property
    def audit(self) -> AuditTables:
        return cast("AuditTables", self.store.recorder.audit)  # type: ignore[attr-defined]

    @property
    def service(self) -> InvitationService:
        """In-process, for the commands an operator runs (retrieve_temp_password)."""
        if self._service is None:
            self._service = InvitationService(
                self.store, secrets_key=self.settings.secrets_key_bytes
            )
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()  # closes the store too
        else:
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
