"""Rule 36: every email's advice is something its reader can do, in the state it is sent in.

For each kind of email: the history that makes the notifier send it (real events from the
real service), the email as planned from that history and rendered (its advice is in the
text), then each command that advice names, sent to the service: each is accepted. An
advice given through the operator CLI (the mass-invite report) is followed through the
CLI's own functions.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from nacl.public import PrivateKey

from services.cli.report import build_report, wanted_sheets
from services.invitation.eventstore import EventLog
from services.notifier.adapters.rendering import Renderer
from services.notifier.domain.emails import Kind, PlannedEmail
from services.notifier.domain.planning import Json, plan

from .console import Admin, NewEmail

DAY = timedelta(days=1)
EXPIRY = "service:expiry"
Command = tuple[str, dict[str, Any]]


class MemoryState:
    """The notifier's planning state, in memory: planning is a pure fold of the history."""

    def __init__(self) -> None:
        self.values: dict[str, Json] = {}

    def get(self, key: str) -> Json | None:
        value = self.values.get(key)
        return None if value is None else {**value}

    def put(self, key: str, value: Json) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def planned(admin: Admin) -> list[PlannedEmail]:
    state = MemoryState()
    log = EventLog("", store=admin.service.store)
    return [email for envelope in log.iterate() for email in plan(state, envelope)]


@dataclass
class Scenario:
    """A state in which an email goes out, and what its advice tells the reader to do."""

    advice: str  # in the English email's text
    commands: list[Command] = field(default_factory=list)
    # Advice through the operator CLI: a check run in-process instead of a command.
    cli: Callable[[Admin, Path], None] | None = None


def joined(admin: Admin, email: str, role: str = "user", **fields: Any) -> str:
    invitation_id = str(admin.invite(email, role, **fields)["invitation_id"])
    assert admin.accept(invitation_id, email).status == "accepted"
    return invitation_id


def contractor(admin: Admin, email: str) -> Any:
    admin.enable_contractors()
    end = admin.clock.now + 30 * DAY
    joined(admin, email, "contractor", access_expires_at=end)
    return end


def _linked(admin: Admin, new: NewEmail) -> Scenario:
    email = new()
    admin.ok("register_account", email=email)
    invitation_id = admin.invite(email)["invitation_id"]
    token = admin.token(invitation_id)
    return Scenario(
        "Sign in with it to accept the invitation",
        [("accept_invitation", {"token": token, "email": email, "actor": email})],
    )


def _automatic(admin: Admin, new: NewEmail) -> Scenario:
    email = new()
    token = admin.token(admin.invite(email)["invitation_id"])
    return Scenario(
        "change it when you first sign in",
        [
            ("accept_invitation", {"token": token, "email": email, "actor": email}),
            ("record_password_changed", {"email": email, "actor": "login-frontend"}),
        ],
    )


def _manual(admin: Admin, new: NewEmail) -> Scenario:
    email = new()
    token = admin.token(admin.invite(email, temp_password_delivery="manual")["invitation_id"])
    return Scenario(
        "Accept the invitation",
        [("accept_invitation", {"token": token, "email": email, "actor": email})],
    )


def _reminded(admin: Admin, email: str) -> Any:
    end = contractor(admin, email)
    admin.clock.now = end - DAY
    admin.ok("remind_contractor_expiry", email=email, offset=DAY, actor=EXPIRY)
    return end


def _expired(admin: Admin, email: str) -> None:
    admin.clock.now = contractor(admin, email)
    admin.ok("expire_contractor", email=email, actor=EXPIRY)


def _extend(email: str, end: Any) -> Command:
    return ("set_contractor_expiry", {"email": email, "access_expires_at": end + 30 * DAY})


def _invite_again(admin: Admin, email: str, role: str = "contractor") -> Command:
    fields: dict[str, Any] = {"email": email, "role": role}
    if role == "contractor":
        fields["access_expires_at"] = admin.clock.now + 30 * DAY
    return ("invite_user", fields)


def _reminder(admin: Admin, new: NewEmail) -> Scenario:
    email = new("contractor")
    end = _reminded(admin, email)
    return Scenario("ask the organisation's administrators to extend it", [_extend(email, end)])


def _ended(admin: Admin, new: NewEmail) -> Scenario:
    email = new("contractor")
    _expired(admin, email)
    return Scenario("ask the organisation's administrators to invite you again", [
        _invite_again(admin, email)
    ])  # fmt: skip


def _administrator_invited(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    second = new("second")
    admin.invite(second, "administrator")
    return Scenario("review the invitation and revoke it", [
        ("revoke_invitation", {"email": second})
    ])  # fmt: skip


def _accepted(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    member = new()
    joined(admin, member)
    return Scenario(
        "You can change their role, or remove them from the organisation",
        [
            ("change_role", {"email": member, "role": "administrator"}),
            ("remove_member", {"email": member}),
        ],
    )


def _approaching(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    email = new("contractor")
    end = _reminded(admin, email)
    return Scenario("change their end date before then", [_extend(email, end)])


def _contractor_expired(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    email = new("contractor")
    _expired(admin, email)
    return Scenario("invite them again", [_invite_again(admin, email)])


def _temp_password_expired(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    email = new()
    invitation_id = admin.invite(email)["invitation_id"]
    temp_password_id = admin.temp_password_id(email)
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=invitation_id, actor=EXPIRY)
    admin.ok("expire_temp_password", email=email, temp_password_id=temp_password_id, actor=EXPIRY)
    return Scenario("Resend the invitation", [("resend_invitation", {"email": email})])


def _public_key() -> str:
    return base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()


def _report(admin: Admin, tmp_path: Path) -> None:
    """What `invitations report BATCH --temp-passwords DIR` sends: one sealed retrieval per
    manual password still awaiting it, each accepted."""
    batch_id = admin.events("MassInviteCompleted")[-1].data["batch_id"]
    store = admin.service.store
    report = build_report(store, store.recorder.audit, UUID(batch_id))  # type: ignore[attr-defined]
    assert report is not None and report.rows
    wanted, refused = wanted_sheets(report)
    assert wanted and not refused
    for sheet in wanted:
        admin.ok(
            "retrieve_temp_password",
            invitation_id=sheet.invitation_id,
            recipient_public_key=_public_key(),
            actor="operator:test",
        )


def _mass_invite(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    admin.ok(
        "mass_invite",
        invitees=[{"email": new(), "role": "user"}, {"email": "bad", "role": "user"}],
        temp_password_delivery="manual",
    )
    return Scenario("invitations report", cli=_report)


def _manual_password(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    email = new()
    admin.invite(email, temp_password_delivery="manual")
    fields = {"email": email, "recipient_public_key": _public_key()}
    return Scenario("retrieve_temp_password", [("retrieve_temp_password", fields)])


def _one_administrator(admin: Admin, new: NewEmail) -> Scenario:
    member = new()
    joined(admin, member)
    joined(admin, new("first"), "administrator")
    return Scenario(
        "by inviting them as an administrator or by changing a member's role",
        [
            ("invite_user", {"email": new("second"), "role": "administrator"}),
            ("change_role", {"email": member, "role": "administrator"}),
        ],
    )


def _removed(admin: Admin, new: NewEmail) -> Scenario:
    member = new()
    joined(admin, member)
    admin.ok("remove_member", email=member)
    return Scenario("ask the organisation's administrators to invite you again", [
        _invite_again(admin, member, "user")
    ])  # fmt: skip


def _role_changed(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    member = new()
    joined(admin, member)
    admin.ok("change_role", email=member, role="administrator")
    return Scenario("ask the organisation's administrators", [
        ("change_role", {"email": member, "role": "user"})
    ])  # fmt: skip


def _failed(admin: Admin, new: NewEmail) -> Scenario:
    joined(admin, new("first"), "administrator")
    typo = new("typo")
    invitation_id = admin.invite(typo)["invitation_id"]
    admin.ok(
        "record_notification_failed",
        actor="service:notifier",
        message_key=uuid4(),
        kind="invitation_automatic",
        recipient=typo,
        invitation_id=invitation_id,
        reason="550 5.1.1 no such mailbox",
    )
    return Scenario(
        "revoke the invitation and invite the right address; if it is right, resend",
        [
            ("resend_invitation", {"email": typo}),
            ("revoke_invitation", {"email": typo}),
            ("invite_user", {"email": new("right"), "role": "user"}),
        ],
    )


SCENARIOS: dict[Kind, Callable[[Admin, NewEmail], Scenario]] = {
    Kind.INVITATION_LINKED: _linked,
    Kind.INVITATION_AUTOMATIC: _automatic,
    Kind.INVITATION_MANUAL: _manual,
    Kind.CONTRACTOR_EXPIRY_REMINDER: _reminder,
    Kind.CONTRACTOR_ACCESS_ENDED: _ended,
    Kind.ADMIN_ADMINISTRATOR_INVITED: _administrator_invited,
    Kind.ADMIN_INVITATION_ACCEPTED: _accepted,
    Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING: _approaching,
    Kind.ADMIN_CONTRACTOR_EXPIRED: _contractor_expired,
    Kind.ADMIN_TEMP_PASSWORD_EXPIRED: _temp_password_expired,
    Kind.ADMIN_MASS_INVITE_COMPLETED: _mass_invite,
    Kind.ADMIN_MANUAL_PASSWORDS_PENDING: _manual_password,
    Kind.ADMIN_ONE_ADMINISTRATOR: _one_administrator,
    Kind.MEMBER_REMOVED: _removed,
    Kind.MEMBER_ROLE_CHANGED: _role_changed,
    Kind.ADMIN_NOTIFICATION_FAILED: _failed,
}


def test_every_kind_of_email_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind))
def test_the_advice_of_each_email_is_accepted_when_followed(
    admin: Admin, new_email: NewEmail, kind: Kind, tmp_path: Path
) -> None:
    scenario = SCENARIOS[kind](admin, new_email)

    emails = [e for e in planned(admin) if e.kind == kind]
    assert emails, f"the scenario sends no {kind}"
    email = emails[-1]
    rendered = Renderer("Cloud Vault").render(
        kind, "en", email.context, link="https://vault.test/accept?token=T", password="P"
    )
    assert scenario.advice in " ".join(rendered.text.split()), rendered.text

    for name, fields in scenario.commands:
        reply = admin.send(name, **fields)
        assert reply.status == "accepted", (name, reply.error)
    if scenario.cli is not None:
        scenario.cli(admin, tmp_path)


def test_no_expired_unused_notice_follows_an_accepted_invitation(
    admin: Admin, new_email: NewEmail
) -> None:
    # The invitee signed in with the temporary password and never set their own: the
    # invitation cannot be resent, so the notice (whose advice is a resend) is not sent.
    joined(admin, new_email("first"), "administrator")
    email = new_email()
    joined(admin, email)
    temp_password_id = admin.temp_password_id(email)
    admin.clock.advance(7 * DAY)
    admin.ok("expire_temp_password", email=email, temp_password_id=temp_password_id, actor=EXPIRY)
    assert admin.events("TempPasswordExpired")
    assert [e for e in planned(admin) if e.kind == Kind.ADMIN_TEMP_PASSWORD_EXPIRED] == []
    assert admin.send("resend_invitation", email=email).status == "rejected"
