"""Commands the notifier sends the invitation service: `record_temp_password_delivered`,
`record_invitation_email_sent` and `record_notification_failed` (internal: only the
services may send them).

Published with publisher confirms, persistent, and `mandatory` with returns raised: a
command that no queue would receive (the invitation service never declared its queue)
is an error here, so its row stays unreported and it is published again later. Each
command id is derived from what it reports (the password's id, the invitation's link,
the email's key), so repeats are idempotent.
"""

from __future__ import annotations

from uuid import UUID, uuid5

import aio_pika

from services.notifier.adapters.ledger import FailedEmail
from shared.contract import (
    Command,
    RecordInvitationEmailSent,
    RecordNotificationFailed,
    RecordTempPasswordDelivered,
)
from shared.service import close_channel

ACTOR = "service:notifier"
_COMMAND_NAMESPACE = UUID("b7d6a0f2-3e4c-4c1a-9f0e-8a2d6c5b4e31")


def delivered_command(email: str, temp_password_id: UUID) -> RecordTempPasswordDelivered:
    return RecordTempPasswordDelivered(
        command_id=uuid5(_COMMAND_NAMESPACE, f"record_temp_password_delivered:{temp_password_id}"),
        actor=ACTOR,
        email=email,
        temp_password_id=temp_password_id,
    )


def failed_command(failure: FailedEmail) -> RecordNotificationFailed:
    assert failure.tenant_id is not None
    return RecordNotificationFailed(
        command_id=uuid5(_COMMAND_NAMESPACE, f"record_notification_failed:{failure.key}"),
        actor=ACTOR,
        tenant_id=failure.tenant_id,
        message_key=failure.key,
        kind=failure.kind,
        recipient=failure.recipient,
        invitation_id=failure.invitation_id,
        reason=failure.reason[:1000] or "no reason given",
    )


def email_sent_command(
    tenant_id: str, invitation_id: UUID, link_generation: int
) -> RecordInvitationEmailSent:
    key = f"record_invitation_email_sent:{invitation_id}:{link_generation}"
    return RecordInvitationEmailSent(
        command_id=uuid5(_COMMAND_NAMESPACE, key),
        actor=ACTOR,
        tenant_id=tenant_id,
        invitation_id=invitation_id,
        link_generation=link_generation,
    )


class CommandPublisher:
    """Publishes on a channel of its own on `connection` (the service's one), opened at
    the first command."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        exchange_name: str,
        *,
        user_id: str,
    ) -> None:
        """`user_id`: the connection's broker login (rule 29: the proof of the sender)."""
        self._connection = connection
        self._user_id = user_id
        self._exchange_name = exchange_name
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def _ready(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            self._exchange = await self._channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def record_temp_password_delivered(self, email: str, temp_password_id: UUID) -> None:
        command = delivered_command(email, temp_password_id)
        await self._publish("record_temp_password_delivered", command)

    async def record_invitation_email_sent(
        self, tenant_id: str, invitation_id: UUID, link_generation: int
    ) -> None:
        command = email_sent_command(tenant_id, invitation_id, link_generation)
        await self._publish("record_invitation_email_sent", command)

    async def record_notification_failed(self, failure: FailedEmail) -> None:
        await self._publish("record_notification_failed", failed_command(failure))

    async def _publish(self, name: str, command: Command) -> None:
        exchange = await self._ready()
        await exchange.publish(
            aio_pika.Message(
                command.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(command.command_id),
                correlation_id=str(command.command_id),
                # Delivery reports are internal: accepted only from INTERNAL_SENDERS.
                user_id=self._user_id,
            ),
            routing_key=name,
            mandatory=True,
        )

    async def close(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None:
            await close_channel(channel)
