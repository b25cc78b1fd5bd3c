"""How an event envelope travels on `invitations.events`: the relay's message, also republish's."""

from __future__ import annotations

import aio_pika

from shared.contract import EventEnvelope


def to_message(envelope: EventEnvelope) -> aio_pika.Message:
    return aio_pika.Message(
        envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.event_id),
        correlation_id=envelope.correlation_id,
        type=envelope.event_type,
        timestamp=envelope.occurred_at,
        headers={
            "event_type": envelope.event_type,
            "schema_version": envelope.schema_version,
            "position": envelope.position,
            "tenant_id": envelope.tenant_id or "",
        },
    )
