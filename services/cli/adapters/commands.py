"""What the operator CLI asks the invitation service, over the broker like any client.

The CLI decides nothing itself and holds no key of the service: a manual temporary
password is retrieved with `retrieve_temp_password`, sealed to a key pair made for this
run (shared/sealed_box.py), and opened here. The service records the retrieval (who,
when) and destroys its sealed copy; the private key is forgotten when the run ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4

from shared.command_client import CommandClient
from shared.contract import Reply, ReplyError
from shared.sealed_box import RecipientKeys, SealedBoxError

__all__ = ["Retrieved", "SealedRetrieval"]


@dataclass(frozen=True)
class Retrieved:
    invitation_id: UUID
    email: str
    valid_until: str | None
    password: str = field(repr=False)  # never in a log line or a traceback


class SealedRetrieval:
    """One broker connection and one ephemeral key pair for a CLI run's retrievals."""

    def __init__(self, amqp_url: str, actor: str, *, within: float = 30.0) -> None:
        self._keys = RecipientKeys()
        self._actor = actor
        self._within = within
        self._loop = asyncio.new_event_loop()
        self._client = CommandClient(amqp_url)

    def __enter__(self) -> SealedRetrieval:
        try:
            self._loop.run_until_complete(self._client.connect())
        except BaseException:
            self._loop.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._loop.run_until_complete(self._client.close())
        finally:
            self._loop.close()

    def _send(self, name: str, tenant_id: str, **fields: Any) -> Reply:
        body = {"command_id": str(uuid4()), "actor": self._actor, "tenant_id": tenant_id}
        body.update({k: str(v) for k, v in fields.items() if v is not None})
        return self._loop.run_until_complete(self._client.send(name, body, within=self._within))

    def invitation(
        self, tenant_id: str, *, invitation_id: UUID | None = None, email: str | None = None
    ) -> dict[str, Any] | ReplyError:
        """The invitation as `get_invitation` answers it (to name and localise a sheet)."""
        reply = self._send("get_invitation", tenant_id, invitation_id=invitation_id, email=email)
        if reply.error is not None or reply.result is None:
            return reply.error or ReplyError(code="no_result", message="an empty reply")
        found: dict[str, Any] = reply.result["invitation"]
        return found

    def retrieve(
        self, tenant_id: str, *, invitation_id: UUID | None = None, email: str | None = None
    ) -> Retrieved | ReplyError:
        """The manual password, opened; after this it can never be retrieved again."""
        reply = self._send(
            "retrieve_temp_password",
            tenant_id,
            invitation_id=invitation_id,
            email=email,
            recipient_public_key=self._keys.public_key,
        )
        if reply.error is not None or reply.result is None:
            return reply.error or ReplyError(code="no_result", message="an empty reply")
        result = reply.result
        try:
            password = self._keys.open(str(result["sealed_temp_password"]))
        except SealedBoxError as error:
            return ReplyError(code="sealed_box", message=str(error))
        return Retrieved(
            UUID(str(result["invitation_id"])),
            str(result["email"]),
            result["valid_until"],
            password,
        )
