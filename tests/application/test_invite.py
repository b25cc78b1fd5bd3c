"""Rules 1-8: inviting one person, and every refusal `invite_user` can give."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .console import Admin, NewEmail

DAY = timedelta(days=1)


def _refused(admin: Admin, code: str, **fields: object) -> dict[str, object]:
    before = admin.position()
    reply = admin.send("invite_user", **fields)
    assert reply.status == "rejected"
    assert reply.error is not None
    assert reply.error.code == code, reply.error
    assert admin.position() == before, "a refused invite records nothing"
    return reply.error.details


# -- rule 1 ------------------------------------------------------------------------------


def test_invite_normalises_the_email_before_anything_else(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email("bob")
    result = admin.invite(f"  {email.upper()} ")
    invited = admin.events("UserInvited")[-1]
    assert invited.data["email"] == email
    issued = admin.events("TempPasswordIssued")[-1]
    assert issued.data["email"] == email
    details = _refused(admin, "invitation_pending", email=email, role="user")
    assert details["invitation_id"] == result["invitation_id"]


@pytest.mark.parametrize("email", ["bob", "bob@", "@example.com", "bob smith@example.com", ""])
def test_invalid_email_is_refused_invalid_email(admin: Admin, email: str) -> None:
    _refused(admin, "invalid_email", email=email, role="user")


# -- rules 2 and 3 -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "Administrator", ""])
def test_unknown_role_is_refused_invalid_role(admin: Admin, new_email: NewEmail, role: str) -> None:
    _refused(admin, "invalid_role", email=new_email(), role=role)


@pytest.mark.parametrize("role", ["user", "administrator"])
def test_user_and_administrator_roles_are_invited(
    admin: Admin, new_email: NewEmail, role: str
) -> None:
    admin.invite(new_email(), role)
    assert admin.events("UserInvited")[-1].data["role"] == role


def test_contractor_is_refused_contractor_disabled_by_default(
    admin: Admin, new_email: NewEmail
) -> None:
    end = admin.clock.now + 30 * DAY
    _refused(
        admin, "contractor_disabled", email=new_email(), role="contractor", access_expires_at=end
    )


def test_contractor_is_invited_once_the_tenant_enables_contractors(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    end = admin.clock.now + 30 * DAY
    admin.invite(new_email(), "contractor", access_expires_at=end)
    invited = admin.events("UserInvited")[-1].data
    assert (invited["role"], invited["access_expires_at"]) == ("contractor", end.isoformat())


def test_contractor_without_end_date_is_refused_contractor_expiry_required(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    _refused(admin, "contractor_expiry_required", email=new_email(), role="contractor")


@pytest.mark.parametrize("role", ["user", "administrator"])
def test_end_date_on_another_role_is_refused_expiry_not_allowed(
    admin: Admin, new_email: NewEmail, role: str
) -> None:
    end = admin.clock.now + 30 * DAY
    _refused(admin, "expiry_not_allowed", email=new_email(), role=role, access_expires_at=end)


@pytest.mark.parametrize("offset", [timedelta(0), -timedelta(seconds=1), -DAY])
def test_contractor_end_date_not_in_the_future_is_refused_expiry_in_past(
    admin: Admin, new_email: NewEmail, offset: timedelta
) -> None:
    admin.enable_contractors()
    _refused(
        admin,
        "expiry_in_past",
        email=new_email(),
        role="contractor",
        access_expires_at=admin.clock.now + offset,
    )


def test_contractor_end_date_over_five_years_ahead_is_refused_expiry_too_far(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    now = admin.clock.now
    five_years = now.replace(year=now.year + 5)
    _refused(
        admin,
        "expiry_too_far",
        email=new_email(),
        role="contractor",
        access_expires_at=five_years + timedelta(seconds=1),
    )
    admin.invite(new_email(), "contractor", access_expires_at=five_years)


# -- rules 4 and 5 -----------------------------------------------------------------------


def test_existing_account_is_linked_without_a_temp_password(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email("carol")
    admin.ok("register_account", email=email.upper())
    sealed = admin.sealed_count()
    result = admin.invite(email)
    assert (result["outcome"], result["temp_password_delivery"]) == ("account_linked", None)
    assert admin.event_types()[-2:] == ["UserInvited", "AccountLinked"]
    assert not admin.events("TempPasswordIssued")
    assert admin.sealed_count() == sealed


def test_new_email_gets_an_account_and_a_temp_password(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    before = admin.sealed_count()
    result = admin.invite(email)
    assert result["outcome"] == "temp_password_issued"
    assert result["temp_password_delivery"] == "automatic"
    issued = admin.events("TempPasswordIssued")[-1].data
    assert (issued["account_id"], issued["delivery"]) == (result["account_id"], "automatic")
    assert issued["valid_until"] == (admin.clock.now + 7 * DAY).isoformat()
    assert admin.sealed_count() == before + 1
    assert admin.is_sealed(admin.temp_password_id(email))


def test_tenant_delivery_setting_applies_when_the_command_names_none(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.ok("configure_tenant", temp_password_delivery="manual")
    assert admin.invite(new_email())["temp_password_delivery"] == "manual"
    assert admin.events("TempPasswordIssued")[-1].data["delivery"] == "manual"


def test_command_delivery_overrides_the_tenant_setting(admin: Admin, new_email: NewEmail) -> None:
    admin.ok("configure_tenant", temp_password_delivery="manual")
    result = admin.invite(new_email(), temp_password_delivery="automatic")
    assert result["temp_password_delivery"] == "automatic"
    manual = admin.invite(new_email(), temp_password_delivery="manual")
    assert manual["temp_password_delivery"] == "manual"


def test_invite_reply_names_the_invitation_account_and_link_validity(
    admin: Admin, new_email: NewEmail
) -> None:
    result = admin.invite(new_email(), display_name="Bob", locale="fr")
    assert set(result) >= {
        "invitation_id",
        "account_id",
        "outcome",
        "temp_password_delivery",
        "invitation_expires_at",
    }
    assert result["invitation_expires_at"] == (admin.clock.now + 7 * DAY).isoformat()
    invited = admin.events("UserInvited")[-1].data
    assert (invited["display_name"], invited["locale"], invited["link_generation"]) == (
        "Bob",
        "fr",
        1,
    )


def test_invitation_ttl_setting_sets_the_link_validity(admin: Admin, new_email: NewEmail) -> None:
    admin.ok("configure_tenant", invitation_ttl=timedelta(hours=2))
    result = admin.invite(new_email())
    assert result["invitation_expires_at"] == (admin.clock.now + timedelta(hours=2)).isoformat()


# -- rule 6 --------------------------------------------------------------------------------


def test_second_invite_is_refused_invitation_pending_with_its_id(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    first = admin.invite(email)
    details = _refused(admin, "invitation_pending", email=email, role="administrator")
    assert details == {"invitation_id": first["invitation_id"]}


def test_the_same_email_may_be_invited_by_another_tenant(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.invite(email)
    other = Admin(admin.service, admin.secrets_key, admin.clock)
    result = other.invite(email)
    # The account now exists (created by the first tenant's invitation): it is linked.
    assert result["outcome"] == "account_linked"


def test_active_member_is_refused_already_member(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invited = admin.invite(email)
    assert admin.accept(invited["invitation_id"], email).status == "accepted"
    _refused(admin, "already_member", email=email, role="user")


def test_revoked_invitation_no_longer_blocks_a_new_invite(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    first = admin.invite(email)
    admin.ok("revoke_invitation", invitation_id=first["invitation_id"])
    second = admin.invite(email)
    assert second["invitation_id"] != first["invitation_id"]


# -- rules 7 and 8 -------------------------------------------------------------------------


def test_every_invite_records_who_asked_and_when(admin: Admin, new_email: NewEmail) -> None:
    admin.clock.advance(timedelta(minutes=5))
    command = admin.command("invite_user", email=new_email(), role="user", actor="boss@acme.io")
    admin.service.handle("invite_user", command)
    invited = admin.events("UserInvited")[-1]
    assert invited.data["invited_by"] == "boss@acme.io"
    assert invited.actor == "boss@acme.io"
    assert invited.occurred_at == admin.clock.now
    assert invited.correlation_id == str(command.command_id)
    assert invited.tenant_id == admin.tenant_id


def test_administrator_invite_is_published_for_the_other_administrators(
    admin: Admin, new_email: NewEmail
) -> None:
    # The notifier tells the tenant's administrators from this event (rule 8).
    admin.ok("configure_tenant", admin_notification_emails=["Ops@Acme.io"])
    admin.invite(new_email(), "administrator")
    invited = admin.events("UserInvited")[-1]
    assert (invited.tenant_id, invited.data["role"]) == (admin.tenant_id, "administrator")
    configured = admin.events("TenantConfigured")[-1]
    assert configured.data["settings"]["admin_notification_emails"] == ["ops@acme.io"]
