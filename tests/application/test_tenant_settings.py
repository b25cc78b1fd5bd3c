"""Tenant settings through `configure_tenant`, and `invalid_setting`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .console import Admin

DAY = timedelta(days=1)


def test_configure_records_every_setting_and_the_changed_names(admin: Admin) -> None:
    result = admin.ok(
        "configure_tenant",
        contractor_enabled=True,
        invitation_ttl=timedelta(hours=36),
        expiry_reminders=[timedelta(seconds=90), 14 * DAY],
    )
    expected = {
        "contractor_enabled": True,
        "temp_password_delivery": "automatic",
        "invitation_ttl": "P1DT12H",
        "temp_password_ttl": "P7D",
        "expiry_reminders": ["P14D", "PT1M30S"],
        "admin_notification_emails": [],
    }
    assert result["settings"] == expected
    configured = admin.events("TenantConfigured")[-1]
    assert configured.tenant_id == admin.tenant_id
    assert configured.data == {
        "settings": expected,
        "changed": ["contractor_enabled", "expiry_reminders", "invitation_ttl"],
    }


def test_later_changes_keep_earlier_settings(admin: Admin) -> None:
    admin.ok("configure_tenant", contractor_enabled=True)
    result = admin.ok("configure_tenant", temp_password_delivery="manual")
    assert result["settings"]["contractor_enabled"] is True
    assert result["changed"] == ["temp_password_delivery"]


@pytest.mark.parametrize(
    "change",
    [
        {"invitation_ttl": timedelta(minutes=59)},
        {"invitation_ttl": 30 * DAY + timedelta(seconds=1)},
        {"temp_password_ttl": timedelta(0)},
        {"temp_password_ttl": 31 * DAY},
        {"expiry_reminders": [timedelta(0)]},
        {"expiry_reminders": [DAY, 366 * DAY]},
        {"admin_notification_emails": ["ops@acme.io", "ops"]},
    ],
    ids=lambda change: next(iter(change)),
)
def test_out_of_range_setting_is_refused_invalid_setting(
    admin: Admin, change: dict[str, object]
) -> None:
    admin.ok("configure_tenant", contractor_enabled=True)
    before = admin.position()
    reply = admin.send("configure_tenant", contractor_enabled=False, **change)
    assert reply.error is not None
    assert reply.error.code == "invalid_setting"
    assert reply.error.details == {"setting": next(iter(change))}
    assert admin.position() == before
    assert admin.ok("configure_tenant")["settings"]["contractor_enabled"] is True


def test_refused_setting_on_a_new_tenant_creates_nothing(admin: Admin) -> None:
    reply = admin.send("configure_tenant", invitation_ttl=timedelta(minutes=1))
    assert reply.error is not None
    assert admin.position() == 0


def test_turning_contractors_off_refuses_new_contractor_invites(admin: Admin) -> None:
    admin.enable_contractors()
    admin.ok("configure_tenant", contractor_enabled=False)
    reply = admin.send(
        "invite_user",
        email="c@example.com",
        role="contractor",
        access_expires_at=admin.clock.now + DAY,
    )
    assert reply.error is not None
    assert reply.error.code == "contractor_disabled"
