"""The public message contract (../shared/spec/contract.md) as frozen pydantic models.

Other systems depend on these names and fields: extend them, never rename or remove.
"""

from shared.contract.codes import RejectionCode
from shared.contract.commands import (
    AUDIENCE,
    COMMANDS,
    INTERNAL_COMMANDS,
    PUBLIC_COMMANDS,
    AcceptInvitation,
    Audience,
    Command,
    ConfigureTenant,
    ExpireContractor,
    ExpireTempPassword,
    InviteUser,
    LapseInvitation,
    MassInvite,
    MassInvitee,
    RecordPasswordChanged,
    RecordTempPasswordDelivered,
    RegisterAccount,
    RemindContractorExpiry,
    ResendInvitation,
    RetrieveTempPassword,
    RevokeInvitation,
    SetContractorExpiry,
    TenantCommand,
)
from shared.contract.events import EVENT_DATA, EventEnvelope
from shared.contract.replies import Reply, ReplyError

__all__ = [
    "AUDIENCE",
    "COMMANDS",
    "EVENT_DATA",
    "INTERNAL_COMMANDS",
    "PUBLIC_COMMANDS",
    "AcceptInvitation",
    "Audience",
    "Command",
    "ConfigureTenant",
    "EventEnvelope",
    "ExpireContractor",
    "ExpireTempPassword",
    "InviteUser",
    "LapseInvitation",
    "MassInvite",
    "MassInvitee",
    "RecordPasswordChanged",
    "RecordTempPasswordDelivered",
    "RegisterAccount",
    "RejectionCode",
    "RemindContractorExpiry",
    "Reply",
    "ReplyError",
    "ResendInvitation",
    "RetrieveTempPassword",
    "RevokeInvitation",
    "SetContractorExpiry",
    "TenantCommand",
]
