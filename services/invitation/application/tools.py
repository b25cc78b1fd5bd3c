"""What every use case is handed, and the shapes of its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.invitation.application.passwords import PasswordFactory
from services.invitation.domain.errors import DomainError
from shared.secrets import (
    Sealer,
    TokenSigner,
)


@dataclass(frozen=True)
class Tools:
    """What the use cases are handed besides the unit of work: link tokens, sealing, passwords."""

    signer: TokenSigner
    sealer: Sealer
    passwords: PasswordFactory


@dataclass(frozen=True)
class Refusal:
    """A rejection that still records events (a refused acceptance is audited)."""

    error: DomainError


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()
