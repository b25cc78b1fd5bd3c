"""The AsyncAPI document's parts, built from the contract models: one message per command
(with the sender it must carry), one typed reply per command, the dead letter, one
message and one standalone payload schema per event type, and the AMQP bindings.

services/invitation/asyncapi.py assembles them into the document.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

from shared.contract import COMMANDS, INTERNAL_COMMANDS, EventEnvelope, RejectionCode
from shared.contract.examples import (
    COMMAND_EXAMPLES,
    RESULT_EXAMPLES,
    event_example,
)
from shared.contract.replies import ReplyError
from shared.contract.results import RESULTS
from shared.topology import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_ROUTING_KEY_HEADER,
    EVENTS_EXCHANGE_NAME,
)

__all__ = [
    "SUMMARIES",
    "Json",
    "Mode",
    "command_message",
    "dead_letter_message",
    "envelope_schema",
    "envelope_schema_name",
    "event_message",
    "exchange_binding",
    "queue_binding",
    "ref",
    "ref_name",
    "reply_message",
    "reply_name",
    "reply_schema",
    "reply_schema_name",
    "schemas",
    "summary",
]

Mode = Literal["validation", "serialization"]
Json = dict[str, Any]
_SCHEMA_REF = "#/components/schemas/{model}"

# One line per command, from ../shared/spec/contract.md.
SUMMARIES = {
    "invite_user": "Invite one person to a tenant (links or creates their account).",
    "mass_invite": "Invite up to 10,000 people at once; one reply row per invitee.",
    "resend_invitation": "Send a pending invitation again, with a new link.",
    "revoke_invitation": "Withdraw a pending invitation.",
    "accept_invitation": "Accept an invitation with the token from its link.",
    "set_contractor_expiry": "Change when a contractor's access ends.",
    "configure_tenant": "Change a tenant's settings (only the fields given).",
    "remove_member": "Remove a member from a tenant (never its last administrator).",
    "change_role": "Give a member another role (a contractor needs `access_expires_at`).",
    "register_account": "Register an account outside any invitation.",
    "record_password_changed": "Record that a person set their own password.",
    "lapse_invitation": "Lapse an invitation whose time is up (refused `not_due` before).",
    "expire_temp_password": "Expire an unused temporary password (refused `not_due` before).",
    "expire_contractor": "End a contractor's access at its time (refused `not_due` before).",
    "remind_contractor_expiry": "Announce a contractor's coming expiry, once per offset.",
    "record_temp_password_delivered": "The notifier emailed a temporary password.",
    "record_notification_failed": "The notifier could not deliver an email (internal).",
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


def summary(name: str) -> str:
    summary = SUMMARIES[name]
    if name in INTERNAL_COMMANDS:
        summary += " Internal: accepted only from INTERNAL_SENDERS (the system's own services)."
    return summary


SENDER_REQUIRED = (
    "Publish it with the AMQP property `user_id` set to your broker user (the connection's "
    "login): without it the command is refused `unauthenticated`, and a sender that may "
    "not send it is refused `forbidden`."
)


def command_message(name: str, model: type[BaseModel]) -> Json:
    return {
        "name": name,
        "title": name,
        "summary": summary(name),
        "description": SENDER_REQUIRED,
        "contentType": "application/json",
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "Copied onto the reply.",
        },
        "payload": ref("schemas", model.__name__),
        "bindings": {"amqp": {"messageType": name, "bindingVersion": "0.3.0"}},
        "examples": [{"name": name, "payload": COMMAND_EXAMPLES[name]}],
    }


def reply_name(command: str) -> str:
    return f"{command}.reply"


def reply_schema_name(command: str) -> str:
    return f"{COMMANDS[command].__name__}Reply"


def reply_schema(command: str) -> Json:
    return {
        "title": reply_schema_name(command),
        "type": "object",
        "description": f"The reply to `{command}`: `status` is `accepted` with a `result`, "
        "or `rejected` with an `error` whose `code` is one of RejectionCode.",
        "required": ["command_id", "status"],
        "properties": {
            "command_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "status": {"type": "string", "enum": ["accepted", "rejected"]},
            "result": {"anyOf": [ref("schemas", RESULTS[command].__name__), {"type": "null"}]},
            "error": {"anyOf": [ref("schemas", ReplyError.__name__), {"type": "null"}]},
        },
    }


def reply_message(command: str) -> Json:
    accepted = {
        "command_id": COMMAND_EXAMPLES[command]["command_id"],
        "status": "accepted",
        "result": RESULT_EXAMPLES[command],
        "error": None,
    }
    rejected = {
        "command_id": COMMAND_EXAMPLES[command]["command_id"],
        "status": "rejected",
        "result": None,
        "error": {
            "code": "invalid_command",
            "message": f"{command} failed validation (1 problem(s))",
            "details": {},
        },
    }
    return {
        "name": reply_name(command),
        "title": f"Reply to {command}",
        "summary": f"The one reply to a `{command}` that had `reply_to`.",
        "contentType": "application/json",
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "The command message's own `correlation_id`.",
        },
        "payload": ref("schemas", reply_schema_name(command)),
        "examples": [
            {"name": "accepted", "payload": accepted},
            {"name": "rejected", "payload": rejected},
        ],
    }


def dead_letter_message() -> Json:
    return {
        "name": "DeadLetteredCommand",
        "title": "DeadLetteredCommand",
        "summary": "A message that could not be a command, as it was received.",
        "headers": {
            "type": "object",
            "properties": {
                DEAD_LETTER_REASON_HEADER: {
                    "type": "string",
                    "enum": [RejectionCode.INVALID_COMMAND, RejectionCode.UNKNOWN_COMMAND],
                },
                DEAD_LETTER_DETAIL_HEADER: {"type": "string", "maxLength": 500},
                DEAD_LETTER_ROUTING_KEY_HEADER: {"type": "string"},
            },
        },
        "payload": {"description": "The original body, unchanged (it may not be JSON)."},
    }


def envelope_schema_name(event_type: str) -> str:
    return f"{event_type}Event"


def envelope_schema(event_type: str, data: type[BaseModel]) -> Json:
    """The whole message of one event type: the envelope with its own `data`, standalone
    (no allOf), so that code generators make one type per event."""
    schema = EventEnvelope.model_json_schema(ref_template=_SCHEMA_REF, mode="serialization")
    schema["title"] = envelope_schema_name(event_type)
    schema["description"] = f"A `{event_type}` event as published on `{EVENTS_EXCHANGE_NAME}`."
    properties = schema["properties"]
    properties["event_type"] = {"type": "string", "const": event_type}
    properties["data"] = ref("schemas", data.__name__)
    return schema


def event_message(event_type: str, data: type[BaseModel]) -> Json:
    summary = inspect.getdoc(data) if "__doc__" in vars(data) and data.__doc__ else None
    return {
        "name": event_type,
        "title": event_type,
        **({"summary": summary} if summary else {}),
        "contentType": "application/json",
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "The `command_id` that caused the event.",
        },
        "headers": {
            "type": "object",
            "properties": {
                "event_type": {"const": event_type},
                "schema_version": {"type": "integer"},
                "position": {"type": "integer"},
                "tenant_id": {"type": "string", "description": "Empty when account-wide."},
                "traceparent": {
                    "type": "string",
                    "description": "W3C trace context of the command that caused the event; "
                    "only while the service traces (OTEL_EXPORTER_OTLP_ENDPOINT).",
                },
            },
        },
        "payload": ref("schemas", envelope_schema_name(event_type)),
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        "examples": [{"name": event_type, "payload": event_example(event_type)}],
    }


def schemas(models: Iterable[tuple[type[BaseModel], Mode]]) -> Json:
    """JSON schemas of `models` and of everything they refer to, by model name."""
    found: Json = {}
    for model, mode in models:
        schema = model.model_json_schema(ref_template=_SCHEMA_REF, mode=mode)
        for name, each in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if found.setdefault(name, each) != each:
                raise ValueError(f"two different schemas are both named {name!r}")
    return found


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
