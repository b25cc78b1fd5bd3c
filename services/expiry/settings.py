"""The expiry service's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.retry import RetrySettings
from shared.topology import COMMANDS_EXCHANGE_NAME


class ExpirySettings(RetrySettings):
    # This service holds no secret (it reads only the unencrypted event store and sends
    # commands), so it starts without SECRETS_KEY; a key given is still checked.
    secrets_key_required: ClassVar[bool] = False

    # How often the event store is asked for new events once caught up (seconds).
    expiry_poll_interval: float = Field(default=0.2, gt=0, le=60)
    # No reply to a command after this long: send the same command again (doubling).
    expiry_reply_timeout: float = Field(default=60.0, gt=0)
    # Publishes awaiting the broker's confirm at once, in a burst of due deadlines.
    expiry_max_in_flight: int = Field(default=256, ge=1)
    # The contract's exchange; another name isolates a staging run or a test.
    expiry_commands_exchange: str = COMMANDS_EXCHANGE_NAME
