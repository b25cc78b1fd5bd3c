"""Commands the operator CLI sends to the invitation service, over the broker like any client.

The CLI decides nothing itself: a retrieval is recorded by the invitation service, which
checks it and records who asked, exactly as for a backend.
"""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from shared.command_client import CommandClient
from shared.contract import Reply


def record_retrieval(
    amqp_url: str, email: str, temp_password_id: UUID, actor: str, *, within: float = 30.0
) -> Reply:
    """Send `retrieve_temp_password` and wait for its reply."""
    body = {
        "command_id": str(uuid4()),
        "actor": actor,
        "email": email,
        "temp_password_id": str(temp_password_id),
    }

    async def send() -> Reply:
        async with CommandClient(amqp_url) as client:
            return await client.send("retrieve_temp_password", body, within=within)

    return asyncio.run(send())
