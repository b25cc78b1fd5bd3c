"""Who asked, through which command, when, and for which tenant: stamped on every event."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Cause:
    actor: str
    command_id: str
    at: datetime
    tenant_id: str | None = None

    def for_tenant(self, tenant_id: str | None) -> Cause:
        return replace(self, tenant_id=tenant_id)

    def stamp(self) -> dict[str, Any]:
        """The keyword arguments every decorated event method takes."""
        return {
            "timestamp": self.at,
            "actor": self.actor,
            "correlation_id": self.command_id,
            "tenant_id": self.tenant_id,
        }
