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

from typing import TYPE_CHECKING, Any

from faststream import FastStream
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from faststream.specification.base import Specification, SpecificationFactory
from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from services.invitation.asyncapi_messages import (
    Json,
    Mode,
    command_message,
    dead_letter_message,
    envelope_schema,
    envelope_schema_name,
    event_message,
    exchange_binding,
    queue_binding,
    ref,
    ref_name,
    reply_message,
    reply_name,
    reply_schema,
    reply_schema_name,
    schemas,
    summary,
)
from services.invitation.bootstrap import build_app
from services.invitation.settings import InvitationSettings
from shared.contract import COMMANDS, EVENT_DATA, RejectionCode
from shared.contract.replies import ReplyError
from shared.contract.results import RESULTS
from shared.topology import (
    COMMANDS_EXCHANGE_NAME,
    COMMANDS_QUEUE_NAME,
    DEAD_LETTER_QUEUE_NAME,
    EVENTS_EXCHANGE_NAME,
)

if TYPE_CHECKING:
    from faststream._internal.broker import BrokerUsecase
    from faststream.asgi.handlers import HttpHandler

__all__ = ["ContractDocument", "app"]

_REPLIES = "invitation.replies"

# Paragraphs without line breaks: the YAML dump folds long lines itself.
DESCRIPTION = "\n\n".join(
    [
        "Invite people to organisations (tenants), deliver their temporary passwords and "
        "links, expire contractors' access. JSON bodies in UTF-8, content type "
        "`application/json`, persistent delivery; times are RFC 3339 with a timezone, "
        "durations ISO 8601.",
        f"Commands: publish to the durable topic exchange `{COMMANDS_EXCHANGE_NAME}` with "
        "the command's name as routing key. `command_id` is the idempotency key: the same "
        "id again from the same sender gets the first reply and changes nothing (with a "
        "different body, or from another sender, it is refused `command_id_reused`). "
        "With AMQP `reply_to`, exactly one reply is "
        "published there with the request's `correlation_id`. A message that cannot be a "
        f"command is dead-lettered to `{DEAD_LETTER_QUEUE_NAME}` (and answered, if it has "
        "`reply_to`).",
        "Senders: every command must carry the AMQP property `user_id` = the broker user "
        "it is published as (RabbitMQ refuses a `user_id` that is not the connection's "
        "login, so it proves the sender); without it the command is refused "
        "`unauthenticated`. Internal commands (marked so below) are accepted only from the "
        "invitation service's `INTERNAL_SENDERS`, and with a `SENDER_POLICY` other senders "
        "only what it lists for them (commands, tenant patterns); otherwise `forbidden`, "
        "with the rule that refused in `details`. Such refusals record nothing. Every "
        "event's envelope carries `sender` (that `user_id`) beside `actor` (what the "
        "caller said).",
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
        "messages": {reply_name(n): ref("messages", reply_name(n)) for n in COMMANDS},
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
            "summary": summary(name),
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
            "reply": {
                "address": {
                    "location": "$message.header#/reply_to",
                    "description": "The command's AMQP `reply_to`; no reply without it.",
                },
                "channel": {"$ref": f"#/channels/{_REPLIES}"},
                "messages": [{"$ref": f"#/channels/{_REPLIES}/messages/{reply_name(name)}"}],
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
        **{name: command_message(name, model) for name, model in COMMANDS.items()},
        **{reply_name(name): reply_message(name) for name in COMMANDS},
        "DeadLetteredCommand": dead_letter_message(),
        **{t: event_message(t, model) for t, model in EVENT_DATA.items()},
    }
    contract_models: list[tuple[type[BaseModel], Mode]] = [
        *((m, "validation") for m in COMMANDS.values()),
        (ReplyError, "serialization"),
        *((m, "serialization") for m in RESULTS.values()),
        *((m, "serialization") for m in EVENT_DATA.values()),
    ]
    components["schemas"] = {
        **components.get("schemas", {}),
        **schemas(contract_models),
        **{reply_schema_name(n): reply_schema(n) for n in COMMANDS},
        **{envelope_schema_name(t): envelope_schema(t, m) for t, m in EVENT_DATA.items()},
        "RejectionCode": {
            "type": "string",
            "description": "The codes a rejection may carry; new ones may be added.",
            "enum": [code.value for code in RejectionCode],
        },
    }
    return document
