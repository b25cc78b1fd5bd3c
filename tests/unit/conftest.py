"""Pure domain tests: fixed instants, no database, no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import uuid4

import pytest

from services.invitation.domain.cause import Cause
from tests.fakes import T0

MakeCause = Callable[..., Cause]


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def cause() -> MakeCause:
    """A command's cause at a fixed instant (T0 unless told), in tenant `acme`."""

    def make(
        at: datetime = T0, tenant_id: str | None = "acme", actor: str = "admin@acme.io"
    ) -> Cause:
        return Cause(actor=actor, command_id=str(uuid4()), at=at, tenant_id=tenant_id)

    return make
