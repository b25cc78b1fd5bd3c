"""Pieces of the AsyncAPI document that need nothing of FastStream: its words (the
description, one summary per command, from ../shared/spec/contract.md), the AMQP
bindings, and references. asyncapi.py assembles the document."""

from __future__ import annotations

from typing import Any

from shared.topology import (
    COMMANDS_EXCHANGE_NAME,
    DEAD_LETTER_QUEUE_NAME,
    EVENTS_EXCHANGE_NAME,
)

Json = dict[str, Any]

# Paragraphs without line breaks: the YAML dump folds long lines itself.
DESCRIPTION = "\n\n".join(
    [
        "Invite people to organisations (tenants), deliver their temporary passwords and "
        "links, expire contractors' access. JSON bodies in UTF-8, content type "
        "`application/json`, persistent delivery; times are RFC 3339 with a timezone, "
        "durations ISO 8601.",
        f"Commands: publish to the durable topic exchange `{COMMANDS_EXCHANGE_NAME}` with "
        "the command's name as routing key. `command_id` is the idempotency key: the same "
        "id again gets the first reply and changes nothing (with a different body it is "
        "refused `command_id_reused`). With AMQP `reply_to`, exactly one reply is "
        "published there with the request's `correlation_id`. A message that cannot be a "
        f"command is dead-lettered to `{DEAD_LETTER_QUEUE_NAME}` (and answered, if it has "
        "`reply_to`).",
        f"Events: published to the durable topic exchange `{EVENTS_EXCHANGE_NAME}`, "
        "routing key = event type, AMQP `message_id` = `event_id`. Delivery is at least "
        "once, in store order: consumers deduplicate on `event_id` and tolerate fields "
        "they do not know.",
        "Queries (`get_invitation`, `list_invitations`, `list_members`, "
        "`lookup_invitation_token`, `get_mass_invite_report`) are commands that change "
        "nothing and record no event; they reflect every command already answered "
        "(read-your-writes). Lists are paged: `page_size` 1-500 (default 100) and the opaque "
        "`page_token` of the previous reply's `next_page_token`.",
        "No reply, event or log line ever contains a temporary password or an invitation "
        "token in clear; a manual password leaves only sealed to the caller's own key.",
    ]
)

# One line per command, from ../shared/spec/contract.md.
SUMMARIES = {
    "invite_user": "Invite one person to a tenant (links or creates their account).",
    "mass_invite": "Invite up to 10,000 people at once; one reply row per invitee.",
    "resend_invitation": "Send a pending invitation again, with a new link.",
    "revoke_invitation": "Withdraw a pending invitation.",
    "accept_invitation": "Accept an invitation with the token from its link.",
    "set_contractor_expiry": "Change when a contractor's access ends.",
    "configure_tenant": "Change a tenant's settings (only the fields given).",
    "register_account": "Register an account outside any invitation.",
    "record_password_changed": "Record that a person set their own password.",
    "lapse_invitation": "Lapse an invitation whose time is up (refused `not_due` before).",
    "expire_temp_password": "Expire an unused temporary password (refused `not_due` before).",
    "expire_contractor": "End a contractor's access at its time (refused `not_due` before).",
    "remind_contractor_expiry": "Announce a contractor's coming expiry, once per offset.",
    "record_temp_password_delivered": "The notifier emailed a temporary password.",
    "record_invitation_email_sent": "The notifier emailed an invitation without a password.",
    "retrieve_temp_password": "Take a manual temporary password, once, sealed to "
    "`recipient_public_key` (a libsodium sealed box only its private key opens).",
    "get_invitation": "Query: one invitation, by id or email.",
    "list_invitations": "Query: a tenant's invitations, newest first, by status, role, "
    "email or batch; paged.",
    "list_members": "Query: a tenant's members, by role and status; paged.",
    "lookup_invitation_token": "Query: the invitation a link's token is for, while that "
    "link is current (no tenant_id).",
    "get_mass_invite_report": "Query: a mass invite's report with each row's live state; "
    "paged over its rows.",
}


def queue_binding(name: str) -> Json:
    return {
        "is": "queue",
        "queue": {
            "name": name,
            "durable": True,
            "exclusive": False,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": "0.3.0",
    }


def exchange_binding(name: str) -> Json:
    return {
        "is": "routingKey",
        "exchange": {
            "name": name,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": "0.3.0",
    }


def ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def ref_name(reference: Json) -> str:
    return str(reference.get("$ref", "")).rsplit("/", 1)[-1]
