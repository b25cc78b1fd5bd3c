"""What the notifier tells the invitation service back, read from and marked in the ledger.

- a sent automatic-password email: `record_temp_password_delivered` (rule 13);
- a sent invitation email without a password (linked, manual):
  `record_invitation_email_sent` (rule 10: the invitation's state says it went out);
- a failed email, refused for good or out of attempts: `record_notification_failed`
  (rule 35).

`delivery_recorded` marks a row whose outcome was told: once set, that row is never
reported again (a repeat would be harmless: the commands' ids are derived from the row).
"""

# Table names are interpolated into SQL: they are our own constants, never input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.notifier.adapters.ledger.rows import UNREPORTED_INVITATION_EMAIL, Cursor
from services.notifier.domain.delivery import FAILED, SENT


@dataclass(frozen=True)
class FailedEmail:
    """A failed row, as `record_notification_failed` tells it."""

    key: UUID
    kind: str
    recipient: str
    tenant_id: str | None
    invitation_id: UUID | None
    reason: str


class OutcomeReports:
    """The queries of the reports; EmailLedger (common.py) supplies the hooks."""

    emails: str

    def transaction(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _sql(self, query: str) -> str:
        raise NotImplementedError

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def unrecorded_deliveries(self, limit: int) -> list[tuple[UUID, str, UUID]]:
        """(key, email, temp_password_id) of sent password emails not yet reported."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    f"SELECT message_key, recipient, temp_password_id FROM {self.emails} "
                    "WHERE status = %s AND temp_password_id IS NOT NULL "
                    "AND delivery_recorded = 0 ORDER BY position LIMIT %s"
                ),
                (SENT, limit),
            )
            rows = cur.fetchall()
        return [(UUID(str(r[0])), r[1], UUID(str(r[2]))) for r in rows]

    def unreported_failures(self, limit: int) -> list[FailedEmail]:
        """Failed emails not yet reported, oldest first."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT message_key, kind, recipient, tenant_id, invitation_id, last_error "
                    f"FROM {self.emails} WHERE status = %s AND delivery_recorded = 0 "
                    "ORDER BY position LIMIT %s"
                ),
                (FAILED, limit),
            )
            rows = cur.fetchall()
        return list(_failures(rows))

    def unreported_invitation_emails(self, limit: int) -> list[tuple[UUID, str, UUID, int]]:
        """(key, tenant, invitation, link generation) of sent invitation emails without a
        password (linked, manual) not yet reported: `record_invitation_email_sent`."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT message_key, tenant_id, invitation_id, link_generation FROM "
                    f"{self.emails} WHERE {UNREPORTED_INVITATION_EMAIL} ORDER BY position LIMIT %s"
                ),
                (limit,),
            )
            rows = cur.fetchall()
        return [(UUID(str(r[0])), r[1], UUID(str(r[2])), int(r[3])) for r in rows]

    def mark_delivery_recorded(self, keys: Sequence[UUID]) -> None:
        """These rows' outcomes were told: a delivered password, or a failure."""
        if not keys:
            return
        clause, params = self._keys_clause("message_key", [str(k) for k in keys])
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"UPDATE {self.emails} SET delivery_recorded = 1 WHERE {clause}"),
                params,
            )


def _failures(rows: Sequence[Sequence[Any]]) -> Iterator[FailedEmail]:
    for key, kind, recipient, tenant_id, invitation_id, reason in rows:
        yield FailedEmail(
            key=UUID(str(key)),
            kind=kind,
            recipient=recipient,
            tenant_id=tenant_id,
            invitation_id=None if invitation_id is None else UUID(str(invitation_id)),
            reason=reason or "no reason given",
        )
