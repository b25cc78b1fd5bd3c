"""What the contract tests drive the service with: a movable clock and an administrator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog
from shared.contract import COMMANDS, EventEnvelope, Reply, TenantCommand
from shared.contract.commands import Command
from shared.contract.results import RESULTS
from shared.secrets import TokenSigner
from tests.fakes import FakeClock


@dataclass(frozen=True)
class Store:
    """Where a test's events live: an SQLite file, or a Postgres schema of its own."""

    url: str
    backend: str
    schema: str | None = None


@dataclass
class Admin:
    """Drives the service as an administrator of one fresh tenant would, and reads back."""

    service: InvitationService
    secrets_key: bytes
    clock: FakeClock
    tenant_id: str = field(default_factory=lambda: f"acme-{uuid4().hex[:10]}")
    actor: str = "admin@acme.example"

    # -- sending ----------------------------------------------------------------------------

    def command(self, name: str, **fields: Any) -> Command:
        model = COMMANDS[name]
        fields.setdefault("command_id", uuid4())
        fields.setdefault("actor", self.actor)
        if issubclass(model, TenantCommand):
            fields.setdefault("tenant_id", self.tenant_id)
        return model(**fields)

    def send(self, name: str, **fields: Any) -> Reply:
        reply = self.service.handle(name, self.command(name, **fields))
        if reply.status == "accepted":  # every result is what the contract documents
            RESULTS[name].model_validate(reply.result)
        return reply

    def ok(self, name: str, **fields: Any) -> dict[str, Any]:
        """Sends a command that must be accepted; returns its result."""
        reply = self.send(name, **fields)
        assert reply.status == "accepted", reply.error
        assert reply.result is not None
        return reply.result

    def invite(self, email: str, role: str = "user", **fields: Any) -> dict[str, Any]:
        return self.ok("invite_user", email=email, role=role, **fields)

    def enable_contractors(self) -> None:
        self.ok("configure_tenant", contractor_enabled=True)

    def token(self, invitation_id: str | UUID, generation: int = 1) -> str:
        return TokenSigner(self.secrets_key).token(UUID(str(invitation_id)), generation)

    def accept(self, invitation_id: str | UUID, email: str, generation: int = 1) -> Reply:
        token = self.token(invitation_id, generation)
        return self.send("accept_invitation", token=token, email=email, actor=email)

    # -- reading back ------------------------------------------------------------------------

    def position(self) -> int:
        return self.service.store.recorder.max_notification_id() or 0

    def events(self, *types: str, after: int = 0) -> list[EventEnvelope]:
        found = list(EventLog("", store=self.service.store).iterate(after))
        return [e for e in found if not types or e.event_type in types]

    def event_types(self, after: int = 0) -> list[str]:
        return [e.event_type for e in self.events(after=after)]

    def temp_password_id(self, email: str) -> UUID:
        """The id of the last temporary password issued to `email`."""
        issued = [e for e in self.events("TempPasswordIssued") if e.data["email"] == email]
        assert issued, f"no temporary password for {email}"
        return UUID(issued[-1].data["temp_password_id"])

    def sealed_count(self) -> int:
        return self.service.side_tables.count_sealed()

    def is_sealed(self, temp_password_id: UUID) -> bool:
        return self.service.side_tables.read_sealed(temp_password_id) is not None


NewEmail = Callable[..., str]
