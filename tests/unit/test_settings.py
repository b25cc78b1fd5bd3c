"""Settings never show a secret: not in a configuration error, not in a repr, not at start.

Also: the `<NAME>_FILE` variants (Docker secrets), the development-mode warning, and the
refusal of secrets keys that were visibly not made by a random generator.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.expiry.settings import ExpirySettings
from services.invitation.settings import InvitationSettings
from services.notifier.settings import NotifierSettings
from shared.settings import (
    ConfigurationError,
    ServiceSettings,
    load_settings,
    mask_url_password,
    secrets_key_weakness,
    warn_if_development_mode,
)

AMQP_PASSWORD = "amqp-" + secrets.token_hex(8)
DATABASE_PASSWORD = "db-" + secrets.token_hex(8)
SMTP_PASSWORD = "smtp-" + secrets.token_hex(8)
AMQP_URL = f"amqp://invitation:{AMQP_PASSWORD}@rabbitmq:5672/"
DATABASE_URL = f"postgresql://invitation:{DATABASE_PASSWORD}@postgres:5432/invitations"


def random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def key_of(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def pieces(secret: str, size: int = 4) -> set[str]:
    """Every run of `size` characters of `secret`: none may appear where it is shown."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def shows_any_of(text: str, secret: str) -> bool:
    return any(piece in text for piece in pieces(secret))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting from the shell running the tests: each test sets its own."""
    for name in NotifierSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    return monkeypatch


def configuration_error(cls: type[ServiceSettings]) -> str:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(cls)
    return str(raised.value)


# -- errors name the setting, never the value -----------------------------------------------


def test_a_malformed_secrets_key_is_named_without_showing_any_part_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = base64.b64encode(os.urandom(31)).decode()  # one byte short
    monkeypatch.setenv("SECRETS_KEY", key)

    message = configuration_error(InvitationSettings)

    assert message == "SECRETS_KEY must be base64 of exactly 32 random bytes"
    assert not shows_any_of(message, key)


def test_pydantics_own_error_hides_the_inputs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # For code that builds settings without the loader (tests, benchmarks).
    key = base64.b64encode(os.urandom(31)).decode()
    monkeypatch.setenv("SECRETS_KEY", key)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)

    with pytest.raises(ValidationError) as raised:
        NotifierSettings()

    shown = str(raised.value)
    assert "SECRETS_KEY" in shown
    assert not shows_any_of(shown, key)
    assert DATABASE_PASSWORD not in shown
    assert SMTP_PASSWORD not in shown


def test_url_passwords_are_not_in_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", AMQP_URL)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("HTTP_PORT", "eighty")

    message = configuration_error(InvitationSettings)

    assert message.startswith("HTTP_PORT: Input should be a valid integer")
    assert AMQP_PASSWORD not in message
    assert DATABASE_PASSWORD not in message


def test_url_passwords_are_masked_in_the_repr_of_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMQP_URL", AMQP_URL)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("SECRETS_KEY", key := random_key())

    settings = load_settings(InvitationSettings)

    for shown in (repr(settings), str(settings)):
        assert "amqp://invitation:***@rabbitmq:5672/" in shown
        assert "postgresql://invitation:***@postgres:5432/invitations" in shown
        assert AMQP_PASSWORD not in shown
        assert DATABASE_PASSWORD not in shown
        assert not shows_any_of(shown, key)
    # What the services connect with is unchanged.
    assert settings.amqp_url == AMQP_URL
    assert settings.database_url == DATABASE_URL


def test_the_smtp_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The error a missing key raises is about the whole model, whose input held everything.
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)

    message = configuration_error(NotifierSettings)

    assert message.startswith("SECRETS_KEY is required unless DEVELOPMENT_MODE=true")
    assert SMTP_PASSWORD not in message

    monkeypatch.setenv("DEVELOPMENT_MODE", "true")
    settings = load_settings(NotifierSettings)
    assert SMTP_PASSWORD not in repr(settings)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == SMTP_PASSWORD


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("postgresql://u:p%40ss@h/db?schema=x", "postgresql://u:***@h/db?schema=x"),
        ("postgresql://u:a:b@c@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=***"),
        ("postgresql://root@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"),
        ("sqlite:///var/store.db", "sqlite:///var/store.db"),
        ("amqp://u:pw@[::1/", "amqp:***"),
    ],
)
def test_a_url_is_shown_with_its_password_masked(url: str, shown: str) -> None:
    assert mask_url_password(url) == shown


# -- <NAME>_FILE ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRETS_KEY", random_key()),
        ("SMTP_PASSWORD", SMTP_PASSWORD),
        ("AMQP_URL", AMQP_URL),
        ("DATABASE_URL", DATABASE_URL),
    ],
    # Named by the variable alone: the same ids in every xdist worker (the values are
    # random), and no secret in a test's name.
    ids=["SECRETS_KEY", "SMTP_PASSWORD", "AMQP_URL", "DATABASE_URL"],
)
def test_each_secret_setting_can_be_read_from_the_file_its_file_variable_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    secret_file = tmp_path / variable.lower()
    secret_file.write_text(value + "\n")  # as `echo` writes it
    monkeypatch.setenv(f"{variable}_FILE", str(secret_file))
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")

    settings = load_settings(NotifierSettings)

    read = getattr(settings, variable.lower())
    assert (read if isinstance(read, str) else read.get_secret_value()) == value


def test_a_secret_given_both_directly_and_by_file_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "smtp_password"
    secret_file.write_text(SMTP_PASSWORD)
    monkeypatch.setenv("SMTP_PASSWORD", "another-" + SMTP_PASSWORD)
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(secret_file))
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")

    message = configuration_error(NotifierSettings)

    assert message == "SMTP_PASSWORD and SMTP_PASSWORD_FILE are both set: give one"


def test_an_empty_variable_beside_its_file_variant_leaves_the_file_in_charge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Compose renders `SECRETS_KEY: ${SECRETS_KEY:-}` as an empty variable.
    key = random_key()
    (tmp_path / "key").write_text(key)
    monkeypatch.setenv("SECRETS_KEY", "")
    monkeypatch.setenv("SECRETS_KEY_FILE", str(tmp_path / "key"))

    settings = load_settings(InvitationSettings)

    assert settings.secrets_key is not None
    assert settings.secrets_key.get_secret_value() == key


def test_a_missing_or_empty_secret_file_is_named_with_the_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "absent"))
    assert configuration_error(InvitationSettings) == (
        f"DATABASE_URL_FILE: cannot read {tmp_path / 'absent'}: No such file or directory"
    )

    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "empty"))
    assert configuration_error(InvitationSettings) == (
        f"DATABASE_URL_FILE: {tmp_path / 'empty'} is empty"
    )


def test_a_malformed_key_read_from_a_file_is_not_shown_either(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = "%" + secrets.token_urlsafe(30)  # % is in neither base64 alphabet
    (tmp_path / "key").write_text(key)
    monkeypatch.setenv("SECRETS_KEY_FILE", str(tmp_path / "key"))

    message = configuration_error(InvitationSettings)

    assert "SECRETS_KEY" in message
    assert not shows_any_of(message, key)


# -- development mode -----------------------------------------------------------------------


def test_development_mode_warns_at_start_that_the_secrets_key_is_public(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")

    with caplog.at_level(logging.WARNING):
        warn_if_development_mode(load_settings(InvitationSettings))

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "DEVELOPMENT_MODE=true" in record.getMessage()
    assert "the secrets key is public" in record.getMessage()


def test_development_mode_with_a_key_of_ones_own_still_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")
    monkeypatch.setenv("SECRETS_KEY", key := key_of(bytes(32)))  # accepted in development

    with caplog.at_level(logging.WARNING):
        warn_if_development_mode(load_settings(InvitationSettings))

    [record] = caplog.records
    assert "may be public" in record.getMessage()
    assert not shows_any_of(record.getMessage(), key)


def test_no_warning_outside_development_mode(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SECRETS_KEY", random_key())

    with caplog.at_level(logging.DEBUG):
        warn_if_development_mode(load_settings(InvitationSettings))

    assert caplog.records == []


# -- keys that were not made by a random generator ------------------------------------------

WEAK_KEYS = {
    "all zero": bytes(32),
    "all one byte": b"\xa7" * 32,
    "a two-byte pattern": b"\x01\xfe" * 16,
    "a five-byte pattern": (b"\x10\x32\x54\x76\x98" * 7)[:32],
    "an eight-byte pattern": bytes.fromhex("0123456789abcdef") * 4,
    "few distinct bytes": bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3 + [10, 11]),
    "a passphrase": b"correct horse battery staple 42!",
}


@pytest.mark.parametrize("raw", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_a_visibly_low_entropy_key_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, raw: bytes
) -> None:
    monkeypatch.setenv("SECRETS_KEY", key := key_of(raw))

    message = configuration_error(InvitationSettings)

    assert message.startswith("SECRETS_KEY is refused: ")
    assert not shows_any_of(message, key)


@pytest.mark.parametrize("raw", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_a_low_entropy_key_is_accepted_in_development_mode(
    monkeypatch: pytest.MonkeyPatch, raw: bytes
) -> None:
    monkeypatch.setenv("SECRETS_KEY", key_of(raw))
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")

    assert load_settings(InvitationSettings).secrets_key_bytes == raw


def test_keys_from_a_random_generator_are_never_refused() -> None:
    for _ in range(20_000):
        assert secrets_key_weakness(os.urandom(32)) is None


def test_the_expiry_service_needs_no_key_but_refuses_a_weak_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(ExpirySettings).secrets_key is None

    monkeypatch.setenv("SECRETS_KEY", key_of(bytes(32)))
    with pytest.raises(ConfigurationError, match="SECRETS_KEY is refused"):
        load_settings(ExpirySettings)
