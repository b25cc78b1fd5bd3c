"""Email syntax and normalisation (rule 1): trimmed, lower-cased, then validated."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode


def normalise_email(raw: str) -> str:
    candidate = raw.strip().lower()
    try:
        # Syntax only: deliverability would need DNS, which a pure domain never does.
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        raise DomainError(
            RejectionCode.INVALID_EMAIL, f"not a valid email address: {error}"
        ) from None
    return candidate
