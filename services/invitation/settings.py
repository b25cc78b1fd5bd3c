"""The invitation service's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from services.invitation.adapters.relay_lease import LeaseTimings
from services.invitation.adapters.sender_policy import SenderPolicyError, load_sender_policy
from shared.retry import RetrySettings
from shared.senders import broker_user


class InvitationSettings(RetrySettings):
    # How many commands may be in flight from the broker, and how many share a transaction.
    command_prefetch: int = 512
    batch_max: int = 256
    # A mass invite is decided a slice of rows per transaction, between other commands'
    # batches (batcher.py): as many rows as fit in `mass_invite_slice_seconds` at the
    # pace of the last slices (what a single command may wait behind), at most
    # `mass_invite_slice`.
    mass_invite_slice: int = Field(default=500, ge=1)
    mass_invite_slice_seconds: float = Field(default=0.25, gt=0)
    # A command body over this size is refused `invalid_command` and dead-lettered.
    command_max_bytes: int = 16 * 1024 * 1024
    # The relay can be switched off to run several intake-only instances (and in tests).
    relay_enabled: bool = True
    relay_section: int = 500
    # The relay's lease (adapters/relay_lease.py), in seconds: a standby tries for it
    # this often; the leader confirms it this often and publishes only within
    # `valid_for` of its last confirmation; a new holder waits the grace first, unless
    # it held the lease last itself or its last holder released it cleanly.
    relay_standby_poll: float = 1.0
    relay_lease_confirm_every: float = 0.25
    relay_lease_valid_for: float = 0.75
    relay_takeover_grace: float = 1.0
    # argon2id cost for temporary-password hashes (see README, "Secrets").
    temp_password_hash_time_cost: int = 1
    temp_password_hash_memory_kib: int = 2048
    # Who may send the internal commands (delivery reports, the expiry service's):
    # broker users, comma-separated; empty means the user of this service's AMQP_URL.
    internal_senders: str = ""
    # A YAML file of what each other sender may send (adapters/sender_policy.py); none
    # means every authenticated sender may send every public command for any tenant.
    sender_policy: str | None = None

    @field_validator("sender_policy")
    @classmethod
    def _policy_is_valid(cls, path: str | None) -> str | None:
        # Read here so that a bad file stops the service before it starts, naming the line.
        if path:
            try:
                load_sender_policy(path)
            except SenderPolicyError as error:  # reported as "SENDER_POLICY: <this>"
                raise ValueError(str(error).removeprefix("SENDER_POLICY ")) from None
        return path or None

    @model_validator(mode="after")
    def _lease_timings_fence(self) -> InvitationSettings:
        self.relay_lease_timings  # noqa: B018 (raises, naming the rule, when they cannot fence)
        return self

    @property
    def relay_lease_timings(self) -> LeaseTimings:
        return LeaseTimings(
            standby_poll=self.relay_standby_poll,
            confirm_every=self.relay_lease_confirm_every,
            valid_for=self.relay_lease_valid_for,
            takeover_grace=self.relay_takeover_grace,
        )

    @property
    def internal_sender_names(self) -> frozenset[str]:
        names = frozenset(n.strip() for n in self.internal_senders.split(",") if n.strip())
        return names or frozenset({broker_user(self.amqp_url)})
