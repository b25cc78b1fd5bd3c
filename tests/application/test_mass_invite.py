"""Rules 9 and 10: mass invite judges each row on its own and stores its report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from services.invitation.domain.batch import MassInvite

from .console import Admin, NewEmail

DAY = timedelta(days=1)


def _report(admin: Admin, batch_id: str) -> MassInvite:
    report: object = admin.service.store.repository.get(UUID(batch_id))
    assert isinstance(report, MassInvite)
    return report


def test_each_row_is_judged_on_its_own_in_input_order(admin: Admin, new_email: NewEmail) -> None:
    registered, pending, good = new_email("reg"), new_email("pending"), new_email("good")
    admin.ok("register_account", email=registered)
    pending_id = admin.invite(pending)["invitation_id"]
    end = admin.clock.now + 30 * DAY
    rows: list[dict[str, Any]] = [
        {"email": good.upper(), "role": "user", "display_name": "Good"},
        {"email": "not-an-email", "role": "user"},
        {"email": new_email(), "role": "owner"},
        {"email": good, "role": "administrator"},  # the same person again
        {"email": new_email(), "role": "contractor", "access_expires_at": end},  # disabled
        {"email": registered, "role": "administrator"},
        {"email": pending, "role": "user"},
        {"email": new_email(), "role": "user", "access_expires_at": end},
    ]
    result = admin.ok("mass_invite", invitees=rows)
    statuses = [(r["index"], r["status"], r.get("error", {}).get("code")) for r in result["rows"]]
    assert statuses == [
        (0, "invited", None),
        (1, "refused", "invalid_email"),
        (2, "refused", "invalid_role"),
        (3, "refused", "duplicate_in_batch"),
        (4, "refused", "contractor_disabled"),
        (5, "invited", None),
        (6, "refused", "invitation_pending"),
        (7, "refused", "expiry_not_allowed"),
    ]
    assert result["rows"][6]["error"]["details"] == {"invitation_id": pending_id}
    assert (result["invited"], result["refused"]) == (2, 6)
    assert result["rows"][0]["email"] == good
    assert result["rows"][0]["outcome"] == "temp_password_issued"
    assert result["rows"][5]["outcome"] == "account_linked"
    invited = admin.events("UserInvited")[-2:]
    assert [e.data["batch_id"] for e in invited] == [result["batch_id"]] * 2
    assert [e.data["email"] for e in invited] == [good, registered]


def test_repeated_email_is_refused_duplicate_in_batch_for_all_but_its_first_row(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    rows = [
        {"email": email, "role": "user"},
        {"email": email.upper(), "role": "administrator"},
        {"email": f"  {email} ", "role": "user"},
    ]
    result = admin.ok("mass_invite", invitees=rows)
    assert [r["status"] for r in result["rows"]] == ["invited", "refused", "refused"]
    assert {r["error"]["code"] for r in result["rows"][1:]} == {"duplicate_in_batch"}
    assert [e.data["role"] for e in admin.events("UserInvited")] == ["user"]


def test_report_is_stored_and_announced(admin: Admin, new_email: NewEmail) -> None:
    rows = [{"email": new_email(), "role": "user"} for _ in range(3)] + [
        {"email": "bad", "role": "user"}
    ]
    result = admin.ok("mass_invite", invitees=rows, temp_password_delivery="manual")
    completed = admin.events("MassInviteCompleted")[-1]
    assert completed.data == {"batch_id": result["batch_id"], "invited": 3, "refused": 1}
    assert completed.tenant_id == admin.tenant_id
    report = _report(admin, result["batch_id"])
    assert report.rows == result["rows"]
    assert {r.get("temp_password_delivery") for r in report.rows[:3]} == {"manual"}
    assert [e.data["delivery"] for e in admin.events("TempPasswordIssued")] == ["manual"] * 3


def test_every_invited_row_gets_its_own_sealed_temp_password(
    admin: Admin, new_email: NewEmail
) -> None:
    emails = [new_email() for _ in range(5)]
    admin.ok("mass_invite", invitees=[{"email": e, "role": "user"} for e in emails])
    assert admin.sealed_count() == 5
    opened = {admin.service.open_sealed(admin.temp_password_id(e)) for e in emails}
    assert None not in opened
    assert len(opened) == 5


def test_mass_invite_with_only_bad_rows_still_reports(admin: Admin) -> None:
    result = admin.ok("mass_invite", invitees=[{"email": "x", "role": "user"}])
    assert (result["invited"], result["refused"]) == (0, 1)
    assert admin.event_types() == ["MassInviteCompleted"]


def test_more_than_ten_thousand_invitees_are_refused_batch_too_large(admin: Admin) -> None:
    rows = [{"email": f"u{i}@example.com", "role": "user"} for i in range(10_001)]
    reply = admin.send("mass_invite", invitees=rows)
    assert reply.error is not None
    assert reply.error.code == "batch_too_large"
    assert reply.error.details == {"max": 10_000, "given": 10_001}
    assert admin.position() == 0


def _ten_thousand_rows(
    tag: str, contractor_end: object
) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Rows with bad ones mixed in, and the refusal code each should get (None: invited)."""
    rows: list[dict[str, Any]] = []
    for i in range(10_000):
        email, role = f"u{i}-{tag}@example.com", "user"
        if i % 97 == 1:
            email = f"broken-{i}-{tag}"
        elif i % 89 == 2:
            role = "superuser"
        elif i % 83 == 3:
            email = f"  U{i - 1}-{tag}@Example.COM"  # the previous row's person again
        elif i % 1000 == 500:
            role = "contractor"
        row: dict[str, Any] = {"email": email, "role": role}
        if role == "contractor":
            row["access_expires_at"] = contractor_end
        rows.append(row)
    expected: list[str | None] = []
    seen: set[str] = set()
    for row in rows:
        email = row["email"].strip().lower()
        if "@" not in email:
            expected.append("invalid_email")
        elif email in seen:
            expected.append("duplicate_in_batch")  # even when its first row was refused
        elif row["role"] == "superuser":
            expected.append("invalid_role")
        elif row["role"] == "contractor":
            expected.append("contractor_disabled")
        else:
            expected.append(None)
        seen.add(email)
    return rows, expected


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_ten_thousand_invitees_with_bad_rows_mixed_in(admin: Admin, new_email: NewEmail) -> None:
    tag = new_email("x").split("@")[0]
    rows, expected = _ten_thousand_rows(tag, admin.clock.now + 30 * DAY)
    assert {code for code in expected} == {
        None,
        "invalid_email",
        "invalid_role",
        "duplicate_in_batch",
        "contractor_disabled",
    }
    result = admin.ok("mass_invite", invitees=rows)
    got = [(r["index"], r.get("error", {}).get("code")) for r in result["rows"]]
    assert got == list(enumerate(expected))
    invited = expected.count(None)
    assert (result["invited"], result["refused"]) == (invited, 10_000 - invited)
    completed = admin.events("MassInviteCompleted")[-1].data
    assert completed == {
        "batch_id": result["batch_id"],
        "invited": invited,
        "refused": 10_000 - invited,
    }
    assert len(_report(admin, result["batch_id"]).rows) == 10_000
    assert len(admin.events("UserInvited")) == invited
    assert admin.sealed_count() == invited
