"""A deadline's identity (its key) and the command that settles it when it comes.

Keys are plain tuples whose first field is the kind: keys due at the same instant then
always compare (the heap breaks ties by key), kind first. Plain tuples of str, int and
float, not named tuples nor objects, because CPython's garbage collector stops tracking
such tuples (and the heap entries and dicts that hold only them): with a million
deadlines, a full collection then costs what it costs with ten. Times are POSIX seconds
as floats (24 bytes, where a datetime takes 48) and ids are `UUID.int` (44, not ~100).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, cast
from uuid import UUID, uuid5

from shared.contract import (
    Command,
    ExpireContractor,
    ExpireTempPassword,
    LapseInvitation,
    RemindContractorExpiry,
)

CONTRACTOR_END: Final = 0
CONTRACTOR_REMINDER: Final = 1
INVITATION_LINK: Final = 2
TEMP_PASSWORD: Final = 3

COMMAND_NAMES: Final = (
    "expire_contractor",
    "remind_contractor_expiry",
    "lapse_invitation",
    "expire_temp_password",
)

# Fixed forever: command ids derived from it must stay the same across versions, or a
# re-fire after an upgrade would no longer be recognised as a repeat.
_COMMAND_ID_NAMESPACE: Final = UUID("6f1d7c1e-2b0a-4d55-9a57-3e8e1c0b9d42")


# (CONTRACTOR_END, tenant_id, email): rule 20, `expire_contractor`.
ContractorEnd = tuple[int, str, str]
# (CONTRACTOR_REMINDER, tenant_id, email, offset in seconds): rule 21, `remind_contractor_expiry`.
ContractorReminder = tuple[int, str, str, float]
# (INVITATION_LINK, tenant_id, invitation_id.int): rule 16, `lapse_invitation`;
# (TEMP_PASSWORD, email, temp_password_id.int): rule 14, `expire_temp_password`.
IdKey = tuple[int, str, int]

Key = ContractorEnd | ContractorReminder | IdKey


def contractor_end(tenant_id: str, email: str) -> ContractorEnd:
    return (CONTRACTOR_END, tenant_id, email)


def contractor_reminder(tenant_id: str, email: str, offset: float) -> ContractorReminder:
    return (CONTRACTOR_REMINDER, tenant_id, email, offset)


def invitation_link(tenant_id: str, invitation_id: UUID) -> IdKey:
    return (INVITATION_LINK, tenant_id, invitation_id.int)


def temp_password(email: str, temp_password_id: UUID | int) -> IdKey:
    raw = temp_password_id if isinstance(temp_password_id, int) else temp_password_id.int
    return (TEMP_PASSWORD, email, raw)


def seconds(moment: datetime) -> float:
    return moment.timestamp()


def instant(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def command_name(key: Key) -> str:
    return COMMAND_NAMES[key[0]]


def describe(key: Key) -> str:
    """Readable and stable: part of the command id, and of log lines."""
    kind = key[0]
    if kind == CONTRACTOR_REMINDER:
        _, tenant_id, email, offset = cast(ContractorReminder, key)
        return f"{tenant_id}/{email}/{offset!r}"
    if kind == CONTRACTOR_END:
        _, tenant_id, email = cast(ContractorEnd, key)
        return f"{tenant_id}/{email}"
    _, scope, raw_id = cast(IdKey, key)
    return f"{scope}/{UUID(int=raw_id)}"


def command_id(key: Key, deadline: float, attempt: int = 0) -> UUID:
    """The same deadline always gets the same id, so a re-fire is a repeat to the invitation
    service; a retry after `not_due` is a new attempt, since the service replays the first
    reply to a repeated id."""
    name = f"{command_name(key)}|{describe(key)}|{instant(deadline).isoformat()}"
    if attempt:
        name += f"|attempt {attempt}"
    return uuid5(_COMMAND_ID_NAMESPACE, name)


def build_command(key: Key, command_id: UUID, actor: str) -> Command:
    kind = key[0]
    if kind == CONTRACTOR_END:
        _, tenant_id, email = cast(ContractorEnd, key)
        return ExpireContractor(
            command_id=command_id, actor=actor, tenant_id=tenant_id, email=email
        )
    if kind == CONTRACTOR_REMINDER:
        _, tenant_id, email, offset = cast(ContractorReminder, key)
        return RemindContractorExpiry(
            command_id=command_id,
            actor=actor,
            tenant_id=tenant_id,
            email=email,
            offset=timedelta(seconds=offset),
        )
    _, scope, raw_id = cast(IdKey, key)
    if kind == INVITATION_LINK:
        return LapseInvitation(
            command_id=command_id, actor=actor, tenant_id=scope, invitation_id=UUID(int=raw_id)
        )
    return ExpireTempPassword(
        command_id=command_id, actor=actor, email=scope, temp_password_id=UUID(int=raw_id)
    )
