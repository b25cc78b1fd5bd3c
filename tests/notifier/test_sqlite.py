"""The notifier on an SQLite event store (DATABASE_URL=sqlite:///...)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.invitation.application import InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from services.notifier.mailbox import received
from services.notifier.replay import reset as reset_for_replay
from services.notifier.settings import NotifierSettings
from tests.fakes import FakeClock
from tests.support import wait_for

from .conftest import Invitations, SmtpSink
from .test_replay import replay_while_a_resend_is_pending

pytestmark = pytest.mark.integration


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'invitations.db'}"


@pytest.fixture
def invitations(sqlite_url: str, secrets_key: bytes, clock: FakeClock) -> Iterator[Invitations]:
    """Overrides the PostgreSQL one: the command relay then applies to this store too."""
    service = InvitationService(
        InvitationStore(env=store_env(sqlite_url)), secrets_key=secrets_key, clock=clock
    )
    yield Invitations(service)
    service.close()


async def test_an_sqlite_store_gets_its_emails_once_even_after_a_replay(
    invitations: Invitations,
    sqlite_url: str,
    settings: NotifierSettings,
    smtp: SmtpSink,
    start_notifier: Any,
) -> None:
    tenant = f"t-{uuid4().hex[:10]}"
    invitations.do("configure_tenant", tenant_id=tenant, admin_notification_emails=["ops@acme.io"])
    invitations.do("invite_user", tenant_id=tenant, email="lite@example.com", role="administrator")
    runtime = await start_notifier(database_url=sqlite_url)
    await wait_for(lambda: len(smtp.messages) == 2)
    assert {m.kind for m in smtp.messages} == {
        "invitation_automatic",
        "admin_administrator_invited",
    }
    reset_for_replay(sqlite_url)
    runtime.wake()
    await wait_for(lambda: runtime.store.position() > 0)
    await wait_for(
        lambda: all(d.status == "sent" for rows in received(sqlite_url).values() for d in rows)
    )
    assert len(smtp.messages) == 2
    # The delivery was reported and the sealed copy destroyed in the SQLite store too.
    await wait_for(lambda: invitations.service.side_tables.count_sealed() == 0)


@pytest.mark.parametrize("first_sent", [True, False], ids=["first-sent", "first-unsent"])
async def test_a_replay_on_sqlite_keeps_a_resends_pending_email_which_is_then_sent_once(
    invitations: Invitations,
    sqlite_url: str,
    smtp: SmtpSink,
    start_notifier: Any,
    first_sent: bool,
) -> None:
    await replay_while_a_resend_is_pending(
        invitations, sqlite_url, smtp, start_notifier, first_sent=first_sent
    )
