"""Errors of the notifier, as one small tree.

    MailError                 handing one email to the SMTP server failed
    ├── TransientMailError    try again later, with backoff: 4xx replies, a server
    │   │                     refusing our login, a connection lost mid-email
    │   ├── ServerUnreachableError   no session at all: connection refused, timed out
    │   └── TransferUnsettledError   a transfer cut off at its timeout: the server may
    │                         or may not have the email; sent again, same Message-ID
    └── PermanentMailError    this email will never be accepted: a 5xx reply to it

Where they are handled: sender.py turns the first into a `Retry` (or a `Failed` after
the last attempt) and the second into a `Failed`, recorded on the email's row and
counted; neither ever stops other emails. While the server is unreachable, the sender
logs a summary every 30 s rather than a line per retry (delivery_log.py).
"""

from __future__ import annotations


class MailError(Exception):
    """An email could not be handed to the SMTP server."""


class TransientMailError(MailError):
    """Worth trying again later."""


class ServerUnreachableError(TransientMailError):
    """No SMTP session could be opened: every email waits, not just this one."""


class TransferUnsettledError(TransientMailError):
    """The transfer (DATA) did not end within its bound: its outcome is unknown, so it
    is neither sent nor failed; the email goes again later (a possible duplicate,
    recognisable by its Message-ID)."""


class PermanentMailError(MailError):
    """Not worth trying again."""
