"""Rule 34 in the expiry service: a role change or a removal moves a member's deadlines.

The real invitation service in-process on a fake clock, as in
test_expiry_with_invitations.py: event -> deadline -> command -> event, no waiting.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from services.expiry.application import Expiry
from services.expiry.domain.deadlines import CONTRACTOR_END, CONTRACTOR_REMINDER, TEMP_PASSWORD
from shared.secrets import TokenSigner
from tests.expiry.conftest import FakeClock, Invitations

ONE_HOUR = [timedelta(hours=1)]


def follow(expiry: Expiry, invitations: Invitations) -> Expiry:
    expiry.rebuild(invitations.log)
    return expiry


def member(invitations: Invitations, tenant: str, email: str, role: str = "user") -> None:
    invited = invitations.ok("invite_user", tenant_id=tenant, email=email, role=role)
    token = TokenSigner(b"k" * 32).token(UUID(invited["invitation_id"]), 1)
    invitations.ok("accept_invitation", tenant_id=tenant, token=token, email=email)


def kinds(expiry: Expiry) -> set[int]:
    return {key[0] for key in expiry.deadlines()}


def test_a_member_made_contractor_is_reminded_then_expired_at_the_new_end(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, ONE_HOUR)
    member(invitations, tenant, email)
    invitations.ok("record_password_changed", email=email)
    end = clock.now + timedelta(days=3)
    invitations.ok(
        "change_role", tenant_id=tenant, email=email, role="contractor", access_expires_at=end
    )
    expiry = follow(Expiry(), invitations)
    assert kinds(expiry) == {CONTRACTOR_END, CONTRACTOR_REMINDER}

    clock.to(end - timedelta(hours=1))
    assert invitations.settle_due(expiry, clock.seconds()) == ["remind_contractor_expiry"]
    clock.to(end)
    assert invitations.settle_due(expiry, clock.seconds()) == ["expire_contractor"]
    follow(expiry, invitations)

    assert len(invitations.events("ContractorExpiryApproaching")) == 1
    assert len(invitations.events("ContractorExpired")) == 1
    assert expiry.deadlines() == {}


def test_a_contractor_made_user_keeps_access_past_the_old_end(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, ONE_HOUR)
    end = clock.now + timedelta(days=3)
    invited = invitations.invite_contractor(tenant, email, end)
    token = TokenSigner(b"k" * 32).token(UUID(invited["invitation_id"]), 1)
    invitations.ok("accept_invitation", tenant_id=tenant, token=token, email=email)
    invitations.ok("record_password_changed", email=email)
    expiry = follow(Expiry(), invitations)
    invitations.ok("change_role", tenant_id=tenant, email=email, role="user")
    follow(expiry, invitations)

    clock.to(end + timedelta(days=1))
    assert invitations.settle_due(expiry, clock.seconds()) == []
    assert invitations.events("ContractorExpired") == []


def test_a_removed_member_has_no_deadline_left(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, ONE_HOUR)
    end = clock.now + timedelta(days=3)
    invited = invitations.invite_contractor(tenant, email, end)
    token = TokenSigner(b"k" * 32).token(UUID(invited["invitation_id"]), 1)
    invitations.ok("accept_invitation", tenant_id=tenant, token=token, email=email)
    expiry = follow(Expiry(), invitations)
    assert kinds(expiry) == {CONTRACTOR_END, CONTRACTOR_REMINDER, TEMP_PASSWORD}

    invitations.ok("remove_member", tenant_id=tenant, email=email)
    follow(expiry, invitations)

    assert expiry.deadlines() == {}  # end, reminder, and the unused temporary password
    clock.to(end + timedelta(days=30))
    assert invitations.settle_due(expiry, clock.seconds()) == []
    assert invitations.events("TempPasswordExpired") == []


def test_following_member_changes_live_and_rebuilding_agree(
    invitations: Invitations, clock: FakeClock, tenant: str
) -> None:
    invitations.enable_contractors(tenant, ONE_HOUR)
    live = Expiry()
    emails = [f"m{i}-{tenant}@example.com" for i in range(3)]
    for email in emails:
        member(invitations, tenant, email)
        follow(live, invitations)
    for i, email in enumerate(emails):
        end = clock.now + timedelta(days=i + 2)
        invitations.ok(
            "change_role", tenant_id=tenant, email=email, role="contractor", access_expires_at=end
        )
        follow(live, invitations)
    invitations.ok("change_role", tenant_id=tenant, email=emails[0], role="administrator")
    invitations.ok("remove_member", tenant_id=tenant, email=emails[1])
    follow(live, invitations)

    rebuilt = follow(Expiry(), invitations)

    assert rebuilt.deadlines() == live.deadlines()
    ends = [key for key in live.deadlines() if key[0] == CONTRACTOR_END]
    assert [key[2] for key in ends] == [emails[2]]
