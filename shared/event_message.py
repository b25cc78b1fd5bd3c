"""How an event envelope travels on `invitations.events`: the relay's message, also republish's."""

from __future__ import annotations

import aio_pika

from shared.contract import EventEnvelope
from shared.telemetry import TRACEPARENT


def to_message(envelope: EventEnvelope, traceparent: str | None = None) -> aio_pika.Message:
    """`traceparent`: the W3C trace context to continue (a header, an extension of the
    contract: consumers that do not trace ignore it)."""
    headers: dict[str, aio_pika.abc.FieldValue] = {
        "event_type": envelope.event_type,
        "schema_version": envelope.schema_version,
        "position": envelope.position,
        "tenant_id": envelope.tenant_id or "",
    }
    if traceparent is not None:
        headers[TRACEPARENT] = traceparent
    return aio_pika.Message(
        envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.event_id),
        correlation_id=envelope.correlation_id,
        type=envelope.event_type,
        timestamp=envelope.occurred_at,
        headers=headers,
    )
