"""Tenant settings: defaults, and `invalid_setting` for every out-of-range value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.tenant import DEFAULT_SETTINGS, Tenant, TenantSettings
from shared.contract.codes import RejectionCode

MakeCause = Callable[..., Cause]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _refused_setting(changes: dict[str, Any]) -> DomainError:
    with pytest.raises(DomainError) as refused:
        DEFAULT_SETTINGS.changed_with(changes)
    assert refused.value.code == RejectionCode.INVALID_SETTING
    return refused.value


def test_a_new_tenant_has_the_documented_defaults() -> None:
    assert (
        TenantSettings(
            contractor_enabled=False,
            temp_password_delivery="automatic",
            invitation_ttl=7 * DAY,
            temp_password_ttl=7 * DAY,
            expiry_reminders=(7 * DAY, DAY),
            admin_notification_emails=(),
        )
        == DEFAULT_SETTINGS
    )


@pytest.mark.parametrize("name", ["invitation_ttl", "temp_password_ttl"])
@pytest.mark.parametrize("value", [HOUR, 7 * DAY, 30 * DAY])
def test_ttl_within_one_hour_and_thirty_days_is_accepted(name: str, value: timedelta) -> None:
    assert getattr(DEFAULT_SETTINGS.changed_with({name: value}), name) == value


@pytest.mark.parametrize("name", ["invitation_ttl", "temp_password_ttl"])
@pytest.mark.parametrize("value", [timedelta(0), HOUR - SECOND, 30 * DAY + SECOND, -HOUR])
def test_ttl_outside_one_hour_and_thirty_days_is_refused(name: str, value: timedelta) -> None:
    assert _refused_setting({name: value}).details == {"setting": name}


@pytest.mark.parametrize("offsets", [[SECOND], [365 * DAY], [7 * DAY, DAY, HOUR + SECOND]])
def test_positive_reminder_offsets_up_to_a_year_are_accepted(offsets: list[timedelta]) -> None:
    settings = DEFAULT_SETTINGS.changed_with({"expiry_reminders": offsets})
    assert sorted(settings.expiry_reminders) == sorted(offsets)


@pytest.mark.parametrize("bad", [timedelta(0), -DAY, 365 * DAY + SECOND])
def test_reminder_offset_not_positive_or_over_a_year_is_refused(bad: timedelta) -> None:
    _refused_setting({"expiry_reminders": [DAY, bad]})


def test_repeated_reminder_offsets_are_kept_once() -> None:
    settings = DEFAULT_SETTINGS.changed_with({"expiry_reminders": [DAY, DAY, 7 * DAY]})
    assert settings.expiry_reminders == (7 * DAY, DAY)


def test_admin_notification_emails_are_normalised_and_deduplicated() -> None:
    settings = DEFAULT_SETTINGS.changed_with(
        {"admin_notification_emails": [" Ops@Acme.io", "ops@acme.io", "sec@acme.io"]}
    )
    assert settings.admin_notification_emails == ("ops@acme.io", "sec@acme.io")


def test_an_invalid_admin_notification_email_is_refused() -> None:
    error = _refused_setting({"admin_notification_emails": ["ops@acme.io", "not-an-email"]})
    assert error.details == {"setting": "admin_notification_emails"}


def test_unknown_delivery_mode_is_refused() -> None:
    _refused_setting({"temp_password_delivery": "carrier-pigeon"})


def test_unknown_setting_is_refused() -> None:
    _refused_setting({"colour": "blue"})


def test_only_the_given_settings_change() -> None:
    settings = DEFAULT_SETTINGS.changed_with(
        {"contractor_enabled": True, "temp_password_delivery": "manual"}
    )
    assert settings == TenantSettings(contractor_enabled=True, temp_password_delivery="manual")


def test_settings_survive_their_stored_form() -> None:
    settings = TenantSettings(
        contractor_enabled=True,
        temp_password_delivery="manual",
        invitation_ttl=2 * HOUR,
        temp_password_ttl=3 * DAY,
        expiry_reminders=(30 * DAY, 90 * SECOND),
        admin_notification_emails=("ops@acme.io",),
    )
    assert TenantSettings.from_state(settings.to_state()) == settings


def test_configuring_a_tenant_records_all_settings_and_the_changed_names(
    cause: MakeCause,
) -> None:
    tenant = Tenant.start("acme", cause())
    tenant.configure({"invitation_ttl": 2 * DAY, "contractor_enabled": True}, cause())
    assert tenant.settings == TenantSettings(contractor_enabled=True, invitation_ttl=2 * DAY)
    configured = tenant.collect_events()[-1]
    assert isinstance(configured, Tenant.Configured)
    assert configured.changed == ["contractor_enabled", "invitation_ttl"]
    assert TenantSettings.from_state(configured.settings) == tenant.settings


def test_a_refused_setting_changes_nothing(cause: MakeCause) -> None:
    tenant = Tenant.start("acme", cause())
    tenant.collect_events()
    with pytest.raises(DomainError):
        tenant.configure({"contractor_enabled": True, "invitation_ttl": 31 * DAY}, cause())
    assert tenant.settings == DEFAULT_SETTINGS
    assert tenant.collect_events() == []
