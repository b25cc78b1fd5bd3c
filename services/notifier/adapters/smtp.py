"""SMTP with aiosmtplib: one reused connection per sender worker.

An email goes in two steps: `prepare` (connect if needed, MAIL FROM, RCPT TO) and
`transfer` (DATA, the point of no return). The sender prepares on every connection at
once and lets only a few transfers be outstanding (unrecorded) at a time: that bounds
what a crash can send twice (sender.py).

Replies are sorted into transient and permanent failures (errors.py). A 5xx to the
message itself (recipient, sender or data refused) is permanent for that email; a 5xx
while connecting or logging in is a server or configuration fault that every email
would hit, so it is transient: the emails wait, with backoff, until it is fixed.

Internationalised addresses (rule 37): the domain always travels as IDNA A-labels; a
non-ASCII local part needs the server's SMTPUTF8 (RFC 6531), and a server without it
can never take that email, so that is a permanent failure, reported with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiosmtplib

from services.notifier.domain.emails import (
    DeliveryAddress,
    UndeliverableAddressError,
    delivery_address,
)
from services.notifier.errors import (
    MailError,
    PermanentMailError,
    ServerUnreachableError,
    TransferUnsettledError,
    TransientMailError,
)

__all__ = ["NO_SMTPUTF8", "SmtpConfig", "SmtpMailer", "classify"]

NO_SMTPUTF8 = (
    "the mail server does not support SMTPUTF8, which this internationalised address "
    "(a non-ASCII local part) needs"
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0
    # The whole transfer (DATA, the message, the final reply): what a leader that lost
    # its lease may still be handing over, so what the next one waits (leadership.py).
    transfer_timeout: float = 10.0
    # Servers drop idle connections; reconnect rather than fail the next email.
    max_idle: float = 30.0


def classify(error: Exception) -> TransientMailError | PermanentMailError:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        if codes and all(code >= 500 for code in codes):
            return PermanentMailError(f"recipient refused: {detail}")
        return TransientMailError(f"recipient deferred: {detail}")
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        if error.code >= 500:
            return PermanentMailError(f"recipient refused: {error.code} {error.message}")
        return TransientMailError(f"recipient deferred: {error.code} {error.message}")
    if isinstance(
        error,
        aiosmtplib.SMTPConnectResponseError
        | aiosmtplib.SMTPHeloError
        | aiosmtplib.SMTPAuthenticationError,
    ):
        return TransientMailError(f"server refused the session: {error.code} {error.message}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        kind = PermanentMailError if error.code >= 500 else TransientMailError
        return kind(f"{error.code} {error.message}")
    # Refused, reset, timed out (aiosmtplib's connect and timeout errors are these too).
    if isinstance(error, OSError | TimeoutError):
        return ServerUnreachableError(f"{type(error).__name__}: {error}")
    return TransientMailError(f"{type(error).__name__}: {error}")


def _unreachable(timeout: float) -> MailError:
    return ServerUnreachableError(f"no answer within {timeout:g}s")


def _unsettled(timeout: float) -> MailError:
    return TransferUnsettledError(
        f"transfer cut off after {timeout:g}s; the server may have the email"
    )


class SmtpMailer:
    """Sends emails over one SMTP connection, opened on first use and kept open."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._message: bytes | None = None  # prepared, not yet transferred

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            start_tls=config.starttls,
            timeout=config.timeout,
        )
        await client.connect()
        self._client = client
        return client

    async def send(self, message: bytes, recipient: str) -> None:
        """Hand `message` to the server for `recipient`, or raise a MailError."""
        await self.prepare(message, recipient)
        await self.transfer()

    async def prepare(self, message: bytes, recipient: str) -> None:
        """The envelope (connecting if needed, MAIL FROM, RCPT TO), short of the message:
        nothing is delivered until `transfer`, and `abandon` drops it. Within the
        configured timeout."""
        try:
            delivery = delivery_address(recipient)
        except UndeliverableAddressError as error:
            raise PermanentMailError(str(error)) from None
        async with self._within(self._config.timeout, _unreachable):
            client = self._client
            fresh = client is None or not client.is_connected
            if not fresh and time.monotonic() - self._last_used > self._config.max_idle:
                await self.close()
                fresh = True
            if fresh:
                client = await self._connect()
            assert client is not None
            try:
                await self._envelope(client, delivery, message)
            except aiosmtplib.SMTPServerDisconnected:
                if fresh:
                    raise
                # The kept connection had been dropped by the server: once more, fresh.
                await self.close()
                client = await self._connect()
                await self._envelope(client, delivery, message)
        self._message = message

    async def transfer(self) -> None:
        """DATA: the message is the server's once it answers 250 (the point of no return).

        Whole within the transfer timeout: a leader's hand-overs end within that bound
        after it stops starting them (leadership.py). Past it the connection is dropped
        (its unsent bytes with it) and the outcome is unknown: TransferUnsettledError.
        """
        message, self._message = self._message, None
        client = self._client
        if message is None or client is None:
            raise TransientMailError("no envelope prepared on this connection")
        async with self._within(self._config.transfer_timeout, _unsettled):
            await client.data(message)
        self._last_used = time.monotonic()

    async def abandon(self) -> None:
        """Drop a prepared envelope without sending (RSET), or the connection if it fails."""
        self._message = None
        client = self._client
        if client is None:
            return
        try:
            async with asyncio.timeout(self._config.timeout):
                await client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._abort()

    @contextlib.asynccontextmanager
    async def _within(
        self, seconds: float, timed_out: Callable[[float], MailError]
    ) -> AsyncIterator[None]:
        """The whole step within `seconds`, its errors as MailErrors; after a failure
        the session state is unknown: the next email starts afresh."""
        try:
            async with asyncio.timeout(seconds):
                yield
        except MailError:
            self._message = None
            raise
        except TimeoutError as error:
            self._abort()  # no QUIT: the server does not answer
            raise timed_out(seconds) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            await self.close()
            raise classify(error) from None

    async def _envelope(
        self, client: aiosmtplib.SMTP, delivery: DeliveryAddress, message: bytes
    ) -> None:
        if client.last_ehlo_response is None and client.last_helo_response is None:
            await client.ehlo()
        encoding = "ascii"
        options = []
        if delivery.smtputf8:
            if not client.supports_extension("smtputf8"):
                # Refused before MAIL FROM: the session is intact for the next email.
                raise PermanentMailError(NO_SMTPUTF8)
            options, encoding = ["SMTPUTF8"], "utf-8"
        if client.supports_extension("size"):
            options.insert(0, f"SIZE={len(message)}")
        await client.mail(self._config.sender, options=options, encoding=encoding)
        await client.rcpt(delivery.address, encoding=encoding)

    def _abort(self) -> None:
        """Drop the connection now, discarding what is still buffered (a close would
        flush it: a message cut off at its timeout could still go out later)."""
        client, self._client = self._client, None
        if client is not None:
            if isinstance(client.transport, asyncio.WriteTransport):
                client.transport.abort()
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
