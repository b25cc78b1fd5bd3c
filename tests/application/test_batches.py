"""A batch loads what its commands look up in a few queries, not one per lookup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.invitation.application import IncomingCommand, InvitationService

from .console import Admin, NewEmail


class CountingLoads:
    """The service's side tables, counting the stream loads (one query each)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.loads = 0

    def select_streams(self, ids: Sequence[UUID]) -> Any:
        self.loads += 1
        return self._inner.select_streams(ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_batch_of_acceptances_revocations_and_password_changes_loads_in_two_queries(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    accepting = [new_email("accepting") for _ in range(10)]
    revoked = [new_email("revoked") for _ in range(10)]
    invited = {email: admin.invite(email)["invitation_id"] for email in accepting + revoked}
    batch = [
        IncomingCommand(
            "accept_invitation",
            admin.command("accept_invitation", token=admin.token(invited[email]), email=email),
        )
        for email in accepting
    ]
    batch += [
        IncomingCommand("revoke_invitation", admin.command("revoke_invitation", email=email))
        for email in revoked
    ]
    batch += [
        IncomingCommand(
            "record_password_changed", admin.command("record_password_changed", email=e)
        )
        for e in accepting
    ]
    counting = CountingLoads(service.side_tables)
    service.side_tables = counting

    replies = service.handle_batch(batch)

    assert [r.status for r in replies] == ["accepted"] * len(batch), replies
    assert counting.loads == 2
    assert admin.event_types().count("InvitationAccepted") == 10
    assert admin.event_types().count("InvitationRevoked") == 10
