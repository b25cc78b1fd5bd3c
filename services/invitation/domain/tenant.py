"""Tenant: an organisation and its settings. Created implicitly with the defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import tenant_id_to_uuid
from shared.contract.codes import RejectionCode

MIN_TTL = timedelta(hours=1)
MAX_TTL = timedelta(days=30)
MAX_REMINDER_OFFSET = timedelta(days=365)
# Each offset is one email to the contractor and one to every administrator.
MAX_REMINDERS = 10
DELIVERY_MODES = ("automatic", "manual")


@dataclass(frozen=True)
class TenantSettings:
    contractor_enabled: bool = False
    temp_password_delivery: str = "automatic"
    invitation_ttl: timedelta = timedelta(days=7)
    temp_password_ttl: timedelta = timedelta(days=7)
    expiry_reminders: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1))
    admin_notification_emails: tuple[str, ...] = field(default=())

    def to_state(self) -> dict[str, Any]:
        """JSON-friendly form stored in events (durations as seconds)."""
        state = asdict(self)
        state["invitation_ttl"] = self.invitation_ttl.total_seconds()
        state["temp_password_ttl"] = self.temp_password_ttl.total_seconds()
        state["expiry_reminders"] = [r.total_seconds() for r in self.expiry_reminders]
        state["admin_notification_emails"] = list(self.admin_notification_emails)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TenantSettings:
        return cls(
            contractor_enabled=bool(state["contractor_enabled"]),
            temp_password_delivery=str(state["temp_password_delivery"]),
            invitation_ttl=timedelta(seconds=state["invitation_ttl"]),
            temp_password_ttl=timedelta(seconds=state["temp_password_ttl"]),
            expiry_reminders=tuple(timedelta(seconds=s) for s in state["expiry_reminders"]),
            admin_notification_emails=tuple(state["admin_notification_emails"]),
        )

    def changed_with(self, changes: dict[str, Any]) -> TenantSettings:
        """Validates `changes` (only the given keys) and returns the new settings."""
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "contractor_enabled":
                checked[name] = bool(value)
            elif name == "temp_password_delivery":
                if value not in DELIVERY_MODES:
                    raise _invalid(name, "must be automatic or manual")
                checked[name] = value
            elif name in ("invitation_ttl", "temp_password_ttl"):
                if not MIN_TTL <= value <= MAX_TTL:
                    raise _invalid(name, "must be between 1 hour and 30 days")
                checked[name] = value
            elif name == "expiry_reminders":
                if len(value) > MAX_REMINDERS:
                    raise _invalid(name, f"at most {MAX_REMINDERS} offsets")
                offsets = tuple(sorted(set(value), reverse=True))
                if any(not timedelta(0) < o <= MAX_REMINDER_OFFSET for o in offsets):
                    raise _invalid(name, "each offset must be positive and at most 365 days")
                checked[name] = offsets
            elif name == "admin_notification_emails":
                try:
                    emails = tuple(dict.fromkeys(normalise_email(e) for e in value))
                except DomainError:
                    raise _invalid(name, "each entry must be a valid email address") from None
                checked[name] = emails
            else:
                raise _invalid(name, "unknown setting")
        return replace(self, **checked)


def _invalid(name: str, why: str) -> DomainError:
    return DomainError(RejectionCode.INVALID_SETTING, f"{name}: {why}", {"setting": name})


DEFAULT_SETTINGS = TenantSettings()


class Tenant(Aggregate):
    TOPIC = "invitations:Tenant"

    class Event(Aggregate.Event):
        TOPIC = "invitations:Tenant.Event"

    @staticmethod
    def create_id(tenant_id: str) -> UUID:
        return tenant_id_to_uuid(tenant_id)

    @event("Created", topic="invitations:Tenant.Created")
    def __init__(
        self,
        tenant_id: str,
        settings: dict[str, Any],
        timestamp: Any,
        actor: str,
        correlation_id: str,
        sender: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.settings_state = settings

    @property
    def settings(self) -> TenantSettings:
        return TenantSettings.from_state(self.settings_state)

    @classmethod
    def start(cls, tenant_id: str, cause: Cause) -> Tenant:
        return cls(
            tenant_id=tenant_id,
            settings=DEFAULT_SETTINGS.to_state(),
            timestamp=cause.at,
            actor=cause.actor,
            correlation_id=cause.command_id,
            sender=cause.sender,
        )

    def configure(self, changes: dict[str, Any], cause: Cause) -> TenantSettings:
        new = self.settings.changed_with(changes)
        self._configured(settings=new.to_state(), changed=sorted(changes), **cause.stamp())
        return new

    @event("Configured", topic="invitations:Tenant.Configured")
    def _configured(
        self,
        settings: dict[str, Any],
        changed: list[str],
        timestamp: Any,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.settings_state = settings
