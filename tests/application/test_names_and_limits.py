"""What callers write that invitees read (rule 31), and the reminder flood cap."""

from __future__ import annotations

from datetime import timedelta

from .console import Admin, NewEmail

PHISHING = "Your account is locked. Verify now at https://evil.example/login"


def test_an_invite_whose_display_name_holds_a_link_is_refused_and_records_nothing(
    admin: Admin, new_email: NewEmail
) -> None:
    position = admin.position()
    for name in (PHISHING, "security@evil.example", "Jane\r\nBcc: x", "J" * 101):
        reply = admin.send("invite_user", email=new_email(), role="user", display_name=name)
        assert reply.error is not None
        assert reply.error.code == "invalid_name"
        assert reply.error.details["field"] == "display_name"
    assert admin.position() == position


def test_the_inviter_name_is_judged_too_and_recorded_when_fine(
    admin: Admin, new_email: NewEmail
) -> None:
    refused = admin.send("invite_user", email=new_email(), role="user", inviter_name=PHISHING)
    assert refused.error is not None
    assert refused.error.code == "invalid_name"
    assert refused.error.details["field"] == "inviter_name"

    email = new_email()
    admin.invite(email, inviter_name="Jane Doe, IT")
    invited = [e for e in admin.events("UserInvited") if e.data["email"] == email]
    assert invited[0].data["inviter_name"] == "Jane Doe, IT"


def test_a_mass_invite_refuses_only_the_rows_with_a_bad_name(
    admin: Admin, new_email: NewEmail
) -> None:
    good, linked_name, bad = new_email(), new_email(), new_email()
    result = admin.ok(
        "mass_invite",
        invitees=[
            {"email": good, "role": "user", "display_name": "Good Person"},
            {"email": bad, "role": "user", "inviter_name": "evil.example/login"},
            {"email": linked_name, "role": "user", "inviter_name": "Jane Doe"},
        ],
    )
    assert [r["status"] for r in result["rows"]] == ["invited", "refused", "invited"]
    assert result["rows"][1]["error"]["code"] == "invalid_name"
    invited = {e.data["email"]: e.data for e in admin.events("UserInvited")}
    assert bad not in invited
    assert invited[linked_name]["inviter_name"] == "Jane Doe"


def test_register_account_refuses_a_display_name_with_a_control_character(
    admin: Admin, new_email: NewEmail
) -> None:
    reply = admin.send("register_account", email=new_email(), display_name="Bob\x1b[2J")
    assert reply.error is not None
    assert reply.error.code == "invalid_name"


def test_eleven_reminder_offsets_are_refused_invalid_setting_and_change_nothing(
    admin: Admin,
) -> None:
    admin.ok("configure_tenant", expiry_reminders=["P2D"])
    position = admin.position()
    flood = [timedelta(seconds=s) for s in range(1, 12)]
    reply = admin.send("configure_tenant", expiry_reminders=flood)
    assert reply.error is not None
    assert reply.error.code == "invalid_setting"
    assert admin.position() == position
    many = [timedelta(seconds=s) for s in range(1, 100_001)]
    assert admin.send("configure_tenant", expiry_reminders=many).error is not None
    assert admin.position() == position
