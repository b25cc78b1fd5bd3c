"""Rule 34 in the notifier: the member concerned is told, the administrators are who they now
are, and the one-administrator recommendation is looked at again.

Real events from the real invitation service (in-process), a real notifier, PostgreSQL,
RabbitMQ and an SMTP server.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from services.notifier.mailbox import received
from services.notifier.settings import NotifierSettings
from shared.secrets import TokenSigner
from tests.support import wait_for

from .conftest import Invitations, SmtpSink

pytestmark = pytest.mark.integration


def tenant() -> str:
    return f"t-{uuid4().hex[:10]}"


class Tenant:
    """One tenant of the test, driven as its administrators would."""

    def __init__(
        self, invitations: Invitations, secrets_key: bytes, settings: NotifierSettings
    ) -> None:
        self.id = tenant()
        self.invitations = invitations
        self.signer = TokenSigner(secrets_key)
        self.settings = settings

    def do(self, name: str, **fields: Any) -> dict[str, Any]:
        reply = self.invitations.do(name, tenant_id=self.id, **fields)
        assert reply.result is not None
        return reply.result

    def join(self, email: str, role: str = "user", locale: str = "en") -> None:
        invited = self.do("invite_user", email=email, role=role, locale=locale)
        token = self.signer.token(UUID(invited["invitation_id"]), 1)
        self.do("accept_invitation", token=token, email=email, actor=email)
        self.invitations.do("record_password_changed", email=email)


@pytest.fixture
def acme(invitations: Invitations, secrets_key: bytes, settings: NotifierSettings) -> Tenant:
    return Tenant(invitations, secrets_key, settings)


def planned(settings: NotifierSettings, kind: str) -> list[tuple[str, str]]:
    """(recipient, subject or '') of every email of `kind` the notifier planned."""
    return sorted(
        (recipient, row.subject or "")
        for recipient, rows in received(settings.database_url).items()
        for row in rows
        if row.kind == kind
    )


async def test_a_removed_administrator_is_told_and_hears_nothing_more_for_administrators(
    acme: Tenant, smtp: SmtpSink, start_notifier: Any
) -> None:
    acme.join("ann@acme.io", "administrator")
    acme.join("ben@acme.io", "administrator", locale="fr")
    acme.do("remove_member", email="ben@acme.io", reason="left the company")
    acme.join("cat@acme.io")
    await start_notifier()

    (removed,) = await wait_for(lambda: smtp.of_kind("member_removed"))
    assert removed.to == "ben@acme.io"
    assert removed.subject == f"Votre accès à {acme.id} a été retiré"
    assert "left the company" not in removed.text  # an administrator's words, not for them
    await wait_for(lambda: [m for m in smtp.to("ann@acme.io") if "cat@acme.io" in m.text])
    told_of_cat = [
        m.to for m in smtp.of_kind("admin_invitation_accepted") if "cat@acme.io" in m.text
    ]
    assert told_of_cat == ["ann@acme.io"]
    # Planned in the same transaction as Ann's: had Ben been told, his row would be there.
    assert [r for r, _ in planned(acme.settings, "admin_invitation_accepted")].count(
        "ben@acme.io"
    ) == 0
    # To the first administrator when she joined, and again when the administrators
    # dropped to one (rule 34).
    await wait_for(lambda: len(smtp.of_kind("admin_one_administrator")) == 2)
    assert [m.to for m in smtp.of_kind("admin_one_administrator")] == ["ann@acme.io"] * 2


async def test_a_member_is_told_the_new_role_and_a_promoted_one_gets_administrator_notices(
    acme: Tenant, smtp: SmtpSink, start_notifier: Any
) -> None:
    acme.do("configure_tenant", contractor_enabled=True)
    acme.join("ann@acme.io", "administrator")
    acme.join("ugo@acme.io", locale="fr")
    acme.do("change_role", email="ugo@acme.io", role="administrator")
    acme.join("eve@acme.io")
    acme.do(
        "change_role",
        email="eve@acme.io",
        role="contractor",
        access_expires_at="2031-03-01T12:00:00+00:00",
    )
    acme.do("change_role", email="ann@acme.io", role="user")
    await start_notifier()

    await wait_for(lambda: len(smtp.of_kind("member_role_changed")) == 3)
    by_person = {m.to: m for m in smtp.of_kind("member_role_changed")}
    ugo, eve, ann = (by_person[f"{p}@acme.io"] for p in ("ugo", "eve", "ann"))
    assert ugo.subject == f"Votre rôle dans {acme.id} a changé\u00a0: administrateur"
    assert "Rôle précédent\u00a0: utilisateur" in ugo.text
    assert eve.subject == f"Your role in {acme.id} is now contractor"
    assert "read-only and ends on 1 March 2031, 12:00 UTC" in eve.text
    assert ann.subject == f"Your role in {acme.id} is now user"
    # Ugo, promoted, hears of Eve joining; once Ann is demoted, he is the only one left.
    await wait_for(
        lambda: [m for m in smtp.of_kind("admin_one_administrator") if m.to == "ugo@acme.io"]
    )
    told_of_eve = [
        m.to for m in smtp.of_kind("admin_invitation_accepted") if "eve@acme.io" in m.text
    ]
    assert sorted(told_of_eve) == ["ann@acme.io", "ugo@acme.io"]
