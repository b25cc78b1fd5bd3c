"""Rule 33: a manual temporary password, sealed to the caller's key, once."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from services.invitation.application import InvitationService
from services.invitation.domain.account import Account
from services.invitation.domain.ids import account_uuid
from shared.sealed_box import RecipientKeys
from shared.secrets import HashCost, TempPasswordHasher

from .console import Admin, NewEmail

CHEAP = TempPasswordHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))


def _manual(admin: Admin, email: str) -> str:
    return str(admin.invite(email, temp_password_delivery="manual")["invitation_id"])


def test_the_password_opens_only_with_the_callers_key_and_is_the_one_issued(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = _manual(admin, email)
    keys = RecipientKeys()

    result = admin.ok(
        "retrieve_temp_password", invitation_id=invitation_id, recipient_public_key=keys.public_key
    )

    assert set(result) == {
        "invitation_id",
        "email",
        "sealed_temp_password",
        "valid_until",
        "sealed_copy_destroyed",
    }
    assert (result["invitation_id"], result["email"]) == (invitation_id, email)
    password = keys.open(result["sealed_temp_password"])
    account = service.store.repository.get(account_uuid(email))
    assert isinstance(account, Account)
    assert account.temp_hash is not None
    assert CHEAP.verify(account.temp_hash, password)
    assert datetime.fromisoformat(result["valid_until"]) == account.temp_valid_until
    with pytest.raises(ValueError, match="does not open"):
        RecipientKeys().open(result["sealed_temp_password"])
    retrieved = admin.events("TempPasswordRetrieved")
    assert [(e.data["invitation_id"], e.actor, e.tenant_id) for e in retrieved] == [
        (invitation_id, admin.actor, admin.tenant_id)
    ]


def test_the_same_command_again_is_answered_without_the_sealed_password(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    _manual(admin, email)
    command = admin.command(
        "retrieve_temp_password", email=email, recipient_public_key=RecipientKeys().public_key
    )

    first = service.handle("retrieve_temp_password", command)
    again = service.handle("retrieve_temp_password", command)

    assert first.result is not None
    assert again.result is not None
    assert first.result["sealed_temp_password"] is not None
    assert again.result == {**first.result, "sealed_temp_password": None}
    assert len(admin.events("TempPasswordRetrieved")) == 1


def test_a_malformed_public_key_is_an_invalid_command(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _manual(admin, email)
    short = base64.b64encode(b"\x01" * 16).decode()
    with pytest.raises(ValidationError):
        admin.command("retrieve_temp_password", email=email, recipient_public_key=short)
    with pytest.raises(ValidationError):
        admin.command("retrieve_temp_password", email=email, recipient_public_key="not base64!")

    # 32 bytes, but a low-order point: no box can be sealed to it. Nothing changes.
    zero = base64.b64encode(bytes(32)).decode()
    reply = admin.send("retrieve_temp_password", email=email, recipient_public_key=zero)

    assert reply.error is not None
    assert reply.error.code == "invalid_command"
    keys = RecipientKeys()
    retrieved = admin.ok(
        "retrieve_temp_password", email=email, recipient_public_key=keys.public_key
    )
    assert keys.open(retrieved["sealed_temp_password"])


def test_only_a_live_manual_password_of_this_tenant_can_be_retrieved(
    admin: Admin, new_email: NewEmail
) -> None:
    manual, automatic, linked = (new_email(n) for n in ("manual", "auto", "linked"))
    manual_id = _manual(admin, manual)
    admin.invite(automatic)
    admin.ok("register_account", email=linked)
    admin.invite(linked)
    key = RecipientKeys().public_key
    other = Admin(admin.service, admin.secrets_key, admin.clock)

    def code(sender: Admin, **fields: str) -> str | None:
        reply = sender.send("retrieve_temp_password", recipient_public_key=key, **fields)
        return None if reply.error is None else reply.error.code

    assert code(other, invitation_id=manual_id) == "invitation_not_found"
    assert code(admin, email=new_email("nobody")) == "invitation_not_found"
    assert code(admin, email=automatic) == "temp_password_not_available"
    assert code(admin, email=linked) == "temp_password_not_available"
    assert code(admin, invitation_id=manual_id) is None
    assert code(admin, invitation_id=manual_id) == "temp_password_not_available"


def test_a_resend_issues_a_new_manual_password_that_can_be_retrieved_once(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = _manual(admin, email)
    keys = RecipientKeys()
    first = admin.ok("retrieve_temp_password", email=email, recipient_public_key=keys.public_key)
    admin.ok("resend_invitation", invitation_id=invitation_id)

    second = admin.ok("retrieve_temp_password", email=email, recipient_public_key=keys.public_key)

    assert keys.open(first["sealed_temp_password"]) != keys.open(second["sealed_temp_password"])
    state = admin.ok("get_invitation", invitation_id=invitation_id)["invitation"]
    assert state["temp_password"] == "retrieved"
    assert admin.temp_password_id(email) == UUID(
        admin.events("TempPasswordRetrieved")[-1].data["temp_password_id"]
    )


def test_a_retrieval_records_the_sender_beside_the_actor(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    _manual(admin, email)
    command = admin.command(
        "retrieve_temp_password", email=email, recipient_public_key=RecipientKeys().public_key
    )

    reply = service.handle("retrieve_temp_password", command, sender="portal-backend")

    assert reply.status == "accepted"
    (event,) = admin.events("TempPasswordRetrieved")
    assert (event.actor, event.sender) == (admin.actor, "portal-backend")
