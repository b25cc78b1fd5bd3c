"""The public contract as an AsyncAPI 3.0 document (committed as docs/asyncapi.yaml).

    faststream docs gen --factory --yaml services.invitation.asyncapi:app -o docs/asyncapi.yaml

FastStream documents what the app consumes: the `invitation.commands` queue, its
bindings and the broker. It cannot see the rest of the contract: the subscriber takes
raw bytes (it dispatches on the routing key, so the generated payload is just "binary"),
and events leave through the outbox relay on aio-pika. `ContractDocument` completes the
generated document from the contract models: one message per command with its JSON
schema, the reply, the dead-letter queue, and one message per event on
`invitations.events`. tests/ops checks that the committed file matches this output.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from faststream import FastStream
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from faststream.specification.base import Specification, SpecificationFactory
from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from services.invitation.asyncapi_parts import (
    DESCRIPTION,
    SUMMARIES,
    exchange_binding,
    queue_binding,
    ref,
    ref_name,
)
from services.invitation.bootstrap import build_app
from services.invitation.settings import InvitationSettings
from shared.contract import COMMANDS, EVENT_DATA, INTERNAL_COMMANDS, EventEnvelope, RejectionCode
from shared.contract.examples import (
    COMMAND_EXAMPLES,
    RESULT_EXAMPLES,
    event_example,
)
from shared.contract.replies import ReplyError
from shared.contract.results import RESULTS
from shared.topology import (
    COMMANDS_EXCHANGE_NAME,
    COMMANDS_QUEUE_NAME,
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_QUEUE_NAME,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_ROUTING_KEY_HEADER,
    EVENTS_EXCHANGE_NAME,
)

if TYPE_CHECKING:
    from faststream._internal.broker import BrokerUsecase
    from faststream.asgi.handlers import HttpHandler

__all__ = ["ContractDocument", "app"]

Mode = Literal["validation", "serialization"]
Json = dict[str, Any]
_SCHEMA_REF = "#/components/schemas/{model}"
_REPLIES = "invitation.replies"


def app() -> FastStream:
    """The invitation app as `faststream docs gen --factory` needs it: nothing connects."""
    application = build_app(_DocumentSettings(development_mode=True, amqp_url=_DOCUMENT_BROKER))
    application.schema = ContractDocument(application.schema)
    return application


_DOCUMENT_BROKER = "amqp://guest:guest@localhost:5672/"


class _DocumentSettings(InvitationSettings):
    """Settings from code only: the committed document must not depend on the shell."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class ContractDocument(SpecificationFactory):
    """FastStream's generated document, completed from the contract models."""

    def __init__(self, generated: SpecificationFactory) -> None:
        self._generated = generated
        self.title = generated.title
        self.description = DESCRIPTION
        self.version = generated.version
        self.contact = generated.contact
        self.license = generated.license

    def add_broker(self, broker: BrokerUsecase[Any, Any, Any], /) -> SpecificationFactory:
        self._generated.add_broker(broker)
        return self

    def add_http_route(self, path: str, handler: HttpHandler) -> SpecificationFactory:
        self._generated.add_http_route(path, handler)
        return self

    def to_specification(self) -> Specification:
        document = self._generated.to_specification().to_jsonable()
        return ApplicationSchema.model_validate(complete(document))


def complete(document: Json) -> Json:
    """Add the contract's messages, channels and schemas to FastStream's `document`.

    One channel and one operation per command: the routing key on the topic exchange
    `invitations.commands`, which is where a client publishes (the intake's queue is an
    implementation detail, described but not an operation). One typed reply per command
    and one self-contained payload schema per event type, each with an example.
    """
    document["info"]["description"] = DESCRIPTION
    components = document.setdefault("components", {})
    channels, operations = document["channels"], document["operations"]

    # The generated raw-bytes message of the intake says nothing, and its operation would
    # send clients to the queue instead of the exchange: replace both.
    intake = channels[COMMANDS_QUEUE_NAME]
    for reference in intake["messages"].values():
        message = components.get("messages", {}).pop(ref_name(reference), {})
        components.get("schemas", {}).pop(ref_name(message.get("payload", {})), None)
    intake["messages"] = {n: ref("messages", n) for n in COMMANDS}
    intake["description"] = (
        f"The invitation service's own queue, bound `#` on `{COMMANDS_EXCHANGE_NAME}`. "
        "Clients never publish here: they publish to the exchange with the command name "
        "as routing key (the `command.*` channels). An unknown name is answered "
        "`unknown_command`, never dropped."
    )
    del operations[COMMANDS_QUEUE_NAME]

    channels[_REPLIES] = {
        "address": None,
        "description": "The sender's own reply queue, named by the command's `reply_to`.",
        "messages": {_reply_name(n): ref("messages", _reply_name(n)) for n in COMMANDS},
    }
    for name in COMMANDS:
        channel = f"command.{name}"
        channels[channel] = {
            "address": name,
            "title": name,
            "description": f"Routing key `{name}` on the topic exchange "
            f"`{COMMANDS_EXCHANGE_NAME}`.",
            "messages": {name: ref("messages", name)},
            "bindings": {"amqp": exchange_binding(COMMANDS_EXCHANGE_NAME)},
        }
        operations[name] = {
            "action": "receive",
            "title": name,
            "summary": _summary(name),
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
            "reply": {
                "address": {
                    "location": "$message.header#/reply_to",
                    "description": "The command's AMQP `reply_to`; no reply without it.",
                },
                "channel": {"$ref": f"#/channels/{_REPLIES}"},
                "messages": [{"$ref": f"#/channels/{_REPLIES}/messages/{_reply_name(name)}"}],
            },
            "bindings": {"amqp": {"ack": True, "deliveryMode": 2, "bindingVersion": "0.3.0"}},
        }
    channels[DEAD_LETTER_QUEUE_NAME] = {
        "address": DEAD_LETTER_QUEUE_NAME,
        "description": "Messages that could not be commands, kept for an operator.",
        "messages": {"DeadLetteredCommand": ref("messages", "DeadLetteredCommand")},
        "bindings": {"amqp": queue_binding(DEAD_LETTER_QUEUE_NAME)},
    }
    channels[EVENTS_EXCHANGE_NAME] = {
        "address": "{event_type}",
        "description": f"The topic exchange `{EVENTS_EXCHANGE_NAME}`; routing key = event type.",
        "parameters": {"event_type": {"description": "The event type.", "enum": list(EVENT_DATA)}},
        "messages": {t: ref("messages", t) for t in EVENT_DATA},
        "bindings": {"amqp": exchange_binding(EVENTS_EXCHANGE_NAME)},
    }
    operations[DEAD_LETTER_QUEUE_NAME] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{DEAD_LETTER_QUEUE_NAME}"},
        "messages": [{"$ref": f"#/channels/{DEAD_LETTER_QUEUE_NAME}/messages/DeadLetteredCommand"}],
    }
    operations[EVENTS_EXCHANGE_NAME] = {
        "action": "send",
        "summary": "Every stored contract event, in store order, at least once.",
        "channel": {"$ref": f"#/channels/{EVENTS_EXCHANGE_NAME}"},
        "messages": [
            {"$ref": f"#/channels/{EVENTS_EXCHANGE_NAME}/messages/{t}"} for t in EVENT_DATA
        ],
        "bindings": {"amqp": {"ack": True, "deliveryMode": 2, "bindingVersion": "0.3.0"}},
    }

    components["messages"] = {
        **components.get("messages", {}),
        **{name: _command_message(name, model) for name, model in COMMANDS.items()},
        **{_reply_name(name): _reply_message(name) for name in COMMANDS},
        "DeadLetteredCommand": _dead_letter_message(),
        **{t: _event_message(t, model) for t, model in EVENT_DATA.items()},
    }
    contract_models: list[tuple[type[BaseModel], Mode]] = [
        *((m, "validation") for m in COMMANDS.values()),
        (ReplyError, "serialization"),
        *((m, "serialization") for m in RESULTS.values()),
        *((m, "serialization") for m in EVENT_DATA.values()),
    ]
    components["schemas"] = {
        **components.get("schemas", {}),
        **_schemas(contract_models),
        **{_reply_schema_name(n): _reply_schema(n) for n in COMMANDS},
        **{_envelope_schema_name(t): _envelope_schema(t, m) for t, m in EVENT_DATA.items()},
        "RejectionCode": {
            "type": "string",
            "description": "The codes a rejection may carry; new ones may be added.",
            "enum": [code.value for code in RejectionCode],
        },
    }
    return document


def _summary(name: str) -> str:
    summary = SUMMARIES[name]
    if name in INTERNAL_COMMANDS:
        summary += " Sent by the system's own services."
    return summary


def _command_message(name: str, model: type[BaseModel]) -> Json:
    return {
        "name": name,
        "title": name,
        "summary": _summary(name),
        "contentType": "application/json",
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "Copied onto the reply.",
        },
        "payload": ref("schemas", model.__name__),
        "bindings": {"amqp": {"messageType": name, "bindingVersion": "0.3.0"}},
        "examples": [{"name": name, "payload": COMMAND_EXAMPLES[name]}],
    }


def _reply_name(command: str) -> str:
    return f"{command}.reply"


def _reply_schema_name(command: str) -> str:
    return f"{COMMANDS[command].__name__}Reply"


def _reply_schema(command: str) -> Json:
    return {
        "title": _reply_schema_name(command),
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


def _reply_message(command: str) -> Json:
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
        "name": _reply_name(command),
        "title": f"Reply to {command}",
        "summary": f"The one reply to a `{command}` that had `reply_to`.",
        "contentType": "application/json",
        "correlationId": {
            "location": "$message.header#/correlation_id",
            "description": "The command message's own `correlation_id`.",
        },
        "payload": ref("schemas", _reply_schema_name(command)),
        "examples": [
            {"name": "accepted", "payload": accepted},
            {"name": "rejected", "payload": rejected},
        ],
    }


def _dead_letter_message() -> Json:
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


def _envelope_schema_name(event_type: str) -> str:
    return f"{event_type}Event"


def _envelope_schema(event_type: str, data: type[BaseModel]) -> Json:
    """The whole message of one event type: the envelope with its own `data`, standalone
    (no allOf), so that code generators make one type per event."""
    schema = EventEnvelope.model_json_schema(ref_template=_SCHEMA_REF, mode="serialization")
    schema["title"] = _envelope_schema_name(event_type)
    schema["description"] = f"A `{event_type}` event as published on `{EVENTS_EXCHANGE_NAME}`."
    properties = schema["properties"]
    properties["event_type"] = {"type": "string", "const": event_type}
    properties["data"] = ref("schemas", data.__name__)
    return schema


def _event_message(event_type: str, data: type[BaseModel]) -> Json:
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
            },
        },
        "payload": ref("schemas", _envelope_schema_name(event_type)),
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        "examples": [{"name": event_type, "payload": event_example(event_type)}],
    }


def _schemas(models: Iterable[tuple[type[BaseModel], Mode]]) -> Json:
    """JSON schemas of `models` and of everything they refer to, by model name."""
    found: Json = {}
    for model, mode in models:
        schema = model.model_json_schema(ref_template=_SCHEMA_REF, mode=mode)
        for name, each in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if found.setdefault(name, each) != each:
                raise ValueError(f"two different schemas are both named {name!r}")
    return found
