"""The public message contract (../shared/spec/contract.md) as frozen pydantic models.

Other systems depend on these names and fields: extend them, never rename or remove.
"""

from shared.contract.codes import RejectionCode
from shared.contract.commands import (
    COMMANDS,
    INTERNAL_COMMANDS,
    AcceptInvitation,
    ChangeRole,
    Command,
    ConfigureTenant,
    ExpireContractor,
    ExpireTempPassword,
    InviteUser,
    LapseInvitation,
    MassInvite,
    MassInvitee,
    RecordNotificationFailed,
    RecordPasswordChanged,
    RecordTempPasswordDelivered,
    RegisterAccount,
    RemindContractorExpiry,
    RemoveMember,
    ResendInvitation,
    RetrieveTempPassword,
    RevokeInvitation,
    SetContractorExpiry,
    TenantCommand,
)
from shared.contract.events import EVENT_DATA, EventEnvelope
from shared.contract.replies import Reply, ReplyError

__all__ = [
    "COMMANDS",
    "EVENT_DATA",
    "INTERNAL_COMMANDS",
    "AcceptInvitation",
    "ChangeRole",
    "Command",
    "ConfigureTenant",
    "EventEnvelope",
    "ExpireContractor",
    "ExpireTempPassword",
    "InviteUser",
    "LapseInvitation",
    "MassInvite",
    "MassInvitee",
    "RecordNotificationFailed",
    "RecordPasswordChanged",
    "RecordTempPasswordDelivered",
    "RegisterAccount",
    "RejectionCode",
    "RemindContractorExpiry",
    "RemoveMember",
    "Reply",
    "ReplyError",
    "ResendInvitation",
    "RetrieveTempPassword",
    "RevokeInvitation",
    "SetContractorExpiry",
    "TenantCommand",
]
