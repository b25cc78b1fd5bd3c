"""The invitation service's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from shared.settings import ServiceSettings


class InvitationSettings(ServiceSettings):
    # How many commands may be in flight from the broker, and how many share a transaction.
    command_prefetch: int = 512
    batch_max: int = 256
    # A command body over this size is refused `invalid_command` and dead-lettered.
    command_max_bytes: int = 16 * 1024 * 1024
    # The relay can be switched off to run several intake-only instances (and in tests).
    relay_enabled: bool = True
    relay_section: int = 500
    # argon2id cost for temporary-password hashes (see README, "Secrets").
    temp_password_hash_time_cost: int = 1
    temp_password_hash_memory_kib: int = 2048
