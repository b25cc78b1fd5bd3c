"""The expiry service's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.retry import RetrySettings
from shared.topology import COMMANDS_EXCHANGE_NAME


class ExpirySettings(RetrySettings):
    # How often the event store is asked for new events once caught up (seconds).
    expiry_poll_interval: float = Field(default=0.2, gt=0, le=60)
    # No reply to a command after this long: send the same command again (doubling).
    expiry_reply_timeout: float = Field(default=60.0, gt=0)
    # Publishes awaiting the broker's confirm at once, in a burst of due deadlines.
    expiry_max_in_flight: int = Field(default=256, ge=1)
    # The contract's exchange; another name isolates a staging run or a test.
    expiry_commands_exchange: str = COMMANDS_EXCHANGE_NAME

    @model_validator(mode="after")
    def _secrets_key_required_outside_development(self) -> ExpirySettings:
        # Replaces the base check: this service holds no secret (it reads only the
        # unencrypted event store and sends commands), so SECRETS_KEY is not required.
        return self
