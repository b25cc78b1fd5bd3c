"""The expiry use cases against the real invitation service in-process, on a fake clock.

Each command the expiry service would publish is handed to `InvitationService.handle`
at once, and its reply handed back, so these tests check the whole loop (event ->
deadline -> command -> event) with no broker and no waiting.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from services.expiry.application import Expiry
from services.expiry.domain.deadlines import (
    INVITATION_LINK,
    TEMP_PASSWORD,
    contractor_end,
    seconds,
)
from shared.secrets import TokenSigner
from tests.expiry.conftest import Invitations
from tests.fakes import FakeClock

TWO_SECONDS = [timedelta(seconds=2)]


def follow(expiry: Expiry, invitations: Invitations) -> Expiry:
    expiry.rebuild(invitations.log)
    return expiry


def count(invitations: Invitations, event_type: str) -> int:
    return len(invitations.events(event_type))


def test_a_contractor_is_reminded_then_expired_each_exactly_once(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    end = clock.now + timedelta(seconds=5)
    invitations.invite_contractor(tenant, email, end)
    expiry = follow(Expiry(), invitations)

    clock.advance(seconds=2.9)
    assert invitations.settle_due(expiry, clock.seconds()) == []

    clock.advance(seconds=0.1)
    assert invitations.settle_due(expiry, clock.seconds()) == ["remind_contractor_expiry"]
    follow(expiry, invitations)

    clock.to(end)
    assert invitations.settle_due(expiry, clock.seconds()) == ["expire_contractor"]
    follow(expiry, invitations)

    assert count(invitations, "ContractorExpiryApproaching") == 1
    assert count(invitations, "ContractorExpired") == 1
    # Still pending at the end: the invitation lapsed with the access (rule 20).
    assert count(invitations, "InvitationLapsed") == 1
    remaining = {key[0] for key in expiry.deadlines()}
    assert remaining <= {TEMP_PASSWORD}  # only the temporary password's own expiry is left


def test_an_unused_invitation_lapses_and_its_temporary_password_expires(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.ok("invite_user", tenant_id=tenant, email=email, role="user")
    expiry = follow(Expiry(), invitations)

    clock.advance(days=7)
    sent = invitations.settle_due(expiry, clock.seconds())
    follow(expiry, invitations)

    assert sorted(sent) == ["expire_temp_password", "lapse_invitation"]
    assert count(invitations, "InvitationLapsed") == 1
    assert count(invitations, "TempPasswordExpired") == 1
    assert expiry.deadlines() == {}


def test_a_password_changed_in_time_is_never_expired(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.ok("invite_user", tenant_id=tenant, email=email, role="user")
    invitations.ok("record_password_changed", email=email)
    expiry = follow(Expiry(), invitations)

    clock.advance(days=8)
    assert invitations.settle_due(expiry, clock.seconds()) == ["lapse_invitation"]
    assert count(invitations, "TempPasswordExpired") == 0


def test_an_accepted_contractor_keeps_access_until_the_end_then_loses_it(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    end = clock.now + timedelta(days=10)
    invited = invitations.invite_contractor(tenant, email, end)
    token = TokenSigner(b"k" * 32).token(UUID(invited["invitation_id"]), 1)
    invitations.ok("accept_invitation", tenant_id=tenant, token=token, email=email)
    expiry = follow(Expiry(), invitations)

    clock.to(end)
    sent = invitations.settle_due(expiry, clock.seconds())

    assert "expire_contractor" in sent
    assert "lapse_invitation" not in sent
    assert count(invitations, "ContractorExpired") == 1
    assert count(invitations, "InvitationLapsed") == 0


def test_a_revoked_contractor_invitation_sends_nothing_for_the_contractor(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    end = clock.now + timedelta(seconds=5)
    invitations.invite_contractor(tenant, email, end)
    expiry = follow(Expiry(), invitations)
    invitations.ok("revoke_invitation", tenant_id=tenant, email=email)
    follow(expiry, invitations)

    clock.advance(days=30)
    assert invitations.settle_due(expiry, clock.seconds()) == []
    assert count(invitations, "ContractorExpired") == 0


def test_an_end_date_moved_later_fires_only_at_the_new_date(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    first_end = clock.now + timedelta(seconds=5)
    invitations.invite_contractor(tenant, email, first_end)
    expiry = follow(Expiry(), invitations)
    new_end = first_end + timedelta(hours=1)
    invitations.ok(
        "set_contractor_expiry", tenant_id=tenant, email=email, access_expires_at=new_end
    )
    follow(expiry, invitations)

    clock.to(first_end + timedelta(minutes=1))
    assert invitations.settle_due(expiry, clock.seconds()) == []
    clock.to(new_end)
    sent = invitations.settle_due(expiry, clock.seconds())

    assert sent == ["remind_contractor_expiry", "expire_contractor"]
    assert count(invitations, "ContractorExpired") == 1


def test_an_end_date_moved_earlier_fires_at_the_new_date(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    invitations.invite_contractor(tenant, email, clock.now + timedelta(days=30))
    expiry = follow(Expiry(), invitations)
    new_end = clock.now + timedelta(seconds=10)
    invitations.ok(
        "set_contractor_expiry", tenant_id=tenant, email=email, access_expires_at=new_end
    )
    follow(expiry, invitations)

    assert expiry.deadlines()[contractor_end(tenant, email)] == seconds(new_end)
    clock.to(new_end)
    assert invitations.settle_due(expiry, clock.seconds()) == [
        "remind_contractor_expiry",
        "expire_contractor",
    ]
    assert count(invitations, "ContractorExpired") == 1


def test_a_reminder_offset_configured_after_the_invite_is_honoured(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant)
    end = clock.now + timedelta(seconds=30)
    invitations.invite_contractor(tenant, email, end)
    invitations.ok("configure_tenant", tenant_id=tenant, expiry_reminders=TWO_SECONDS)
    expiry = follow(Expiry(), invitations)

    clock.to(end - timedelta(seconds=2))
    assert invitations.settle_due(expiry, clock.seconds()) == ["remind_contractor_expiry"]
    assert count(invitations, "ContractorExpiryApproaching") == 1


def test_a_not_due_reply_from_a_slower_clock_is_retried_until_accepted(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, [timedelta(days=1)])
    end = clock.now + timedelta(hours=2)
    invitations.invite_contractor(tenant, email, end)
    expiry = follow(Expiry(), invitations)
    skew = 0.5  # the expiry service's clock runs half a second ahead

    clock.to(end - timedelta(seconds=skew))
    assert invitations.settle_due(expiry, clock.seconds() + skew) == ["expire_contractor"]
    assert count(invitations, "ContractorExpired") == 0
    retry_at = expiry.next_at()
    assert retry_at is not None and retry_at > seconds(end)  # retried, not dropped

    clock.advance(seconds=0.6)
    assert invitations.settle_due(expiry, clock.seconds() + skew) == ["expire_contractor"]
    follow(expiry, invitations)
    assert count(invitations, "ContractorExpired") == 1


def test_a_command_whose_reply_is_lost_is_sent_again_with_the_same_id(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.ok("invite_user", tenant_id=tenant, email=email, role="user")
    expiry = follow(Expiry(), invitations)
    clock.advance(days=7)
    first = [f for f in expiry.due(clock.seconds()) if f.name == "lapse_invitation"]
    invitations.service.handle(first[0].name, first[0].command)  # its reply never arrives

    clock.advance(seconds=expiry.dispatcher.timing.reply_timeout)
    again = [f for f in expiry.due(clock.seconds()) if f.name == "lapse_invitation"]
    reply = invitations.service.handle(again[0].name, again[0].command)

    assert again[0].command.command_id == first[0].command.command_id
    assert reply.status == "accepted"
    assert count(invitations, "InvitationLapsed") == 1
    assert expiry.settle(reply, clock.seconds()) == "accepted"
    assert all(key[0] != INVITATION_LINK for key in expiry.deadlines())


def test_deadlines_that_passed_while_the_service_was_down_all_fire_on_restart_in_order(
    invitations: Invitations, clock: FakeClock, tenant: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    ends = {f"c{i}-{tenant}@example.com": clock.now + timedelta(minutes=10 - i) for i in range(4)}
    for email, end in ends.items():
        invitations.invite_contractor(tenant, email, end)
    invitations.ok("invite_user", tenant_id=tenant, email=f"u-{tenant}@example.com", role="user")
    before = follow(Expiry(), invitations)
    # ... and here the service goes down, for eight days.
    clock.advance(days=8)

    restarted = follow(Expiry(), invitations)
    firings = restarted.due(clock.seconds())

    assert restarted.deadlines().keys() == before.deadlines().keys()
    assert [f.deadline for f in firings] == sorted(f.deadline for f in firings)
    assert len(firings) == len(before.deadlines())
    for firing in firings:
        restarted.settle(invitations.service.handle(firing.name, firing.command), clock.seconds())
    follow(restarted, invitations)
    assert count(invitations, "ContractorExpired") == 4
    assert count(invitations, "InvitationLapsed") == 5
    assert count(invitations, "TempPasswordExpired") == 5
    # Reminders whose contractor had already ended by then add nothing (the end is what counts).
    assert count(invitations, "ContractorExpiryApproaching") == 0
    assert restarted.deadlines() == {}


def test_firing_a_deadline_twice_gives_one_event(
    invitations: Invitations, clock: FakeClock, tenant: str, email: str
) -> None:
    invitations.enable_contractors(tenant, TWO_SECONDS)
    end = clock.now + timedelta(seconds=5)
    invitations.invite_contractor(tenant, email, end)
    clock.to(end)
    # Two instances (or one before and after a restart) fire the same deadline.
    first = [
        f
        for f in follow(Expiry(), invitations).due(clock.seconds())
        if f.name == "expire_contractor"
    ]
    second = [
        f
        for f in follow(Expiry(), invitations).due(clock.seconds())
        if f.name == "expire_contractor"
    ]

    assert first[0].command == second[0].command
    for firing in (first[0], second[0]):
        assert invitations.service.handle(firing.name, firing.command).status == "accepted"
    assert count(invitations, "ContractorExpired") == 1


def test_following_live_and_rebuilding_from_scratch_agree(
    invitations: Invitations, clock: FakeClock, tenant: str
) -> None:
    live = Expiry()
    invitations.enable_contractors(tenant, TWO_SECONDS)
    emails = [f"p{i}-{tenant}@example.com" for i in range(5)]
    for i, email in enumerate(emails):
        invitations.invite_contractor(tenant, email, clock.now + timedelta(hours=i + 1))
        follow(live, invitations)
    invitations.ok("revoke_invitation", tenant_id=tenant, email=emails[0])
    invitations.ok(
        "set_contractor_expiry",
        tenant_id=tenant,
        email=emails[1],
        access_expires_at=clock.now + timedelta(minutes=5),
    )
    invitations.ok("resend_invitation", tenant_id=tenant, email=emails[2])
    follow(live, invitations)
    clock.advance(minutes=5)
    invitations.settle_due(live, clock.seconds())
    invitations.ok("configure_tenant", tenant_id=tenant, expiry_reminders=[timedelta(minutes=30)])
    follow(live, invitations)

    rebuilt = follow(Expiry(), invitations)

    assert rebuilt.deadlines() == live.deadlines()
    assert count(invitations, "ContractorExpired") == 1
