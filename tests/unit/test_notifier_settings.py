"""The notifier's timing settings: a new leader waits out the transfer bound, not the
whole SMTP timeout; the transfer bound never exceeds the SMTP timeout."""

from __future__ import annotations

import pytest

from services.notifier.settings import NotifierSettings
from shared.settings import ConfigurationError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting from the shell running the tests: each test sets its own."""
    for name in NotifierSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")
    return monkeypatch


def test_a_new_leader_waits_the_ttl_and_the_transfer_bound_not_the_smtp_timeout() -> None:
    settings = load_settings(NotifierSettings)
    assert settings.smtp_timeout == 30
    assert settings.transfer_timeout == 10
    assert settings.notifier_lease_ttl == 3
    assert settings.lease_holds_for == 3 + 10 + 1


def test_the_transfer_bound_is_a_setting_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_TRANSFER_TIMEOUT", "20")
    monkeypatch.setenv("NOTIFIER_LEASE_TTL", "6")
    settings = load_settings(NotifierSettings)
    assert settings.transfer_timeout == 20
    assert settings.lease_holds_for == 6 + 20 + 1


def test_a_transfer_bound_above_the_smtp_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_TIMEOUT", "5")
    monkeypatch.setenv("NOTIFIER_TRANSFER_TIMEOUT", "8")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(NotifierSettings)
    assert "NOTIFIER_TRANSFER_TIMEOUT must not exceed SMTP_TIMEOUT" in str(refused.value)


def test_the_default_transfer_bound_follows_a_shorter_smtp_timeout_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_TIMEOUT", "2")
    settings = load_settings(NotifierSettings)
    assert settings.transfer_timeout == 2
    assert settings.lease_holds_for == settings.notifier_lease_ttl + 2 + 1
