"""Typed settings read from the environment variables the contract names.

Each service subclasses `ServiceSettings`; its `__main__` builds it with `settings_or_exit`,
tools and tests with `load_settings`. No path through here shows a secret:

- a configuration error names the setting and the problem, never the value: pydantic is
  told to hide inputs (`hide_input_in_errors`), the loader rebuilds the message from
  `errors(include_input=False)`, and the validators' own messages never quote a value;
- `repr(settings)` shows `SecretStr` fields as `**********` and URLs with `***` for their
  password;
- a setting marked `FROM_FILE` (SECRETS_KEY, SMTP_PASSWORD, AMQP_URL, DATABASE_URL) may be
  read instead from the file that `<NAME>_FILE` names (Docker secrets); giving both is
  an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

__all__ = [
    "FROM_FILE",
    "ConfigurationError",
    "ServiceSettings",
    "decode_secrets_key",
    "load_settings",
    "mask_url_password",
    "secrets_key_weakness",
    "settings_or_exit",
    "warn_if_development_mode",
]

log = logging.getLogger(__name__)

# Used only when DEVELOPMENT_MODE is on and SECRETS_KEY is unset; never in production.
_DEVELOPMENT_KEY = hashlib.sha256(b"invitations development key - not secret").digest()

MASK = "***"


class ConfigurationError(ValueError):
    """A setting is missing, malformed, weak or given twice. The message names the
    setting (its environment variable) and the problem, never the value."""


@dataclass(frozen=True)
class ReadableFromFile:
    """Marks a setting that `<NAME>_FILE` may give instead of `<NAME>` (Docker secrets)."""


FROM_FILE = ReadableFromFile()


def decode_secrets_key(value: str) -> bytes:
    """Accepts standard or URL-safe base64 of exactly 32 bytes."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decoder(padded.encode("ascii"))
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise ValueError("SECRETS_KEY must be base64 of exactly 32 random bytes")


# Each check below flags 32 bytes from a CSPRNG with a probability under 1e-13.
_LONGEST_REPEATED_PATTERN = 8
_FEWEST_DISTINCT_BYTES = 16


def secrets_key_weakness(key: bytes) -> str | None:
    """Why `key` visibly did not come from a random generator, or None.

    Not an entropy estimate: it catches the keys people type or copy (all zeros, a
    short pattern repeated, a passphrase in base64) without ever refusing a real one.
    """
    for period in range(1, _LONGEST_REPEATED_PATTERN + 1):
        if all(key[i] == key[i % period] for i in range(len(key))):
            if period == 1:
                return "it is one byte repeated"
            return f"it is a {period}-byte pattern repeated"
    if len(set(key)) < _FEWEST_DISTINCT_BYTES:
        return f"it has fewer than {_FEWEST_DISTINCT_BYTES} distinct byte values"
    if all(0x20 <= b < 0x7F for b in key):
        return "it is printable text (a passphrase?), not random bytes"
    return None


def mask_url_password(url: str) -> str:
    """`url` with its password (user-info or a `password=` parameter) shown as `***`."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # a malformed netloc may still hold a password: show none of it
        return f"{url.partition(':')[0]}:{MASK}" if "@" in url else url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    in_query = any(name.lower() == "password" for name, _ in pairs)
    if not (has_password or in_query):
        return url  # untouched: rebuilding would drop an empty netloc (sqlite:///path)
    netloc, query = parts.netloc, parts.query
    if has_password:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    if in_query:
        masked = [(n, MASK if n.lower() == "password" else v) for n, v in pairs]
        query = urlencode(masked, safe="*")
    return parts._replace(netloc=netloc, query=query).geturl()


class _FileVariables(PydanticBaseSettingsSource):
    """`<NAME>_FILE=/run/secrets/x`: the value of setting NAME is the content of that file,
    without its trailing newline. Only for settings marked `FROM_FILE`."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        # As the environment source reads it (case_sensitive=False).
        self._environ = {k.upper(): v for k, v in os.environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = field_name.upper()
        path = self._environ.get(f"{variable}_FILE")
        if not path:  # Compose renders an unset optional variable as ""
            return None, field_name, False
        if self._environ.get(variable):
            raise ConfigurationError(f"{variable} and {variable}_FILE are both set: give one")
        return _read_secret_file(variable, path), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if FROM_FILE in field.metadata:
                value, key, _ = self.get_field_value(field, name)
                if value is not None:
                    values[key] = value
        return values


def _read_secret_file(variable: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"{variable}_FILE: cannot read {path}: {reason}") from None
    if not value:
        raise ConfigurationError(f"{variable}_FILE: {path} is empty")
    return value


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # Whether this service refuses to start without SECRETS_KEY outside development mode.
    secrets_key_required: ClassVar[bool] = True

    amqp_url: Annotated[str, FROM_FILE] = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: Annotated[str, FROM_FILE] = "postgresql://root@127.0.0.1:5432/test"
    secrets_key: Annotated[SecretStr | None, FROM_FILE] = None
    development_mode: bool = False
    public_base_url: str = "http://localhost:8000"
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")
    # HTTP port for /healthz, /readyz and /metrics; 0 turns it off.
    http_port: int = 0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Before the environment: `X_FILE` wins over an empty `X` (a non-empty one is refused).
        return (init_settings, _FileVariables(settings_cls), env_settings)

    @model_validator(mode="after")
    def _check_secrets_key(self) -> ServiceSettings:
        if self.secrets_key is None:
            if self.secrets_key_required and not self.development_mode:
                raise ValueError(
                    "SECRETS_KEY is required unless DEVELOPMENT_MODE=true "
                    "(or SECRETS_KEY_FILE naming a file that holds it)"
                )
            return self
        key = decode_secrets_key(self.secrets_key.get_secret_value())
        weakness = None if self.development_mode else secrets_key_weakness(key)
        if weakness is not None:
            raise ValueError(
                f"SECRETS_KEY is refused: {weakness}; make one with `openssl rand -base64 32`"
            )
        return self

    @property
    def secrets_key_bytes(self) -> bytes:
        if self.secrets_key is None:
            return _DEVELOPMENT_KEY
        return decode_secrets_key(self.secrets_key.get_secret_value())

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if isinstance(value, str) else value


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """`cls` from the environment, or `ConfigurationError` naming every bad setting."""
    try:
        return cls()
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None
    except SettingsError as error:  # a value the environment source cannot parse
        raise ConfigurationError(str(error)) from None


def settings_or_exit(cls: type[SettingsT]) -> SettingsT:
    """For a service's `__main__`: the settings, or one line on stderr and exit status 2."""
    try:
        return load_settings(cls)
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        setting = "_".join(str(part) for part in problem["loc"]).upper()
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{setting}: {message}" if setting else message)
    return "; ".join(problems)


def warn_if_development_mode(settings: ServiceSettings) -> None:
    """At every start in development mode: say loudly that nothing here is secret."""
    if not settings.development_mode:
        return
    if settings.secrets_key is None:
        log.warning(
            "DEVELOPMENT_MODE=true: the secrets key is public (the built-in development "
            "key), so anyone can forge invitation links and open sealed temporary "
            "passwords. Never run so in production."
        )
    else:
        log.warning(
            "DEVELOPMENT_MODE=true: SECRETS_KEY is not checked for strength, so the "
            "secrets key may be public (a test or example key). Never run so in production."
        )
