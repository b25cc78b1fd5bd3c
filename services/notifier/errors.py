"""Errors of the notifier, as one small tree.

    MailError                 handing one email to the SMTP server failed
    ├── TransientMailError    try again later, with backoff: 4xx replies, a server
    │   │                     refusing our login, a connection lost mid-email
    │   └── ServerUnreachableError   no session at all: connection refused, timed out
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


class PermanentMailError(MailError):
    """Not worth trying again."""
