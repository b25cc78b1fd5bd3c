"""What each person received: for the walkthrough, operators and tests.

Reads the notifier's email rows (never the bodies: they are not stored, and an
automatic invitation's body held a password). For the bodies themselves, point
SMTP_HOST/SMTP_PORT at a sink (the tests use an aiosmtpd Controller) and read it.
"""

from __future__ import annotations

from collections import defaultdict

from services.notifier.adapters.ledger import Delivery, open_ledger


def received(
    database_url: str, *, tenant_id: str | None = None, recipient: str | None = None
) -> dict[str, list[Delivery]]:
    """recipient -> their emails in event order (kind, subject, status, when sent)."""
    ledger = open_ledger(database_url)
    try:
        rows = ledger.deliveries(tenant_id=tenant_id, recipient=recipient)
    finally:
        ledger.close()
    by_recipient: dict[str, list[Delivery]] = defaultdict(list)
    for row in rows:
        by_recipient[row.recipient].append(row)
    return dict(by_recipient)
