"""Planning for rules 34 and 35, pure: member changes and undeliverable emails."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from tests.notifier.test_planning import History, MemoryState, kinds, run


def removed(h: History, email: str, role: str) -> Any:
    data = {"account_id": str(uuid4()), "email": email, "role": role, "reason": "left"}
    return h.event("MemberRemoved", data)


def role_changed(h: History, email: str, role: str, previous: str) -> Any:
    return h.event(
        "MemberRoleChanged",
        {
            "account_id": str(uuid4()),
            "email": email,
            "role": role,
            "previous_role": previous,
            "access_expires_at": None,
            "invitation_id": None,
        },
    )


def failed(h: History, kind: str, recipient: str, invitation_id: UUID | None) -> Any:
    return h.event(
        "NotificationFailed",
        {
            "kind": kind,
            "recipient": recipient,
            "invitation_id": None if invitation_id is None else str(invitation_id),
            "reason": "550 no such mailbox",
            "message_key": str(uuid4()),
        },
    )


def administrators(h: History, *emails: str) -> list[Any]:
    envelopes = []
    for email in emails:
        invitation_id = uuid4()
        envelopes += [
            h.invited(invitation_id, email, role="administrator", locale="fr"),
            h.linked(invitation_id, email),
            h.accepted(invitation_id, email, "administrator"),
        ]
    return envelopes


def test_a_removed_administrator_is_told_and_the_one_left_is_advised_again() -> None:
    h, state = History(), MemoryState()
    run(administrators(h, "ann@x.test", "ben@x.test"), state)

    emails = run([removed(h, "ben@x.test", "administrator")], state)

    assert kinds(emails) == [
        ("member_removed", "ben@x.test"),
        ("admin_one_administrator", "ann@x.test"),
    ]
    assert emails[0].locale == "fr"  # the member's own language
    accepted = run([h.accepted(uuid4(), "cat@x.test", "user")], state)
    assert kinds(accepted) == [("admin_invitation_accepted", "ann@x.test")]


def test_a_promoted_member_receives_administrator_notices_and_a_demoted_one_stops() -> None:
    h, state = History(), MemoryState()
    run(administrators(h, "ann@x.test"), state)

    promoted = run([role_changed(h, "ugo@x.test", "administrator", "user")], state)
    demoted = run([role_changed(h, "ann@x.test", "user", "administrator")], state)
    told = run([h.accepted(uuid4(), "cat@x.test", "user")], state)

    assert kinds(promoted) == [("member_role_changed", "ugo@x.test")]
    assert kinds(demoted) == [
        ("member_role_changed", "ann@x.test"),
        ("admin_one_administrator", "ugo@x.test"),
    ]
    assert kinds(told) == [("admin_invitation_accepted", "ugo@x.test")]


def test_the_first_administrator_by_promotion_gets_the_recommendation() -> None:
    h = History()
    emails = run([role_changed(h, "ugo@x.test", "administrator", "user")])
    assert kinds(emails) == [
        ("member_role_changed", "ugo@x.test"),
        ("admin_one_administrator", "ugo@x.test"),
    ]


def test_a_failed_invitation_is_told_to_the_administrators_once() -> None:
    h, state = History(), MemoryState()
    run([*administrators(h, "ann@x.test"), h.configured(["ops@x.test"])], state)
    invitation_id = uuid4()
    run([h.invited(invitation_id, "typo@x.test"), h.issued(invitation_id, "typo@x.test")], state)

    first = run([failed(h, "invitation_automatic", "typo@x.test", invitation_id)], state)
    again = run([failed(h, "invitation_automatic", "typo@x.test", invitation_id)], state)

    assert kinds(first) == [
        ("admin_notification_failed", "ann@x.test"),
        ("admin_notification_failed", "ops@x.test"),
    ]
    assert first[0].locale == "fr"
    assert first[0].context["about"] == "invitation"
    assert first[0].context["reason"] == "550 no such mailbox"
    assert again == []


def test_a_failed_notice_to_administrators_is_never_answered() -> None:
    h, state = History(), MemoryState()
    run(administrators(h, "ann@x.test"), state)
    for kind in ("admin_notification_failed", "admin_one_administrator"):
        assert run([failed(h, kind, "ann@x.test", None)], state) == []


def test_another_failed_email_to_a_member_is_told_each_time_not_to_them() -> None:
    h, state = History(), MemoryState()
    run(administrators(h, "ann@x.test", "ben@x.test"), state)
    emails = run([failed(h, "member_role_changed", "ben@x.test", None)], state)
    assert kinds(emails) == [("admin_notification_failed", "ann@x.test")]
    assert emails[0].context["about"] == "member"
