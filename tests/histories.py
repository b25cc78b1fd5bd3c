"""Histories that tests of the event log's mapping share (tests/unit, tests/application)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from eventsourcing.domain import Aggregate

from services.invitation.domain.account import Account
from services.invitation.domain.administrators import Administrators
from services.invitation.domain.batch import MassInvite
from services.invitation.domain.cause import Cause
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership
from services.invitation.domain.notification_failure import NotificationFailure
from services.invitation.domain.tenant import Tenant
from tests.fakes import T0

MakeCause = Callable[..., Cause]
DAY = timedelta(days=1)
# An end date given with another offset: the envelope carries it in UTC.
PARIS_END = datetime(2030, 2, 6, 18, 30, tzinfo=timezone(timedelta(hours=1)))
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2VjcmV0LXNhbHQ$c2VjcmV0LWhhc2gtdmFsdWU"
TOKEN_HASHES = ("a1" * 32, "b2" * 32)


def one_life_of_each_aggregate(cause: MakeCause) -> list[Aggregate]:
    """One life of each aggregate, through every event the service can record."""
    tenant = Tenant.start("acme", cause())
    tenant.configure({"contractor_enabled": True}, cause())

    registered = Account.register("carol@example.com", "Carol", cause(tenant_id=None))
    account = Account.create_for_invitation("bob@example.com", "Bob", cause())
    invitation_id, batch_id = uuid4(), uuid4()
    invitation = Invitation.invite(
        invitation_id=invitation_id,
        email="bob@example.com",
        role="contractor",
        access_expires_at=PARIS_END,
        ttl=7 * DAY,
        batch_id=batch_id,
        display_name="Bob",
        locale="fr",
        account_id=account.id,
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    account.issue_temp_password(
        uuid4(), invitation_id, PASSWORD_HASH, T0 + 7 * DAY, "automatic", cause()
    )
    assert account.temp_password_id is not None
    account.record_delivered(account.temp_password_id, cause())
    invitation.resend(7 * DAY, TOKEN_HASHES[1], True, cause())
    account.revoke_temp_password(cause())
    account.issue_temp_password(
        uuid4(), invitation_id, PASSWORD_HASH, T0 + 7 * DAY, "manual", cause()
    )
    assert account.temp_password_id is not None
    account.retrieve_manual(account.temp_password_id, cause())
    account.expire_temp_password(account.temp_password_id, cause(T0 + 8 * DAY))
    account.record_password_changed(cause())
    invitation.refuse_acceptance("email_mismatch", cause())
    invitation.accept(cause())
    invitation.change_access_expiry(T0 + 20 * DAY, cause())

    linked = Invitation.invite(
        invitation_id=uuid4(),
        email="carol@example.com",
        role="user",
        access_expires_at=None,
        ttl=7 * DAY,
        batch_id=None,
        display_name=None,
        locale=None,
        account_id=registered.id,
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    linked.record_account_linked(cause())
    linked.record_email_sent(1, cause())
    linked.revoke("wrong person", cause())
    lapsed = Invitation.invite(
        invitation_id=uuid4(),
        email="dan@example.com",
        role="user",
        access_expires_at=None,
        ttl=7 * DAY,
        batch_id=None,
        display_name=None,
        locale=None,
        account_id=uuid4(),
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    lapsed.lapse(cause(T0 + 7 * DAY))

    membership = Membership.start("acme", "bob@example.com", cause())
    membership.offer(invitation_id, "contractor", T0 + 30 * DAY, cause())
    membership.activate(invitation_id, cause())
    membership.change_contractor_expiry(T0 + 20 * DAY, cause())
    membership.remind_expiry(7 * DAY, cause(T0 + 13 * DAY))
    membership.expire_contractor(cause(T0 + 20 * DAY))

    # Carol joins as a user, becomes a contractor, then an administrator, and is removed.
    member = Membership.start("acme", "carol@example.com", cause())
    member.offer(linked.id, "user", None, cause())
    member.activate(linked.id, cause())
    member.change_role("contractor", PARIS_END, True, cause())
    member.change_role("administrator", None, True, cause())
    roster = Administrators.start("acme", cause())
    roster.join("carol@example.com", cause())
    roster.leave("carol@example.com", cause())
    member.remove("left", cause())

    failure = NotificationFailure.record(
        message_key=uuid4(),
        kind="invitation_linked",
        recipient="carol@example.com",
        invitation_id=linked.id,
        reason="550 5.1.1 mailbox unknown",
        cause=cause(),
    )

    report = MassInvite.complete(batch_id, [{"index": 0, "status": "invited"}], None, cause())
    return [
        tenant,
        registered,
        account,
        invitation,
        linked,
        lapsed,
        membership,
        member,
        roster,
        failure,
        report,
    ]
