"""Rule 10: a mass invite's report counts its invited and refused rows."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

from services.invitation.domain.batch import MAX_BATCH, MassInvite
from services.invitation.domain.cause import Cause

MakeCause = Callable[..., Cause]


def test_report_keeps_every_row_and_counts_them(cause: MakeCause) -> None:
    rows = [
        {"index": 0, "email": "a@example.com", "status": "invited"},
        {"index": 1, "email": "nope", "status": "refused"},
        {"index": 2, "email": "b@example.com", "status": "invited"},
    ]
    batch = MassInvite.complete(uuid4(), rows, "manual", cause())
    assert (batch.invited, batch.refused, batch.rows) == (2, 1, rows)
    assert batch.tenant_id == "acme"


def test_a_batch_holds_at_most_ten_thousand_invitees() -> None:
    assert MAX_BATCH == 10_000
