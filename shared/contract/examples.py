"""One example of every message of the contract, as a client would write or read it.

They go into the AsyncAPI document (docs/asyncapi.yaml), so a client written from the
document alone has a body to start from; tests/ops checks that each one is valid for its
model, and sends the `invite_user` example to a running service.
"""

# Sample field values, not secrets ("token", "temp_password_delivery").
# ruff: noqa: S106

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_TENANT = "acme"
_ADMIN = "alice@acme.example"
_INVITEE = "bob@acme.example"
_CONTRACTOR = "carol@contractors.example"
_COMMAND_ID = "5f0c7a4e-1f5e-4b7e-9d3a-2c6b8e1d4a10"
_INVITATION = "0b6f2c7e-8d1a-4c3b-9e5f-7a2d1c4b6e80"
_ACCOUNT = "9d3e1a2b-4c5f-4a6b-8c7d-0e1f2a3b4c5d"
_BATCH = "c4a1e2f3-5b6c-4d7e-8f90-a1b2c3d4e5f6"
_TEMP_PASSWORD = "e7d6c5b4-a3f2-4e1d-9c8b-7a6f5e4d3c2b"
_MESSAGE = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
_END = "2030-06-30T17:00:00Z"
_LATER = "2030-09-30T17:00:00Z"
_WEEK = "2030-01-22T09:30:00Z"
_INVITED = "2030-01-15T09:30:00Z"
# base64 of an X25519 public key (32 bytes), as a client sends it.
_PUBLIC_KEY = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
_NEXT_PAGE = "eyJjIjo0ODIxfQ.5h7Qm2kVb1c0x9Ztq8RwLA"


def _command(**fields: Any) -> Json:
    return {"command_id": _COMMAND_ID, "actor": _ADMIN, **fields}


COMMAND_EXAMPLES: dict[str, Json] = {
    "invite_user": _command(
        tenant_id=_TENANT,
        email=_INVITEE,
        role="user",
        display_name="Bob Martin",
        locale="en",
    ),
    "mass_invite": _command(
        tenant_id=_TENANT,
        temp_password_delivery="manual",
        invitees=[
            {"email": _INVITEE, "role": "user"},
            {"email": _CONTRACTOR, "role": "contractor", "access_expires_at": _END},
        ],
    ),
    "resend_invitation": _command(tenant_id=_TENANT, email=_INVITEE),
    "revoke_invitation": _command(tenant_id=_TENANT, invitation_id=_INVITATION, reason="left"),
    "accept_invitation": _command(
        tenant_id=_TENANT, token="the-token-from-the-link", email=_INVITEE, actor=_INVITEE
    ),
    "set_contractor_expiry": _command(
        tenant_id=_TENANT, email=_CONTRACTOR, access_expires_at=_LATER
    ),
    "configure_tenant": _command(
        tenant_id=_TENANT,
        contractor_enabled=True,
        temp_password_delivery="automatic",
        invitation_ttl="P7D",
        expiry_reminders=["P7D", "P1D"],
    ),
    "register_account": _command(email=_INVITEE, display_name="Bob Martin", actor="service:idp"),
    "record_password_changed": _command(email=_INVITEE, actor="service:login"),
    "lapse_invitation": _command(
        tenant_id=_TENANT, invitation_id=_INVITATION, actor="service:expiry"
    ),
    "expire_temp_password": _command(
        email=_INVITEE, temp_password_id=_TEMP_PASSWORD, actor="service:expiry"
    ),
    "expire_contractor": _command(tenant_id=_TENANT, email=_CONTRACTOR, actor="service:expiry"),
    "remind_contractor_expiry": _command(
        tenant_id=_TENANT, email=_CONTRACTOR, offset="P7D", actor="service:expiry"
    ),
    "record_temp_password_delivered": _command(
        email=_INVITEE, temp_password_id=_TEMP_PASSWORD, actor="service:notifier"
    ),
    "retrieve_temp_password": _command(
        tenant_id=_TENANT, email=_INVITEE, recipient_public_key=_PUBLIC_KEY
    ),
    "remove_member": _command(tenant_id=_TENANT, email=_INVITEE, reason="left the company"),
    "change_role": _command(
        tenant_id=_TENANT, email=_INVITEE, role="contractor", access_expires_at=_END
    ),
    "record_notification_failed": _command(
        tenant_id=_TENANT,
        message_key=_MESSAGE,
        kind="invitation_automatic",
        recipient=_INVITEE,
        invitation_id=_INVITATION,
        reason="recipient refused: 550 5.1.1 no such mailbox",
        actor="service:notifier",
    ),
    "record_invitation_email_sent": _command(
        tenant_id=_TENANT, invitation_id=_INVITATION, link_generation=1, actor="service:notifier"
    ),
    "get_invitation": _command(tenant_id=_TENANT, email=_INVITEE, actor="service:portal"),
    "list_invitations": _command(
        tenant_id=_TENANT, status=["pending"], page_size=100, actor="service:portal"
    ),
    "list_members": _command(tenant_id=_TENANT, role="administrator", actor="service:portal"),
    "lookup_invitation_token": _command(token="the-token-from-the-link", actor="service:login"),
    "get_mass_invite_report": _command(
        tenant_id=_TENANT, batch_id=_BATCH, page_size=500, actor="service:portal"
    ),
}

_INVITATION_VIEW: Json = {
    "invitation_id": _INVITATION,
    "tenant_id": _TENANT,
    "email": _INVITEE,
    "role": "user",
    "status": "pending",
    "outcome": "temp_password_issued",
    "temp_password_delivery": "manual",
    "invited_by": _ADMIN,
    "inviter_name": None,
    "invited_at": _INVITED,
    "invitation_expires_at": _WEEK,
    "access_expires_at": None,
    "batch_id": None,
    "accepted_at": None,
    "revoked_at": None,
    "lapsed_at": None,
    "invitation_email": "sent",
    "temp_password": "awaiting_retrieval",
    "temp_password_valid_until": _WEEK,
    "display_name": "Bob Martin",
    "locale": "en",
}

RESULT_EXAMPLES: dict[str, Json] = {
    "invite_user": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "outcome": "temp_password_issued",
        "temp_password_delivery": "automatic",
        "invitation_expires_at": _WEEK,
    },
    "mass_invite": {
        "batch_id": _BATCH,
        "invited": 1,
        "refused": 1,
        "rows": [
            {
                "index": 0,
                "email": _INVITEE,
                "status": "invited",
                "role": "user",
                "invitation_id": _INVITATION,
                "outcome": "temp_password_issued",
                "temp_password_delivery": "manual",
            },
            {
                "index": 1,
                "email": _CONTRACTOR,
                "status": "refused",
                "error": {
                    "code": "contractor_disabled",
                    "message": "contractor invites are disabled for this tenant",
                    "details": {},
                },
            },
        ],
    },
    "resend_invitation": {
        "invitation_id": _INVITATION,
        "invitation_expires_at": _WEEK,
        "temp_password_reissued": True,
    },
    "revoke_invitation": {"invitation_id": _INVITATION, "temp_password_withdrawn": True},
    "accept_invitation": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "role": "user",
        "access_expires_at": None,
    },
    "set_contractor_expiry": {"email": _CONTRACTOR, "access_expires_at": _LATER},
    "configure_tenant": {
        "tenant_id": _TENANT,
        "settings": {
            "contractor_enabled": True,
            "temp_password_delivery": "automatic",
            "invitation_ttl": "P7D",
            "temp_password_ttl": "P7D",
            "expiry_reminders": ["P7D", "P1D"],
            "admin_notification_emails": [],
        },
        "changed": ["contractor_enabled", "expiry_reminders", "invitation_ttl"],
    },
    "register_account": {"account_id": _ACCOUNT, "email": _INVITEE, "created": True},
    "record_password_changed": {"account_id": _ACCOUNT},
    "lapse_invitation": {"invitation_id": _INVITATION, "lapsed": True},
    "expire_temp_password": {"temp_password_id": _TEMP_PASSWORD, "expired": True},
    "expire_contractor": {"email": _CONTRACTOR, "expired": True},
    "remind_contractor_expiry": {"email": _CONTRACTOR, "reminded": True},
    "record_temp_password_delivered": {"temp_password_id": _TEMP_PASSWORD, "recorded": True},
    "retrieve_temp_password": {
        "invitation_id": _INVITATION,
        "email": _INVITEE,
        "sealed_temp_password": "Dq3B0m2bH1yq0b6sQ2XlC8m9O1q7i5Yw9Zp2R4uT6vX8zA0cE2gI4kM6oQ8sU1wY"
        "3aC5eG7iK9mO1qS3uW5yA7cE9gI1kM=",
        "valid_until": _WEEK,
        "sealed_copy_destroyed": True,
    },
    "remove_member": {
        "email": _INVITEE,
        "account_id": _ACCOUNT,
        "role": "user",
        "temp_password_withdrawn": False,
    },
    "change_role": {
        "email": _INVITEE,
        "account_id": _ACCOUNT,
        "role": "contractor",
        "previous_role": "user",
        "access_expires_at": _END,
        "changed": True,
    },
    "record_notification_failed": {"message_key": _MESSAGE, "recorded": True},
    "record_invitation_email_sent": {"invitation_id": _INVITATION, "recorded": True},
    "get_invitation": {"invitation": _INVITATION_VIEW},
    "list_invitations": {"invitations": [_INVITATION_VIEW], "next_page_token": _NEXT_PAGE},
    "list_members": {
        "members": [
            {
                "account_id": _ACCOUNT,
                "email": _ADMIN,
                "role": "administrator",
                "status": "active",
                "member_since": _INVITED,
                "access_expires_at": None,
                "invitation_id": _INVITATION,
            }
        ],
        "next_page_token": None,
    },
    "lookup_invitation_token": {"invitation": _INVITATION_VIEW},
    "get_mass_invite_report": {
        "batch_id": _BATCH,
        "invited": 1,
        "refused": 0,
        "rows": [
            {
                "index": 0,
                "email": _INVITEE,
                "status": "invited",
                "role": "user",
                "invitation_id": _INVITATION,
                "outcome": "temp_password_issued",
                "temp_password_delivery": "manual",
                "invitation_status": "pending",
                "invitation_email": "sent",
                "temp_password": "awaiting_retrieval",
            }
        ],
        "next_page_token": None,
    },
}

_SETTINGS = RESULT_EXAMPLES["configure_tenant"]["settings"]

EVENT_EXAMPLES: dict[str, Json] = {
    "TenantConfigured": {"settings": _SETTINGS, "changed": ["contractor_enabled"]},
    "AccountRegistered": {"account_id": _ACCOUNT, "email": _INVITEE},
    "UserInvited": {
        "invitation_id": _INVITATION,
        "email": _INVITEE,
        "role": "user",
        "access_expires_at": None,
        "invitation_expires_at": _WEEK,
        "invited_by": _ADMIN,
        "batch_id": None,
        "display_name": "Bob Martin",
        "locale": "en",
        "link_generation": 1,
    },
    "AccountLinked": {"invitation_id": _INVITATION, "account_id": _ACCOUNT, "email": _INVITEE},
    "TempPasswordIssued": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "delivery": "automatic",
        "valid_until": _WEEK,
        "temp_password_id": _TEMP_PASSWORD,
    },
    "InvitationResent": {
        "invitation_id": _INVITATION,
        "invitation_expires_at": _WEEK,
        "temp_password_reissued": False,
        "link_generation": 2,
    },
    "InvitationRevoked": {"invitation_id": _INVITATION, "reason": "left the company"},
    "InvitationLapsed": {"invitation_id": _INVITATION},
    "InvitationAccepted": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "role": "user",
    },
    "InvitationAcceptanceRefused": {"invitation_id": _INVITATION, "reason": "email_mismatch"},
    "ContractorExpiryChanged": {
        "account_id": _ACCOUNT,
        "email": _CONTRACTOR,
        "access_expires_at": _LATER,
        "previous_access_expires_at": _END,
    },
    "ContractorExpiryApproaching": {
        "account_id": _ACCOUNT,
        "email": _CONTRACTOR,
        "access_expires_at": _END,
        "offset": "P7D",
    },
    "ContractorExpired": {
        "account_id": _ACCOUNT,
        "email": _CONTRACTOR,
        "access_expires_at": _END,
        "expired_at": "2030-06-30T17:00:00.200000Z",
    },
    "TempPasswordExpired": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
    },
    "PasswordChanged": {"account_id": _ACCOUNT, "email": _INVITEE},
    "MassInviteCompleted": {"batch_id": _BATCH, "invited": 1, "refused": 1},
    "TempPasswordDelivered": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "temp_password_id": _TEMP_PASSWORD,
        "delivery": "automatic",
    },
    "TempPasswordRevoked": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "temp_password_id": _TEMP_PASSWORD,
    },
    "MemberRemoved": {
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "role": "user",
        "reason": "left the company",
    },
    "MemberRoleChanged": {
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "role": "contractor",
        "previous_role": "user",
        "access_expires_at": _END,
        "invitation_id": _INVITATION,
    },
    "NotificationFailed": {
        "kind": "invitation_automatic",
        "recipient": _INVITEE,
        "invitation_id": _INVITATION,
        "reason": "recipient refused: 550 5.1.1 no such mailbox",
        "message_key": _MESSAGE,
    },
    "TempPasswordRetrieved": {
        "invitation_id": _INVITATION,
        "account_id": _ACCOUNT,
        "email": _INVITEE,
        "temp_password_id": _TEMP_PASSWORD,
    },
    "InvitationEmailSent": {"invitation_id": _INVITATION, "link_generation": 1},
}


def event_example(event_type: str) -> Json:
    """A whole envelope of `event_type` around its data example, as on the broker."""
    account_wide = event_type in ("AccountRegistered", "PasswordChanged")
    return {
        "event_id": "3c1e5d7f-9a2b-4c6d-8e0f-1a3b5c7d9e2f",
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2030-01-15T09:30:00.123456Z",
        "position": 4821,
        "tenant_id": None if account_wide else _TENANT,
        "aggregate_id": _INVITATION,
        "aggregate_version": 1,
        "correlation_id": _COMMAND_ID,
        "actor": _ADMIN,
        "data": EVENT_EXAMPLES[event_type],
    }
