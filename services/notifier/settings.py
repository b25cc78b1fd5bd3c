"""The notifier's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr

from shared.retry import RetrySettings
from shared.settings import FROM_FILE
from shared.topology import COMMANDS_EXCHANGE_NAME


class NotifierSettings(RetrySettings):
    # The mail server (contract names).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "invitations@localhost"
    smtp_username: str | None = None
    smtp_password: Annotated[SecretStr | None, FROM_FILE] = None
    smtp_starttls: bool = False
    # The most one email's SMTP session may take, connecting included.
    smtp_timeout: float = Field(default=30.0, gt=0)
    # One SMTP connection per worker: this bounds concurrency and reuses connections.
    # 16: within what real relays accept from one client (~10-20); on the mass invite it
    # gave more emails/s and less CPU per email than 8 in every pair of runs (bench/README.md).
    smtp_connections: int = 16
    # Emails handed to the server (DATA) and not yet recorded, at most: what a crash can
    # make the next leader send twice. The envelopes of the other connections are
    # prepared meanwhile. 1: at most one duplicate per crash; a distant relay (a long
    # round trip per DATA) may want more throughput for more duplicates.
    notifier_max_unrecorded: int = Field(default=1, ge=1)
    # Transient failures (4xx, connection refused) back off exponentially up to the max;
    # after `notifier_max_attempts` the email is recorded as failed.
    notifier_retry_base_delay: float = 1.0
    notifier_retry_max_delay: float = 300.0
    notifier_max_attempts: int = 30

    # The queue that wakes the notifier when events are published, and its prefetch.
    notifier_queue: str = "notifier.events"
    notifier_prefetch: int = 256
    # Where `record_temp_password_delivered` goes (the contract's exchange; tests isolate it).
    notifier_commands_exchange: str = COMMANDS_EXCHANGE_NAME
    # Events read from the store per planning transaction, and the fallback poll period
    # when no wake-up arrives (the event log, not the queue, is the source of truth).
    notifier_plan_batch: int = 1000
    notifier_poll_interval: float = 1.0
    # Leadership (leadership.py): the leader confirms its lease every third of the TTL
    # and sends only while its last confirmation is younger than the TTL; a standby
    # polls for the lease this often. A standby that takes over waits, at most, the
    # TTL + SMTP_TIMEOUT + 1 s after the last leader's last confirmation (none after a
    # clean stop), so the old leader's last send has ended before it starts.
    notifier_lease_ttl: float = Field(default=6.0, gt=0)
    notifier_standby_poll: float = Field(default=1.0, gt=0)

    # While SMTP is unreachable, a summary line this often (seconds).
    notifier_unreachable_log_every: float = Field(default=30.0, gt=0)

    # Shown in the emails.
    product_name: str = "Cloud Vault"

    @property
    def lease_holds_for(self) -> float:
        """How long after its last confirmation a leader may still be sending."""
        return self.notifier_lease_ttl + self.smtp_timeout + 1.0
