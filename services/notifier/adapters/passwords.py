"""Opening a temporary password's sealed copy: the notifier alone does it (rule 12).

The sealed copy lives in the invitation store's side table until the password is
delivered, expires or is replaced (rule 13); then there is nothing left to open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag

from shared.secrets import Sealer


class SealedCopies(Protocol):
    def read_sealed_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, bytes]: ...


class SealedPasswords:
    def __init__(self, sealed_copies: SealedCopies, secrets_key: bytes) -> None:
        self._copies = sealed_copies
        self._sealer = Sealer(secrets_key)

    def open_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, str | InvalidTag | None]:
        """Each plaintext; None once its sealed copy is gone; InvalidTag if it does not
        open with this key. One query for the lot. Never log a result."""
        sealed = self._copies.read_sealed_many(temp_password_ids)
        opened: dict[UUID, str | InvalidTag | None] = {}
        for temp_password_id in temp_password_ids:
            copy = sealed.get(temp_password_id)
            try:
                opened[temp_password_id] = (
                    None if copy is None else self._sealer.unseal(temp_password_id, copy)
                )
            except InvalidTag as error:
                opened[temp_password_id] = error
        return opened
