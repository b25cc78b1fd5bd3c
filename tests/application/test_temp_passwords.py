"""Rules 11-15: temporary passwords, their delivery, expiry and crypto-shredding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.domain.account import Account
from services.invitation.domain.ids import account_uuid
from shared.sealed_box import RecipientKeys
from shared.secrets import HashCost, TempPasswordHasher

from .console import Admin, NewEmail

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _invited(admin: Admin, email: str, **fields: Any) -> tuple[dict[str, Any], UUID]:
    result = admin.invite(email, **fields)
    return result, admin.temp_password_id(email)


def _internal(admin: Admin, name: str, **fields: object) -> dict[str, object]:
    return admin.ok(name, actor="service:test", **fields)


def test_sealed_copy_opens_to_a_rule_11_password_that_matches_its_hash(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    _, temp_id = _invited(admin, email)
    password = service.open_sealed(temp_id)
    assert password is not None
    assert len(password) >= 16
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and not password.isalnum()
    assert not set(password) & set("0O1lIo")
    account_hash = _stored_hash(admin, email)
    hasher = TempPasswordHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))
    assert hasher.verify(account_hash, password)


def _stored_hash(admin: Admin, email: str) -> str:
    account: object = admin.service.store.repository.get(account_uuid(email))
    assert isinstance(account, Account) and account.temp_hash is not None
    return account.temp_hash


def test_each_invitee_gets_a_different_temp_password(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    ids = [_invited(admin, new_email())[1] for _ in range(3)]
    assert len({service.open_sealed(i) for i in ids}) == 3


def test_automatic_delivery_shreds_the_sealed_copy(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    _, temp_id = _invited(admin, email)
    before = admin.sealed_count()
    result = _internal(
        admin, "record_temp_password_delivered", email=email, temp_password_id=temp_id
    )
    assert result["recorded"] is True
    assert service.side_tables.read_sealed(temp_id) is None
    assert service.open_sealed(temp_id) is None
    assert admin.sealed_count() == before - 1
    delivered = admin.events("TempPasswordDelivered")[-1].data
    assert (delivered["temp_password_id"], delivered["delivery"]) == (str(temp_id), "automatic")


def test_manual_temp_password_is_retrieved_once_then_not_available(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    result, temp_id = _invited(admin, email, temp_password_delivery="manual")
    assert result["temp_password_delivery"] == "manual"
    plaintext = service.open_sealed(temp_id)
    assert plaintext is not None
    before = admin.sealed_count()
    keys = RecipientKeys()
    retrieved = admin.ok(
        "retrieve_temp_password", email=email, recipient_public_key=keys.public_key
    )
    assert keys.open(retrieved["sealed_temp_password"]) == plaintext
    assert service.side_tables.read_sealed(temp_id) is None
    assert admin.sealed_count() == before - 1
    event = admin.events("TempPasswordRetrieved")[-1]
    assert (event.data["temp_password_id"], event.actor) == (str(temp_id), admin.actor)
    again = admin.send("retrieve_temp_password", email=email, recipient_public_key=keys.public_key)
    assert again.error is not None
    assert again.error.code == "temp_password_not_available"


def test_automatic_temp_password_is_not_retrievable_by_hand(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _, temp_id = _invited(admin, email)
    reply = admin.send(
        "retrieve_temp_password", email=email, recipient_public_key=RecipientKeys().public_key
    )
    assert reply.error is not None
    assert reply.error.code == "temp_password_not_available"
    assert admin.is_sealed(temp_id)


def test_temp_password_expiry_is_refused_not_due_before_its_ttl(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _, temp_id = _invited(admin, email)
    admin.clock.advance(7 * DAY - SECOND)
    reply = admin.send("expire_temp_password", email=email, temp_password_id=temp_id)
    assert reply.error is not None
    assert reply.error.code == "not_due"
    assert admin.is_sealed(temp_id)


def test_unused_temp_password_expires_after_its_ttl_and_is_shredded(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    admin.ok("configure_tenant", temp_password_ttl=timedelta(hours=1))
    email = new_email()
    _, temp_id = _invited(admin, email)
    before = admin.sealed_count()
    admin.clock.advance(timedelta(hours=1))
    result = _internal(admin, "expire_temp_password", email=email, temp_password_id=temp_id)
    assert result["expired"] is True
    expired = admin.events("TempPasswordExpired")[-1]
    assert expired.data["temp_password_id"] == str(temp_id)
    assert expired.tenant_id == admin.tenant_id  # the administrators are told
    assert service.side_tables.read_sealed(temp_id) is None
    assert admin.sealed_count() == before - 1


def test_expired_temp_password_is_replaced_by_a_resend_only(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    result, temp_id = _invited(admin, email, temp_password_delivery="manual")
    admin.clock.advance(7 * DAY)
    _internal(admin, "expire_temp_password", email=email, temp_password_id=temp_id)
    # Nothing is re-issued by itself, even in manual mode (rule 17).
    assert admin.event_types()[-1] == "TempPasswordExpired"
    resent = admin.ok("resend_invitation", invitation_id=result["invitation_id"])
    assert resent["temp_password_reissued"] is True
    new_id = admin.temp_password_id(email)
    assert new_id != temp_id
    assert service.open_sealed(new_id) is not None
    assert admin.events("TempPasswordIssued")[-1].data["delivery"] == "manual"


def test_changed_password_shreds_the_sealed_copy_and_ends_the_temp_password(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    _, temp_id = _invited(admin, email)
    before = admin.sealed_count()
    admin.ok("record_password_changed", email=email.upper(), actor="service:login")
    assert admin.events("PasswordChanged")[-1].data["email"] == email
    assert service.side_tables.read_sealed(temp_id) is None
    assert admin.sealed_count() == before - 1
    admin.clock.advance(8 * DAY)
    position = admin.position()
    result = _internal(admin, "expire_temp_password", email=email, temp_password_id=temp_id)
    assert result["expired"] is False
    assert admin.position() == position


def test_password_change_for_an_unknown_email_is_refused(admin: Admin, new_email: NewEmail) -> None:
    reply = admin.send("record_password_changed", email=new_email())
    assert reply.error is not None
    assert reply.error.code == "account_not_found"


def test_resend_rotates_an_unused_temp_password(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    result, old_id = _invited(admin, email)
    before = admin.sealed_count()
    position = admin.position()
    resent = admin.ok("resend_invitation", invitation_id=result["invitation_id"])
    assert resent["temp_password_reissued"] is True
    assert admin.event_types(after=position) == [
        "InvitationResent",
        "TempPasswordRevoked",
        "TempPasswordIssued",
    ]
    revoked = admin.events("TempPasswordRevoked")[-1].data
    assert revoked["temp_password_id"] == str(old_id)
    new_id = admin.temp_password_id(email)
    assert new_id != old_id
    assert service.side_tables.read_sealed(old_id) is None
    assert service.open_sealed(new_id) is not None
    assert admin.sealed_count() == before


def test_resend_after_a_delivered_temp_password_issues_a_new_one(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    result, old_id = _invited(admin, email)
    _internal(admin, "record_temp_password_delivered", email=email, temp_password_id=old_id)
    resent = admin.ok("resend_invitation", invitation_id=result["invitation_id"])
    assert resent["temp_password_reissued"] is True
    assert service.open_sealed(admin.temp_password_id(email)) is not None


def test_resend_keeps_the_password_of_a_linked_account(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.ok("register_account", email=email)
    result = admin.invite(email)
    position = admin.position()
    resent = admin.ok("resend_invitation", invitation_id=result["invitation_id"])
    assert resent["temp_password_reissued"] is False
    assert admin.event_types(after=position) == ["InvitationResent"]


def test_resend_keeps_the_password_the_invitee_already_set(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    result, _ = _invited(admin, email)
    admin.ok("record_password_changed", email=email)
    position = admin.position()
    resent = admin.ok("resend_invitation", invitation_id=result["invitation_id"])
    assert resent["temp_password_reissued"] is False
    assert admin.event_types(after=position) == ["InvitationResent"]


def test_revoke_withdraws_an_unused_temp_password(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    result, temp_id = _invited(admin, email)
    before = admin.sealed_count()
    revoked = admin.ok("revoke_invitation", invitation_id=result["invitation_id"])
    assert revoked["temp_password_withdrawn"] is True
    # One transaction saves each aggregate's events together, so only the set is certain.
    assert {"InvitationRevoked", "TempPasswordRevoked"} <= set(admin.event_types())
    assert service.side_tables.read_sealed(temp_id) is None
    assert admin.sealed_count() == before - 1


def test_revoke_leaves_the_password_of_a_linked_account(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.ok("register_account", email=email)
    result = admin.invite(email)
    revoked = admin.ok("revoke_invitation", invitation_id=result["invitation_id"])
    assert revoked["temp_password_withdrawn"] is False
    assert admin.event_types()[-1] == "InvitationRevoked"


def test_delivery_of_an_unknown_account_is_refused(admin: Admin, new_email: NewEmail) -> None:
    reply = admin.send(
        "record_temp_password_delivered", email=new_email(), temp_password_id=uuid4()
    )
    assert reply.error is not None
    assert reply.error.code == "account_not_found"


def test_invite_and_revoke_in_one_batch_leave_no_sealed_copy(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    invite = admin.command("invite_user", email=email, role="user")
    revoke = admin.command("revoke_invitation", email=email)
    replies = service.handle_batch(
        [IncomingCommand("invite_user", invite), IncomingCommand("revoke_invitation", revoke)]
    )
    assert [r.status for r in replies] == ["accepted", "accepted"]
    assert admin.sealed_count() == 0
    # One transaction saves each aggregate's events together, so only the set is certain.
    assert {"InvitationRevoked", "TempPasswordRevoked"} <= set(admin.event_types())


def test_new_invite_after_the_temp_password_expired_unused_issues_a_new_one(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    first, temp_id = _invited(admin, email)
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=first["invitation_id"])
    admin.ok("expire_temp_password", email=email, temp_password_id=temp_id)
    again = admin.invite(email)
    assert again["outcome"] == "temp_password_issued"
    new_id = admin.temp_password_id(email)
    assert new_id != temp_id
    assert service.open_sealed(new_id) is not None
    # The new password belongs to the new invitation: a resend rotates it.
    assert admin.ok("resend_invitation", email=email)["temp_password_reissued"] is True
