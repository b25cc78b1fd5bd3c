"""Rules 16-19 on the invitation: lapse, resend (3 per hour), revoke, acceptance refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.invitation import Invitation
from shared.contract.codes import RejectionCode
from tests.fakes import T0

MakeCause = Callable[..., Cause]
TTL = timedelta(days=7)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def _invitation(cause: MakeCause, token_hash: str = "hash-1") -> Invitation:
    return Invitation.invite(
        invitation_id=uuid4(),
        email="bob@example.com",
        role="user",
        access_expires_at=None,
        ttl=TTL,
        batch_id=None,
        display_name="Bob",
        locale="en",
        account_id=uuid4(),
        token_hash=token_hash,
        cause=cause(),
    )


def _code(check: Callable[[], object]) -> RejectionCode:
    with pytest.raises(DomainError) as refused:
        check()
    return refused.value.code


def test_invite_records_who_asked_when_and_the_link_validity(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    invited = invitation.collect_events()[0]
    assert isinstance(invited, Invitation.Invited)
    assert invited.invited_by == "admin@acme.io"
    assert invited.timestamp == T0
    assert invited.invitation_expires_at == T0 + TTL
    assert (invitation.status, invitation.link_generation) == ("pending", 1)


# -- rule 16: lapse -----------------------------------------------------------------------


def test_lapse_is_refused_while_the_link_is_valid(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    assert _code(lambda: invitation.lapse(cause(T0 + TTL - SECOND))) == RejectionCode.NOT_DUE


def test_invitation_lapses_when_its_link_expires_and_only_once(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    assert invitation.lapse(cause(T0 + TTL)) is True
    assert invitation.lapse(cause(T0 + TTL + HOUR)) is False
    assert invitation.status == "lapsed"


def test_ended_contractor_access_lapses_the_invitation_before_its_link_expires(
    cause: MakeCause,
) -> None:
    invitation = _invitation(cause)
    assert invitation.lapse(cause(T0 + HOUR), access_ended=True) is True


def test_revoked_or_accepted_invitation_does_not_lapse(cause: MakeCause) -> None:
    revoked, accepted = _invitation(cause), _invitation(cause)
    revoked.revoke("typo", cause())
    accepted.accept(cause())
    assert revoked.lapse(cause(T0 + TTL)) is False
    assert accepted.lapse(cause(T0 + TTL)) is False


# -- rule 17: resend ------------------------------------------------------------------------


def test_resend_gives_a_new_link_generation_and_validity(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    invitation.resend(TTL, "hash-2", False, cause(T0 + HOUR))
    assert (invitation.link_generation, invitation.token_hash) == (2, "hash-2")
    assert invitation.expires_at == T0 + HOUR + TTL


def test_lapsed_invitation_can_be_resent_and_is_pending_again(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    invitation.lapse(cause(T0 + TTL))
    invitation.resend(TTL, "hash-2", False, cause(T0 + TTL + HOUR))
    assert invitation.status == "pending"


@pytest.mark.parametrize("end", ["accept", "revoke"])
def test_accepted_or_revoked_invitation_is_not_resent(cause: MakeCause, end: str) -> None:
    invitation = _invitation(cause)
    if end == "accept":
        invitation.accept(cause())
    else:
        invitation.revoke(None, cause())
    code = _code(lambda: invitation.resend(TTL, "hash-2", False, cause()))
    assert code == RejectionCode.INVITATION_NOT_PENDING


def test_fourth_resend_within_an_hour_is_refused_until_the_hour_has_passed(
    cause: MakeCause,
) -> None:
    invitation = _invitation(cause)
    first = T0 + MINUTE
    for n in range(3):
        invitation.resend(TTL, f"hash-{n + 2}", False, cause(first + n * MINUTE))
    with pytest.raises(DomainError) as refused:
        invitation.resend(TTL, "hash-5", False, cause(first + 59 * MINUTE))
    assert refused.value.code == RejectionCode.RESEND_RATE_LIMITED
    assert refused.value.details["retry_after"] == (first + HOUR).isoformat()
    assert invitation.link_generation == 4
    invitation.resend(TTL, "hash-5", False, cause(first + HOUR))
    assert invitation.link_generation == 5


# -- rule 18: revoke ------------------------------------------------------------------------


def test_pending_or_lapsed_invitation_can_be_revoked(cause: MakeCause) -> None:
    pending, lapsed = _invitation(cause), _invitation(cause)
    lapsed.lapse(cause(T0 + TTL))
    pending.revoke("left the company", cause())
    lapsed.revoke(None, cause(T0 + TTL))
    assert (pending.status, lapsed.status) == ("revoked", "revoked")


@pytest.mark.parametrize("end", ["accept", "revoke"])
def test_accepted_or_revoked_invitation_is_not_revoked_again(cause: MakeCause, end: str) -> None:
    invitation = _invitation(cause)
    if end == "accept":
        invitation.accept(cause())
    else:
        invitation.revoke(None, cause())
    assert _code(lambda: invitation.revoke(None, cause())) == RejectionCode.INVITATION_NOT_PENDING


# -- rule 19: acceptance ---------------------------------------------------------------------


def _refusal(invitation: Invitation, token_hash: str, email: str, at: datetime) -> str | None:
    refusal = invitation.acceptance_refusal(token_hash, email, at)
    return None if refusal is None else refusal.code.value


def test_current_link_and_invited_email_can_accept(cause: MakeCause) -> None:
    assert _refusal(_invitation(cause), "hash-1", "bob@example.com", T0) is None


def test_each_acceptance_failure_has_its_own_code(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    assert _refusal(invitation, "other", "bob@example.com", T0) == "invalid_token"
    assert _refusal(invitation, "hash-1", "eve@example.com", T0) == "email_mismatch"
    assert _refusal(invitation, "hash-1", "bob@example.com", T0 + TTL) == "invitation_lapsed"
    revoked = _invitation(cause)
    revoked.revoke(None, cause())
    assert _refusal(revoked, "hash-1", "bob@example.com", T0) == "invitation_revoked"
    accepted = _invitation(cause)
    accepted.accept(cause())
    assert _refusal(accepted, "hash-1", "bob@example.com", T0) == "invitation_already_accepted"
    lapsed = _invitation(cause)
    lapsed.lapse(cause(T0 + TTL))
    assert _refusal(lapsed, "hash-1", "bob@example.com", T0 + TTL) == "invitation_lapsed"


def test_an_older_generation_link_is_an_invalid_token_after_a_resend(cause: MakeCause) -> None:
    invitation = _invitation(cause)
    invitation.resend(TTL, "hash-2", False, cause())
    assert _refusal(invitation, "hash-1", "bob@example.com", T0) == "invalid_token"
    assert _refusal(invitation, "hash-2", "bob@example.com", T0) is None


def test_refused_acceptance_is_recorded_and_leaves_the_invitation_pending(
    cause: MakeCause,
) -> None:
    invitation = _invitation(cause)
    invitation.refuse_acceptance("email_mismatch", cause())
    assert invitation.status == "pending"
    refused = invitation.collect_events()[-1]
    assert isinstance(refused, Invitation.AcceptanceRefused)
    assert refused.reason == "email_mismatch"


def test_a_contractor_cannot_accept_once_their_access_has_ended(cause: MakeCause) -> None:
    invitation = Invitation.invite(
        invitation_id=uuid4(),
        email="dave@example.com",
        role="contractor",
        access_expires_at=T0 + HOUR,
        ttl=TTL,
        batch_id=None,
        display_name=None,
        locale=None,
        account_id=uuid4(),
        token_hash="hash-1",
        cause=cause(),
    )
    assert invitation.acceptance_refusal("hash-1", "dave@example.com", T0) is None
    refusal = invitation.acceptance_refusal("hash-1", "dave@example.com", T0 + HOUR)
    assert refusal is not None
    assert refusal.code is RejectionCode.INVITATION_LAPSED
