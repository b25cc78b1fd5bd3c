"""SMTP with aiosmtplib: one reused connection per sender worker.

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
import time
from dataclasses import dataclass

import aiosmtplib

from services.notifier.domain.emails import (
    DeliveryAddress,
    UndeliverableAddressError,
    delivery_address,
)
from services.notifier.errors import (
    PermanentMailError,
    ServerUnreachableError,
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
    # Servers drop idle connections; reconnect rather than fail the next email.
    max_idle: float = 30.0


def classify(error: Exception) -> TransientMailError | PermanentMailError:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        if codes and all(code >= 500 for code in codes):
            return PermanentMailError(f"recipient refused: {detail}")
        return TransientMailError(f"recipient deferred: {detail}")
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


class SmtpMailer:
    """Sends emails over one SMTP connection, opened on first use and kept open."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

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
        """Hand `message` to the server for `recipient`, or raise a MailError.

        The whole of it (connecting included) takes at most the configured timeout: a
        leader's sends end within that bound after it stops starting new ones
        (leadership.py)."""
        try:
            delivery = delivery_address(recipient)
        except UndeliverableAddressError as error:
            raise PermanentMailError(str(error)) from None
        try:
            async with asyncio.timeout(self._config.timeout):
                await self._send(delivery, message)
        except TimeoutError as error:
            self._abort()  # no QUIT: the server does not answer
            raise ServerUnreachableError(f"no answer within {self._config.timeout:g}s") from error

    async def _send(self, delivery: DeliveryAddress, message: bytes) -> None:
        client = self._client
        fresh = client is None or not client.is_connected
        if not fresh and time.monotonic() - self._last_used > self._config.max_idle:
            await self.close()
            fresh = True
        try:
            if fresh:
                client = await self._connect()
            assert client is not None
            try:
                await self._sendmail(client, delivery, message)
            except aiosmtplib.SMTPServerDisconnected:
                if fresh:
                    raise
                # The kept connection had been dropped by the server: once more, fresh.
                await self.close()
                client = await self._connect()
                await self._sendmail(client, delivery, message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # After a failure the session state is unknown: start the next one afresh.
            await self.close()
            raise classify(error) from None
        self._last_used = time.monotonic()

    async def _sendmail(
        self, client: aiosmtplib.SMTP, delivery: DeliveryAddress, message: bytes
    ) -> None:
        options = ["SMTPUTF8"] if delivery.smtputf8 else []
        try:
            await client.sendmail(
                self._config.sender, [delivery.address], message, mail_options=options
            )
        except aiosmtplib.SMTPNotSupported:
            if not delivery.smtputf8:
                raise
            # Refused before MAIL FROM: the session is intact for the next email.
            raise PermanentMailError(NO_SMTPUTF8) from None

    def _abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
