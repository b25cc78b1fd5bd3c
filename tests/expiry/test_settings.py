"""The expiry service's settings."""

from __future__ import annotations

import pytest

from services.expiry.settings import ExpirySettings


def test_the_expiry_service_starts_without_a_secrets_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETS_KEY", raising=False)
    monkeypatch.delenv("DEVELOPMENT_MODE", raising=False)
    monkeypatch.setenv("EXPIRY_POLL_INTERVAL", "0.5")

    settings = ExpirySettings()

    assert settings.expiry_poll_interval == 0.5
    assert settings.expiry_commands_exchange == "invitations.commands"
