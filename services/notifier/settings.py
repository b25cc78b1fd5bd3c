"""The notifier's settings (environment), beyond the contract's shared ones."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from services.notifier.leadership import fence_holds_for
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
    # The most one step of an email's SMTP session may take: connecting and the envelope
    # (MAIL, RCPT), which deliver nothing.
    smtp_timeout: float = Field(default=30.0, gt=0)
    # The most a transfer may take (DATA, the message, the server's final reply); past it
    # the connection is dropped and the email is sent again later with the same
    # Message-ID (the server may have taken it). It bounds how long a leader that lost
    # its lease may still be handing an email over, so it is what a new leader waits
    # after a crash (below). 10 s: our emails are a few KB; the largest, the report of a
    # 10,000-invitee mass invite, is ~3 MB, which needs ~3 Mbit/s to the relay. Raise it
    # for a slow link or a relay that filters before answering. Never above
    # SMTP_TIMEOUT (an error); its default follows a smaller SMTP_TIMEOUT down.
    notifier_transfer_timeout: float = Field(default=10.0, gt=0)
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
    # and starts a transfer only while its last confirmation is younger than the TTL; a
    # standby polls for the lease this often. A standby that takes over waits, at most,
    # TTL + NOTIFIER_TRANSFER_TIMEOUT + 1 s (14 s) after the last leader's last
    # confirmation, so the old leader's last transfer has ended before it starts; none
    # after a clean stop, after a leader that said it stopped sending (seen within a
    # poll), or after a leader found dead on this host (adapters/liveness.py).
    # Database load: a standby, one query per poll (2/s); the leader, one per
    # confirmation (1/s), and while it waits out a fence, 4 more per second.
    notifier_lease_ttl: float = Field(default=3.0, gt=0)
    notifier_standby_poll: float = Field(default=0.5, gt=0)

    # While SMTP is unreachable, a summary line this often (seconds).
    notifier_unreachable_log_every: float = Field(default=30.0, gt=0)

    # Shown in the emails.
    product_name: str = "Cloud Vault"

    @model_validator(mode="after")
    def _transfer_within_smtp_timeout(self) -> NotifierSettings:
        explicit = "notifier_transfer_timeout" in self.model_fields_set
        if explicit and self.notifier_transfer_timeout > self.smtp_timeout:
            raise ValueError("NOTIFIER_TRANSFER_TIMEOUT must not exceed SMTP_TIMEOUT")
        return self

    @property
    def transfer_timeout(self) -> float:
        """The bound on one transfer (DATA): never more than the SMTP timeout."""
        return min(self.notifier_transfer_timeout, self.smtp_timeout)

    @property
    def lease_holds_for(self) -> float:
        """How long after its last confirmation a leader may still be sending."""
        return fence_holds_for(self.notifier_lease_ttl, self.transfer_timeout)
