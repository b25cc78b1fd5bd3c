"""Mass-invite batch: the report of one `mass_invite` command (rules 9 and 10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause

TOPIC = "invitations:MassInvite"
MAX_BATCH = 10_000


class MassInvite(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(batch_id: UUID) -> UUID:
        return batch_id

    @event("Completed", topic=f"{TOPIC}.Completed")
    def __init__(
        self,
        batch_id: UUID,
        rows: list[dict[str, Any]],
        invited: int,
        refused: int,
        delivery: str | None,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.rows = rows
        self.invited = invited
        self.refused = refused

    @classmethod
    def complete(
        cls, batch_id: UUID, rows: list[dict[str, Any]], delivery: str | None, cause: Cause
    ) -> MassInvite:
        invited = sum(1 for r in rows if r["status"] == "invited")
        return cls(
            batch_id=batch_id,
            rows=rows,
            invited=invited,
            refused=len(rows) - invited,
            delivery=delivery,
            **cause.stamp(),
        )
