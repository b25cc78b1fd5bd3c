"""The mass-invite report (rule 10), and which of its manual temporary passwords remain to
be retrieved (sheets.py writes them).

The per-row outcome is the `rows` of the batch's internal `MassInvite.Completed` event (the
published `MassInviteCompleted` has counts only); each invitation's state and its temporary
password's delivery are folded from the invitation and account streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from services.cli.history import History
from services.cli.sheets import Retrieval, WantedSheet, sheet_file_name
from services.invitation.eventstore import BATCH_TOPIC, AuditTables, InvitationStore, account_uuid
from shared.contract import EventEnvelope
from shared.contract.codes import RejectionCode

_COMPLETED_TOPIC = f"{BATCH_TOPIC}.Completed"
_INVITATION_STATES = {
    "UserInvited": "pending",
    "InvitationResent": "pending",
    "InvitationRevoked": "revoked",
    "InvitationLapsed": "lapsed",
    "InvitationAccepted": "accepted",
}
# Delivered: emailed (automatic), or retrieved (manual; `TempPasswordDelivered` with
# delivery `manual` is how retrievals were recorded before `TempPasswordRetrieved`).
_DELIVERED = ("TempPasswordDelivered", "TempPasswordRetrieved")
# What became of a temporary password, by the event that last touched it.
_TEMP_PASSWORD_STATES = {
    "TempPasswordExpired": "expired",
    "TempPasswordRevoked": "withdrawn",
}


@dataclass
class ReportRow:
    index: int
    email: str
    status: str  # invited | refused
    role: str | None = None
    outcome: str | None = None  # account_linked | temp_password_issued | the refusal code
    error: str | None = None
    invitation_id: str | None = None
    invitation_state: str | None = None  # pending | accepted | revoked | lapsed
    delivery_mode: str | None = None  # automatic | manual (temporary passwords)
    temp_password_id: str | None = None
    temp_password_valid_until: str | None = None
    # awaiting_email | emailed | awaiting_retrieval | retrieved | expired | withdrawn |
    # password_changed; None for linked accounts (no temporary password).
    temp_password: str | None = None
    delivered_at: str | None = None
    delivered_by: str | None = None
    # The invitation email, from the notifier's sent-records when they can be read.
    invitation_email: str | None = None
    invitation_email_sent_at: str | None = None
    # Whom the invitation names, and the language of their emails (for their sheet).
    display_name: str | None = None
    locale: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class MassInviteReport:
    batch_id: str
    tenant_id: str | None
    completed_at: datetime
    actor: str
    invited: int
    refused: int
    rows: list[ReportRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "tenant_id": self.tenant_id,
            "completed_at": self.completed_at.isoformat(),
            "actor": self.actor,
            "invited": self.invited,
            "refused": self.refused,
            "rows": [r.to_json() for r in self.rows],
        }


def build_report(
    store: InvitationStore, audit: AuditTables, batch_id: UUID
) -> MassInviteReport | None:
    completed: Any = None
    for stored in store.recorder.select_streams([batch_id]):  # type: ignore[attr-defined]
        if stored.topic == _COMPLETED_TOPIC:
            completed = store.mapper.to_domain_event(stored)
    if completed is None:
        return None
    rows = [_row(r) for r in completed.rows]
    invitation_ids = [UUID(r.invitation_id) for r in rows if r.invitation_id]
    accounts = [account_uuid(r.email) for r in rows if r.invitation_id]
    history = History(store, audit)
    _fold(rows, history.of_streams([*invitation_ids, *dict.fromkeys(accounts)]))
    return MassInviteReport(
        batch_id=str(batch_id),
        tenant_id=completed.tenant_id,
        completed_at=completed.timestamp,
        actor=completed.actor,
        invited=completed.invited,
        refused=completed.refused,
        rows=rows,
    )


@dataclass(frozen=True)
class SentEmail:
    """The notifier's record of the latest invitation email of one invitation."""

    invitation_id: str
    kind: str
    status: str  # the notifier's own: pending, sent, failed, ...
    sent_at: datetime | None


def add_invitation_emails(report: MassInviteReport, sent: Mapping[str, SentEmail]) -> None:
    for row in report.rows:
        email = sent.get(row.invitation_id or "")
        if email is not None:
            row.invitation_email = email.status
            row.invitation_email_sent_at = (
                None if email.sent_at is None else (email.sent_at.isoformat())
            )


def _row(raw: dict[str, Any]) -> ReportRow:
    error = raw.get("error") or {}
    return ReportRow(
        index=int(raw["index"]),
        email=str(raw["email"]),
        status=str(raw["status"]),
        role=raw.get("role"),
        outcome=raw.get("outcome") or error.get("code"),
        error=error.get("message"),
        invitation_id=raw.get("invitation_id"),
        delivery_mode=raw.get("temp_password_delivery"),
    )


def _fold(rows: list[ReportRow], envelopes: Iterable[EventEnvelope]) -> None:
    by_invitation = {r.invitation_id: r for r in rows if r.invitation_id}
    by_email = {r.email: r for r in rows if r.invitation_id}
    for e in envelopes:
        d = e.data
        row = by_invitation.get(str(d.get("invitation_id")))
        if e.event_type in _INVITATION_STATES and row is not None:
            row.invitation_state = _INVITATION_STATES[e.event_type]
            if e.event_type == "UserInvited":
                row.display_name, row.locale = d.get("display_name"), d.get("locale")
        elif e.event_type == "TempPasswordIssued" and row is not None:
            row.delivery_mode = d["delivery"]
            row.temp_password_id = d.get("temp_password_id")
            row.temp_password_valid_until = d.get("valid_until")
            row.temp_password = (
                f"awaiting_{'email' if d['delivery'] == 'automatic' else 'retrieval'}"
            )
            row.delivered_at = row.delivered_by = None
        elif e.event_type in _DELIVERED and row is not None:
            if d.get("temp_password_id") == row.temp_password_id:
                manual = e.event_type == "TempPasswordRetrieved" or d["delivery"] == "manual"
                row.temp_password = "retrieved" if manual else "emailed"
                row.delivered_at, row.delivered_by = e.occurred_at.isoformat(), e.actor
        elif e.event_type in _TEMP_PASSWORD_STATES and row is not None:
            if d.get("temp_password_id") == row.temp_password_id:
                row.temp_password = _TEMP_PASSWORD_STATES[e.event_type]
        elif e.event_type == "PasswordChanged":
            person = by_email.get(str(d.get("email")))
            if person is not None and person.temp_password in (
                "awaiting_email",
                "awaiting_retrieval",
            ):
                person.temp_password = "password_changed"


# -- manual temporary passwords still to retrieve (rules 5 and 33) -----------------------------


def wanted_sheets(report: MassInviteReport) -> tuple[list[WantedSheet], list[Retrieval]]:
    """The manual passwords never retrieved, as sheets to write; and why the others not."""
    wanted: list[WantedSheet] = []
    refused: list[Retrieval] = []
    for row in report.rows:
        if row.delivery_mode != "manual" or row.temp_password_id is None:
            continue
        if row.temp_password != "awaiting_retrieval" or report.tenant_id is None:
            refused.append(_not_available(row))
            continue
        assert row.invitation_id is not None
        wanted.append(
            WantedSheet(
                tenant_id=report.tenant_id,
                invitation_id=UUID(row.invitation_id),
                email=row.email,
                display_name=row.display_name,
                locale=row.locale,
                file_name=sheet_file_name(row.email, row.index),
            )
        )
    return wanted, refused


def _not_available(row: ReportRow) -> Retrieval:
    why = {
        "retrieved": f"already retrieved at {row.delivered_at} by {row.delivered_by}",
        "expired": "it expired unused",
        "withdrawn": (
            "it was withdrawn (the invitation was revoked or re-sent, the member removed, "
            "or the contractor's access ended)"
        ),
        "password_changed": "the invitee already set their own password",
    }.get(row.temp_password or "", "it is no longer available")
    return Retrieval(
        row.email,
        None,
        RejectionCode.TEMP_PASSWORD_NOT_AVAILABLE.value,
        f"the temporary password of {row.email} cannot be retrieved again: {why}",
    )
