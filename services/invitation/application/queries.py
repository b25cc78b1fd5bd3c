"""The queries (rule 32): read the read model, record nothing, reveal no secret.

They run outside the batches, each in its own read transaction (the intake hands them to
a thread), and never write: no event, no stored reply, so the same `command_id` asked
again is simply answered again, from the state of then. What they can see: everything
committed before they started, which includes every command already answered
(read-your-writes: the read model is written in the command's own transaction).

A tenant's query sees only that tenant's rows: another tenant's invitation or batch is
`invitation_not_found`, as if it did not exist. A page token is bound to the query, the
tenant and the filters it was issued for; anything else is `invalid_command`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.invitation.domain.errors import DomainError
from services.invitation.eventstore import (
    InvitationRow,
    MemberRow,
    ReadModelTables,
    ReportLine,
)
from shared import contract as c
from shared.contract.codes import RejectionCode
from shared.secrets import PageTokens, TokenSigner

__all__ = ["QueryService", "invitation_view"]


Json = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


# The results are built as JSON-ready dicts, field for field what shared/contract/results.py
# documents (the application tests validate every reply against it): building and then
# dumping 100 pydantic models per page cost more than the page's SQL.


def invitation_view(row: InvitationRow) -> Json:
    """`InvitationView`."""
    return {
        "invitation_id": str(row.invitation_id),
        "tenant_id": row.tenant_id,
        "email": row.email,
        "role": row.role,
        "status": row.status,
        "outcome": row.outcome,
        "temp_password_delivery": row.temp_password_delivery,
        "invited_by": row.invited_by,
        "inviter_name": row.inviter_name,
        "invited_at": _iso(row.invited_at),
        "invitation_expires_at": _iso(row.invitation_expires_at),
        "access_expires_at": _iso(row.access_expires_at),
        "batch_id": None if row.batch_id is None else str(row.batch_id),
        "accepted_at": _iso(row.accepted_at),
        "revoked_at": _iso(row.revoked_at),
        "lapsed_at": _iso(row.lapsed_at),
        "invitation_email": row.invitation_email,
        "temp_password": row.temp_password,
        "temp_password_valid_until": _iso(row.temp_password_valid_until),
        "display_name": row.display_name,
        "locale": row.locale,
    }


def _member_view(row: MemberRow) -> Json:
    """`MemberView`."""
    return {
        "account_id": str(row.account_id),
        "email": row.email,
        "role": row.role,
        "status": row.status,
        "member_since": _iso(row.member_since),
        "access_expires_at": _iso(row.access_expires_at),
        "invitation_id": None if row.invitation_id is None else str(row.invitation_id),
    }


def _report_row(line: ReportLine) -> Json:
    """`ReportRow`: the row of the mass_invite reply, and its invitation as it is now."""
    invitation = line.invitation
    if invitation is None:
        return line.row
    return {
        **line.row,
        "invitation_status": invitation.status,
        "invitation_email": invitation.invitation_email,
        "temp_password": invitation.temp_password,
    }


def _not_found(what: str = "no such invitation in this tenant") -> DomainError:
    return DomainError(RejectionCode.INVITATION_NOT_FOUND, what)


def _email(raw: str) -> str:
    return raw.strip().lower()


class QueryService:
    def __init__(self, tables: ReadModelTables, signer: TokenSigner, pages: PageTokens):
        self._tables = tables
        self._signer = signer
        self._pages = pages
        self._handlers: dict[type[c.Command], Callable[[Any], Json]] = {
            c.GetInvitation: self.get_invitation,
            c.ListInvitations: self.list_invitations,
            c.ListMembers: self.list_members,
            c.LookupInvitationToken: self.lookup_invitation_token,
            c.GetMassInviteReport: self.get_mass_invite_report,
        }

    def ask(self, query: c.Command) -> c.Reply:
        command_id = str(query.command_id)
        try:
            result = self._handlers[type(query)](query)
        except DomainError as error:
            return c.Reply.rejected(command_id, error.code, error.message, error.details)
        return c.Reply.accepted(command_id, result)

    # -- paging --------------------------------------------------------------------------

    def _cursor(self, scope: str, query: Any) -> Any:
        if query.page_token is None:
            return None
        cursor = self._pages.read(scope, query.page_token)
        if cursor is None:
            raise DomainError(
                RejectionCode.INVALID_COMMAND,
                "page_token was not issued for this query, tenant and filters",
            )
        return cursor

    def _next(self, scope: str, more: bool, cursor: object) -> str | None:
        return self._pages.issue(scope, cursor) if more else None

    # -- the queries ---------------------------------------------------------------------

    def get_invitation(self, query: c.GetInvitation) -> Json:
        if query.invitation_id is not None:
            row = self._tables.invitation(query.invitation_id)
        else:
            assert query.email is not None
            row = self._tables.latest_invitation(query.tenant_id, _email(query.email))
        if row is None or row.tenant_id != query.tenant_id:
            raise _not_found()
        return {"invitation": invitation_view(row)}

    def list_invitations(self, query: c.ListInvitations) -> Json:
        statuses = sorted(set(query.status or ()))
        email = None if query.email is None else _email(query.email)
        scope = _scope(
            "list_invitations", query.tenant_id, statuses, query.role, email, query.batch_id
        )
        before = self._cursor(scope, query)
        if before is not None and not isinstance(before, int):
            raise DomainError(RejectionCode.INVALID_COMMAND, "page_token is not a valid cursor")
        rows = self._tables.invitations(
            query.tenant_id,
            statuses=statuses,
            role=query.role,
            email=email,
            batch_id=query.batch_id,
            before=before,
            limit=query.page_size + 1,
        )
        page = rows[: query.page_size]
        more = len(rows) > query.page_size
        return {
            "invitations": [invitation_view(row) for row in page],
            "next_page_token": self._next(scope, more, page[-1].invited_position if more else 0),
        }

    def list_members(self, query: c.ListMembers) -> Json:
        statuses = sorted(set(query.status or ()))
        scope = _scope("list_members", query.tenant_id, statuses, query.role)
        after = self._cursor(scope, query)
        if after is not None and not isinstance(after, str):
            raise DomainError(RejectionCode.INVALID_COMMAND, "page_token is not a valid cursor")
        rows = self._tables.members(
            query.tenant_id,
            role=query.role,
            statuses=statuses,
            after_email=after,
            limit=query.page_size + 1,
        )
        page = rows[: query.page_size]
        more = len(rows) > query.page_size
        return {
            "members": [_member_view(row) for row in page],
            "next_page_token": self._next(scope, more, page[-1].email if more else ""),
        }

    def lookup_invitation_token(self, query: c.LookupInvitationToken) -> Json:
        """The invitation a link's token is for, if that token is its current link."""
        claim = self._signer.verify(query.token.strip())
        row = None if claim is None else self._tables.invitation(claim.invitation_id)
        if claim is None or row is None or row.link_generation != claim.link_generation:
            raise DomainError(RejectionCode.INVALID_TOKEN, "unknown or superseded invitation link")
        return {"invitation": invitation_view(row)}

    def get_mass_invite_report(self, query: c.GetMassInviteReport) -> Json:
        batch = self._tables.batch(query.batch_id)
        if batch is None or batch.tenant_id != query.tenant_id:
            raise _not_found("no such mass invite in this tenant")
        scope = _scope("get_mass_invite_report", query.tenant_id, query.batch_id)
        after = self._cursor(scope, query)
        if after is not None and not isinstance(after, int):
            raise DomainError(RejectionCode.INVALID_COMMAND, "page_token is not a valid cursor")
        lines = self._tables.report_lines(
            query.batch_id, -1 if after is None else after, query.page_size + 1
        )
        page = lines[: query.page_size]
        more = len(lines) > query.page_size
        return {
            "batch_id": str(batch.batch_id),
            "invited": batch.invited,
            "refused": batch.refused,
            "rows": [_report_row(line) for line in page],
            "next_page_token": self._next(scope, more, page[-1].index if more else 0),
        }


def _scope(*parts: object) -> str:
    """What a page token is bound to: the query, its tenant and its filters."""
    return json.dumps([p if p is None or isinstance(p, list) else str(p) for p in parts])
