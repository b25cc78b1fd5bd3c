"""Who asked, through which command, when, and for which tenant: stamped on every event."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Cause:
    """`actor` is who the caller says acted; `sender` the broker user that proves who sent
    the command (rule 29), None for commands run in process (tests, tools).

    Every decorated event method takes `sender` last, with a default of None: events
    stored before senders were recorded have none, and replay them unchanged.
    """

    actor: str
    command_id: str
    at: datetime
    tenant_id: str | None = None
    sender: str | None = None

    def for_tenant(self, tenant_id: str | None) -> Cause:
        return replace(self, tenant_id=tenant_id)

    def stamp(self) -> dict[str, Any]:
        """The keyword arguments every decorated event method takes."""
        return {
            "timestamp": self.at,
            "actor": self.actor,
            "correlation_id": self.command_id,
            "tenant_id": self.tenant_id,
            "sender": self.sender,
        }
