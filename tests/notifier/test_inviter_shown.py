"""The inviter an email names (rule 31): inviter_name, else a person's email, else the
organisation's administrators; never a raw service id or an actor's free text."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.notifier.adapters.rendering import Renderer
from services.notifier.domain.emails import Kind
from services.notifier.domain.planning.inviter import shown_inviter
from tests.notifier.test_planning import History, MemoryState, run


@pytest.mark.parametrize(
    ("inviter_name", "invited_by", "shown"),
    [
        ("Jane Doe, IT", "service:billing", "Jane Doe, IT"),
        ("Jane Doe", "ann@acme.test", "Jane Doe"),
        (None, "ann@acme.test", "ann@acme.test"),
        (None, "service:expiry", None),
        (None, "operator:root", None),
        (None, "Your account is locked. Verify now at https://evil.example/login", None),
        (None, "service:x@evil.example", None),
        (None, None, None),
    ],
)
def test_who_is_shown_as_inviting(
    inviter_name: str | None, invited_by: str | None, shown: str | None
) -> None:
    assert shown_inviter(inviter_name, invited_by) == shown


def invitation_emails(invited_by: str, inviter_name: str | None, role: str = "user") -> list:
    history = History()
    invitation_id = uuid4()
    email = f"{uuid4().hex[:8]}@acme.test"
    invited = history.invited(invitation_id, email, role=role)
    data = {**invited.data, "invited_by": invited_by, "inviter_name": inviter_name}
    history.envelopes[-1] = invited.model_copy(update={"data": data, "actor": invited_by})
    history.linked(invitation_id, email)
    return run(history.envelopes, MemoryState())


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_an_invitation_sent_by_a_service_names_the_administrators_not_the_service(
    locale: str,
) -> None:
    (email,) = [
        e for e in invitation_emails("service:billing", None) if e.kind is Kind.INVITATION_LINKED
    ]
    assert email.context["inviter"] is None
    rendered = Renderer("Cloud Vault").render(
        Kind.INVITATION_LINKED, locale, dict(email.context), link="https://v.test/a?token=T"
    )
    for part in (rendered.text, rendered.html):
        assert "service:" not in part
    expected = "The administrators of the" if locale == "en" else "Les administrateurs de"
    assert expected in rendered.text
    assert expected in rendered.html


def test_an_invitation_with_an_inviter_name_shows_it() -> None:
    (email,) = [
        e
        for e in invitation_emails("service:billing", "Jane Doe")
        if e.kind is Kind.INVITATION_LINKED
    ]
    rendered = Renderer("Cloud Vault").render(
        Kind.INVITATION_LINKED, "en", dict(email.context), link="https://v.test/a?token=T"
    )
    assert "Jane Doe has invited you to join the acme organisation" in rendered.text
    assert "service:" not in rendered.text + rendered.html


def test_the_administrators_notice_of_a_new_administrator_never_shows_a_service_id() -> None:
    history = History()
    history.configured(["security@acme.test"])
    invitation_id = uuid4()
    invited = history.invited(invitation_id, "new-admin@acme.test", role="administrator")
    data = {**invited.data, "invited_by": "service:provisioning"}
    history.envelopes[-1] = invited.model_copy(update={"data": data})
    notices = [
        e
        for e in run(history.envelopes, MemoryState())
        if e.kind is Kind.ADMIN_ADMINISTRATOR_INVITED
    ]
    assert notices
    rendered = Renderer("Cloud Vault").render(
        Kind.ADMIN_ADMINISTRATOR_INVITED, "en", dict(notices[0].context)
    )
    assert "service:" not in rendered.text + rendered.html
    assert "(new-admin@acme.test) was invited to be an administrator" in rendered.text
