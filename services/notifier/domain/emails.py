"""What the notifier sends: the kinds of email, and one planned email before rendering.

A planned email never holds a secret: the temporary password is opened and the link
token derived only when the email is rendered for sending (rules 12 and 19).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

import idna

SUPPORTED_LOCALES = ("en", "fr")
DEFAULT_LOCALE = "en"
_MESSAGE_NAMESPACE = UUID("5d1f9a40-7c2e-4b8a-9e61-0f3a2c4b5d6e")


class Kind(StrEnum):
    """Every email of rules 24, 25, 34 and 35. The value names the template."""

    # To the invitee (rule 24). A resent invitation uses the same three with `resent`.
    INVITATION_LINKED = "invitation_linked"
    INVITATION_AUTOMATIC = "invitation_automatic"
    INVITATION_MANUAL = "invitation_manual"
    CONTRACTOR_EXPIRY_REMINDER = "contractor_expiry_reminder"
    CONTRACTOR_ACCESS_ENDED = "contractor_access_ended"
    # To the tenant's administrators (rule 25).
    ADMIN_ADMINISTRATOR_INVITED = "admin_administrator_invited"
    ADMIN_INVITATION_ACCEPTED = "admin_invitation_accepted"
    ADMIN_CONTRACTOR_EXPIRY_APPROACHING = "admin_contractor_expiry_approaching"
    ADMIN_CONTRACTOR_EXPIRED = "admin_contractor_expired"
    ADMIN_TEMP_PASSWORD_EXPIRED = "admin_temp_password_expired"
    ADMIN_MASS_INVITE_COMPLETED = "admin_mass_invite_completed"
    ADMIN_MANUAL_PASSWORDS_PENDING = "admin_manual_passwords_pending"
    ADMIN_ONE_ADMINISTRATOR = "admin_one_administrator"
    # Rule 34: to the member concerned.
    MEMBER_REMOVED = "member_removed"
    MEMBER_ROLE_CHANGED = "member_role_changed"
    # Rule 35: to the tenant's administrators, once per failed invitation.
    ADMIN_NOTIFICATION_FAILED = "admin_notification_failed"

    @property
    def to_administrators(self) -> bool:
        return self.value.startswith("admin_")


def normalise_locale(locale: str | None) -> str:
    """`fr`, `fr-CA`, `FR_fr` -> `fr`; anything unsupported or missing -> English."""
    if not locale:
        return DEFAULT_LOCALE
    primary = locale.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in SUPPORTED_LOCALES else DEFAULT_LOCALE


def normalise_address(email: str) -> str:
    """As the invitation service normalises an address (rule 1): NFC, then lower case.

    Every address in an event is normalised already; this only makes comparisons and keys
    insensitive to an address written by hand (a setting, an operator's query).
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", email.strip()).lower())


@dataclass(frozen=True)
class DeliveryAddress:
    """How one address is written in the SMTP envelope and the `To:` header (rule 37)."""

    address: str
    # A non-ASCII local part can only travel with SMTPUTF8 (RFC 6531): there is no ASCII
    # form of it. An internationalised domain alone needs nothing: IDNA writes it in ASCII.
    smtputf8: bool


class UndeliverableAddressError(ValueError):
    """An address that no mail server could be handed (its domain has no IDNA form)."""


def delivery_address(recipient: str) -> DeliveryAddress:
    """The domain as IDNA 2008 A-labels (`bücher.example` -> `xn--bcher-kva.example`), the
    local part as it is: ASCII when it can be, SMTPUTF8 only when it must."""
    local, _, domain = recipient.rpartition("@")
    if domain.isascii():
        ascii_domain = domain
    else:
        try:
            ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise UndeliverableAddressError(f"the domain has no IDNA form: {error}") from None
    return DeliveryAddress(f"{local}@{ascii_domain}", smtputf8=not local.isascii())


def message_key(event_id: UUID, kind: Kind | str, recipient: str) -> UUID:
    """One key per (event, kind, recipient): the dedupe key and the Message-ID's left part."""
    return uuid5(_MESSAGE_NAMESPACE, f"{event_id}|{kind}|{normalise_address(recipient)}")


@dataclass(frozen=True)
class PlannedEmail:
    """An email an event implies. `context` is JSON-safe and holds no secret."""

    event_id: UUID
    position: int
    kind: Kind
    recipient: str
    locale: str
    tenant_id: str | None
    context: Mapping[str, Any] = field(default_factory=dict)
    # The link is derived from these at send time (the token is never stored).
    invitation_id: UUID | None = None
    link_generation: int | None = None
    # Automatic delivery: the sealed password to open at send time.
    temp_password_id: UUID | None = None
    # Observability only, set by the planner: when the event occurred (POSIX seconds;
    # event -> email latency) and the W3C trace context of the command that caused it.
    event_at: float | None = None
    traceparent: str | None = None

    @property
    def key(self) -> UUID:
        return message_key(self.event_id, self.kind, self.recipient)
