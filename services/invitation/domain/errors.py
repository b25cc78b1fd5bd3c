"""Domain errors.

    DomainError            a command refused by a product rule; `code` is a contract
                           rejection code, `details` goes into the reply as is.

Transient faults (database, broker) are not domain errors: they propagate and the
message is retried. Malformed messages never reach the domain.
"""

from __future__ import annotations

from typing import Any

from shared.contract.codes import RejectionCode


class DomainError(Exception):
    def __init__(
        self, code: RejectionCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
