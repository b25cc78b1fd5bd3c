"""Composing an email for sending: a claimed ledger row, rendered, with its link and password.

The link's token is derived and the password put in only here, at send time: neither is
ever stored (rules 12 and 19).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.notifier.adapters.ledger import OutboxEmail
from services.notifier.adapters.rendering import Renderer, build_message
from services.notifier.adapters.report_csv import Attachment
from services.notifier.domain.emails import delivery_address
from shared.secrets import TokenSigner


@dataclass(frozen=True)
class Composer:
    """Turns a claimed row into the MIME message, with its link and password."""

    renderer: Renderer
    signer: TokenSigner
    sender: str
    public_base_url: str

    def link(self, row: OutboxEmail) -> str | None:
        if row.invitation_id is None or row.link_generation is None:
            return None
        token = self.signer.token(row.invitation_id, row.link_generation)
        return f"{self.public_base_url.rstrip('/')}/accept?token={token}"

    def compose(
        self,
        row: OutboxEmail,
        password: str | None,
        now: float,
        attachments: Sequence[Attachment] = (),
    ) -> tuple[str, bytes]:
        """(subject, message bytes). UndeliverableAddressError for a domain without IDNA."""
        rendered = self.renderer.render(
            row.kind, row.locale, row.context, link=self.link(row), password=password
        )
        return rendered.subject, build_message(
            rendered,
            sender=self.sender,
            # As the envelope writes it: the domain in IDNA A-labels (rule 37).
            recipient=delivery_address(row.recipient).address,
            key=row.key,
            kind=row.kind,
            locale=row.locale,
            now=_utc(now),
            attachments=[(a.file_name, a.content_type, a.content) for a in attachments],
        )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
