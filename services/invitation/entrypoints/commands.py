"""Command intake: one subscriber for every routing key on `invitations.commands`.

Thin by design: parse (routing key -> contract model), check the sender (the AMQP
`user_id`, application/senders.py), hand to the batcher, return the reply (FastStream
publishes it to `reply_to` with the request's correlation id). Anything that cannot be
a command is answered if it can be and dead-lettered, with the reason in headers, then
acked: a bad message never blocks the queue. A command refused for its sender
(`unauthenticated`, `forbidden`) is answered and acked, and never reaches the batcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from pydantic import ValidationError

from services.invitation import metrics
from services.invitation.application import IncomingCommand
from shared.contract import COMMANDS, RejectionCode, Reply
from shared.telemetry import current_traceparent
from shared.topology import (
    COMMANDS_EXCHANGE,
    COMMANDS_QUEUE,
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_QUEUE_NAME,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_ROUTING_KEY_HEADER,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Malformed:
    code: RejectionCode
    message: str
    command_id: str | None
    details: dict[str, Any]


# Bodies larger than this are parsed in a worker thread (see `on_command`).
_PARSE_IN_THREAD_BYTES = 64 * 1024
# A refusal lists at most this many validation problems (a deeply nested body can have
# thousands, each with a long location).
_MAX_PROBLEMS = 20


def parse_command(
    routing_key: str,
    body: bytes,
    sender: str | None = None,
    *,
    max_bytes: int = 16 * 1024 * 1024,
) -> IncomingCommand | Malformed:
    """The command in `body`, or why it cannot be one. Never raises on bad input: anything
    that escaped here would be requeued and retried for nothing."""
    if len(body) > max_bytes:
        return Malformed(
            RejectionCode.INVALID_COMMAND,
            f"body of {len(body)} bytes is over the limit of {max_bytes}",
            None,
            {"max_bytes": max_bytes},
        )
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        # ValueError covers JSONDecodeError and integers past Python's digit limit.
        return Malformed(RejectionCode.INVALID_COMMAND, f"body is not JSON: {error}", None, {})
    except RecursionError:
        return Malformed(RejectionCode.INVALID_COMMAND, "body is nested too deeply", None, {})
    command_id = raw.get("command_id") if isinstance(raw, dict) else None
    command_id = command_id if isinstance(command_id, str) else None
    model = COMMANDS.get(routing_key)
    if model is None:
        return Malformed(
            RejectionCode.UNKNOWN_COMMAND,
            f"unknown command {routing_key!r}",
            command_id,
            {"known": sorted(COMMANDS)},
        )
    if not isinstance(raw, dict):
        return Malformed(RejectionCode.INVALID_COMMAND, "body is not a JSON object", None, {})
    try:
        command = model.model_validate(raw)
    except ValidationError as error:
        # include_input=False: a rejected field may hold a token or a password.
        problems = error.errors(include_input=False, include_url=False, include_context=False)
        return Malformed(
            RejectionCode.INVALID_COMMAND,
            f"{routing_key} failed validation ({error.error_count()} problem(s))",
            command_id,
            {"errors": json.loads(json.dumps(problems[:_MAX_PROBLEMS], default=str))},
        )
    except RecursionError:
        return Malformed(RejectionCode.INVALID_COMMAND, "body is nested too deeply", command_id, {})
    return IncomingCommand(routing_key, command, sender)


def register_intake(
    broker: RabbitBroker,
    submit: Callable[[IncomingCommand], Awaitable[Reply]],
    authorize: Callable[[IncomingCommand], Reply | None],
    *,
    prefetch: int,
    max_bytes: int = 16 * 1024 * 1024,
) -> None:
    """`submit` runs a parsed command (the batcher, built when the app starts);
    `authorize` refuses one its sender may not send (the sender gate), or returns None."""

    async def whole_message(message: RabbitMessage) -> RabbitMessage:
        # The broker runs without dependency injection (apply_types=False): the handler
        # gets what the decoder returns, so hand it the message, routing key and all.
        return message

    async def dead_letter(message: RabbitMessage, malformed: Malformed) -> None:
        raw = message.raw_message
        await broker.publish(
            raw.body,
            routing_key=DEAD_LETTER_QUEUE_NAME,
            persist=True,
            content_type=raw.content_type,
            message_id=raw.message_id,
            correlation_id=raw.correlation_id,
            headers={
                **(raw.headers or {}),
                DEAD_LETTER_REASON_HEADER: malformed.code.value,
                DEAD_LETTER_DETAIL_HEADER: malformed.message[:500],
                DEAD_LETTER_ROUTING_KEY_HEADER: raw.routing_key or "",
            },
        )

    @broker.subscriber(
        COMMANDS_QUEUE,
        COMMANDS_EXCHANGE,
        decoder=whole_message,
        # A crash mid-command requeues it; the queue's delivery limit then dead-letters
        # a command that fails every time, so it cannot loop forever.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=Channel(prefetch_count=prefetch),
        title="invitation.commands",
        description="Every command of the contract; the routing key is the command name.",
    )
    async def on_command(message: RabbitMessage) -> dict[str, Any] | None:
        started = time.perf_counter()
        routing_key = message.raw_message.routing_key or ""
        # RabbitMQ checked it against the connection's login: the proof of the sender.
        sender = message.raw_message.user_id or None
        body = message.body
        if len(body) > _PARSE_IN_THREAD_BYTES:
            # A mass invite (~1 MB for 10,000 rows) takes a tenth of a second or more to
            # decode and validate: not on the event loop, where every other command's
            # intake and reply waits.
            parsed = await asyncio.to_thread(
                parse_command, routing_key, body, sender, max_bytes=max_bytes
            )
        else:
            parsed = parse_command(routing_key, body, sender, max_bytes=max_bytes)
        if isinstance(parsed, Malformed):
            log.warning(
                "dead-lettered %s: %s",
                routing_key,
                parsed.message,
                extra={
                    "command": routing_key,
                    "code": parsed.code.value,
                    "correlation_id": parsed.command_id,
                },
            )
            await dead_letter(message, parsed)
            reply = Reply.rejected(parsed.command_id, parsed.code, parsed.message, parsed.details)
        else:
            # The consume span's context (FastStream's middleware; None when tracing is
            # off), kept with the command's events for the relay and the notifier.
            traceparent = current_traceparent()
            if traceparent is not None:
                parsed = dataclasses.replace(parsed, traceparent=traceparent)
            refused = authorize(parsed)
            reply = refused if refused is not None else await submit(parsed)
            command = parsed.command
            outcome = reply.status if reply.error is None else f"rejected {reply.error.code}"
            if refused is not None and refused.error is not None:
                outcome += f": {refused.error.message}"  # for the operator: which rule
            log.log(
                logging.INFO if refused is None else logging.WARNING,
                "%s %s",
                routing_key,
                outcome,
                extra={
                    "command": routing_key,
                    "correlation_id": str(command.command_id),
                    "tenant_id": getattr(command, "tenant_id", None),
                    "sender": sender,
                    "code": None if reply.error is None else reply.error.code,
                },
            )
        metrics.observe_command(routing_key, reply, time.perf_counter() - started)
        return reply.model_dump(mode="json") if message.reply_to else None
