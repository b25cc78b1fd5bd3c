"""Single invites, each followed through its four stages.

`InviteTracker` publishes `invite_user` commands (each to a new email, spread over a few
tenants, so no domain rule refuses one) and watches:

1. the command published (driver clock, just before the publish);
2. its reply on the driver's reply queue (matched by correlation id);
3. its `UserInvited` event on `invitations.events` (an exclusive queue bound to that
   routing key; matched by email), with the event's stored `occurred_at`;
4. the invitation email accepted by the SMTP sink (matched by recipient).

An invite is complete when all four are seen; a rejected reply is a failure, not a
completion. Works against any pipeline speaking the contract (the real services or
bench/naive.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench.smtp_sink import SmtpSink
from shared.senders import broker_user
from shared.topology import COMMANDS_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME

__all__ = ["Invite", "InviteTracker"]


@dataclass
class Invite:
    email: str
    command_id: str
    published: float = 0.0  # time.monotonic()
    published_at: float = 0.0  # epoch seconds, the same instant
    replied: float | None = None  # time.monotonic()
    event_seen: float | None = None  # time.monotonic()
    occurred_at: float | None = None  # epoch seconds, the stored event's timestamp
    emailed: float | None = None  # epoch seconds, when the sink accepted it
    completed: float | None = None  # time.monotonic(), when the driver saw the last stage
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def reply_ms(self) -> float:
        assert self.replied is not None
        return (self.replied - self.published) * 1000

    @property
    def email_ms(self) -> float:
        """Stored event -> email accepted, both wall-clock on this machine."""
        assert self.emailed is not None
        assert self.occurred_at is not None
        return (self.emailed - self.occurred_at) * 1000


class InviteTracker:
    def __init__(self, amqp_url: str, sink: SmtpSink, *, tenants: int = 16) -> None:
        self._url = amqp_url
        self._user_id = broker_user(amqp_url)
        self._sink = sink
        self._run = uuid.uuid4().hex[:8]
        self._tenants = [f"bench-{self._run}-{n}" for n in range(tenants)]
        self._count = 0
        self.by_command: dict[str, Invite] = {}
        self.by_email: dict[str, Invite] = {}
        self.completed = 0
        self.failures: list[str] = []
        self.on_complete: Callable[[Invite], None] = lambda _: None

    async def __aenter__(self) -> InviteTracker:
        self._connection = await aio_pika.connect_robust(self._url)
        # Commands: confirmed, as a careful backend service would publish them.
        publishing = await self._connection.channel(publisher_confirms=True)
        self._exchange = await publishing.declare_exchange(
            COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        listening = await self._connection.channel()
        await listening.set_qos(prefetch_count=0)
        self._replies = await listening.declare_queue(exclusive=True, auto_delete=True)
        await self._replies.consume(self._on_reply, no_ack=True)
        events = await listening.declare_exchange(
            EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        tap = await listening.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(events, "UserInvited")
        await tap.consume(self._on_event, no_ack=True)
        self._sink.received()  # forget emails from before (warm-up probes)
        self._watcher = asyncio.create_task(self._watch_sink())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher
        await self._connection.close()

    def new(self) -> Invite:
        self._count += 1
        email = f"u{self._count}-{self._run}@bench.example"
        invite = Invite(email=email, command_id=str(uuid.uuid4()))
        self.by_command[invite.command_id] = invite
        self.by_email[email] = invite
        return invite

    async def publish(self, invite: Invite) -> None:
        tenant = self._tenants[self._count % len(self._tenants)]
        body = {
            "command_id": invite.command_id,
            "tenant_id": tenant,
            "actor": "admin@bench.example",
            "email": invite.email,
            "role": "user",
        }
        invite.published, invite.published_at = time.monotonic(), time.time()
        await self._exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=invite.command_id,
                message_id=invite.command_id,
                reply_to=self._replies.name,
                user_id=self._user_id,
            ),
            routing_key="invite_user",
        )

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        invite = self.by_command.get(message.correlation_id or "")
        if invite is None:
            return
        invite.replied = time.monotonic()
        reply = json.loads(message.body)
        if reply.get("status") != "accepted":
            self.failures.append(f"{invite.email}: {reply.get('error')}")
            if not invite.done.done():
                invite.done.set_exception(RuntimeError(f"invite refused: {reply.get('error')}"))
            return
        self._check(invite)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        envelope = json.loads(message.body)
        invite = self.by_email.get(envelope["data"].get("email", ""))
        if invite is None or invite.event_seen is not None:
            return  # not ours, or a duplicate (at-least-once relay)
        invite.event_seen = time.monotonic()
        invite.occurred_at = datetime.fromisoformat(envelope["occurred_at"]).timestamp()
        self._check(invite)

    async def _watch_sink(self, every: float = 0.01) -> None:
        while True:
            for accepted in self._sink.received():
                invite = self.by_email.get(accepted.recipient)
                if invite is not None and invite.emailed is None:
                    invite.emailed = accepted.at
                    self._check(invite)
            await asyncio.sleep(every)

    def _check(self, invite: Invite) -> None:
        if (
            invite.replied is None
            or invite.event_seen is None
            or invite.emailed is None
            or invite.completed is not None
            or invite.done.done()
        ):
            return
        invite.completed = time.monotonic()
        self.completed += 1
        invite.done.set_result(None)
        self.on_complete(invite)
