"""Which emails an event implies, and to whom: pure, with fixed instants."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest

from services.notifier.domain.emails import Kind, PlannedEmail, normalise_locale
from services.notifier.domain.planning import Json, plan, superseded_invitation
from shared.contract import EventEnvelope
from tests.fakes import T0

_NS = UUID("00000000-0000-0000-0000-000000000001")


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, Json] = {}

    def get(self, key: str) -> Json | None:
        value = self.values.get(key)
        return None if value is None else dict(value)

    def put(self, key: str, value: Json) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class History:
    """Builds envelopes in store order, as the event log would give them."""

    def __init__(self, tenant: str = "acme") -> None:
        self.tenant = tenant
        self.position = 0
        self.envelopes: list[EventEnvelope] = []

    def event(
        self, event_type: str, data: dict[str, Any], *, correlation: str = "cmd-1", **over: Any
    ) -> EventEnvelope:
        self.position += 1
        envelope = EventEnvelope(
            event_id=uuid5(_NS, f"{self.tenant}:{self.position}"),
            event_type=event_type,
            occurred_at=T0 + timedelta(seconds=self.position),
            position=self.position,
            tenant_id=over.pop("tenant_id", self.tenant),
            aggregate_id=uuid5(_NS, f"agg:{self.position}"),
            aggregate_version=1,
            correlation_id=correlation,
            actor="admin@acme.test",
            data=data,
        )
        self.envelopes.append(envelope)
        return envelope

    def configured(self, extra: list[str]) -> EventEnvelope:
        return self.event(
            "TenantConfigured",
            {
                "settings": {
                    "contractor_enabled": True,
                    "temp_password_delivery": "automatic",
                    "invitation_ttl": "P7D",
                    "temp_password_ttl": "P7D",
                    "expiry_reminders": ["P7D", "P1D"],
                    "admin_notification_emails": extra,
                },
                "changed": ["admin_notification_emails"],
            },
        )

    def invited(
        self,
        invitation_id: UUID,
        email: str,
        *,
        role: str = "user",
        locale: str | None = None,
        batch_id: UUID | None = None,
        correlation: str = "cmd-1",
        access_expires_at: datetime | None = None,
    ) -> EventEnvelope:
        return self.event(
            "UserInvited",
            {
                "invitation_id": str(invitation_id),
                "email": email,
                "role": role,
                "access_expires_at": access_expires_at,
                "invitation_expires_at": (T0 + timedelta(days=7)).isoformat(),
                "invited_by": "admin@acme.test",
                "batch_id": None if batch_id is None else str(batch_id),
                "display_name": None,
                "locale": locale,
                "account_id": str(uuid4()),
                "link_generation": 1,
            },
            correlation=correlation,
        )

    def linked(self, invitation_id: UUID, email: str, correlation: str = "cmd-1") -> EventEnvelope:
        return self.event(
            "AccountLinked",
            {"invitation_id": str(invitation_id), "account_id": str(uuid4()), "email": email},
            correlation=correlation,
        )

    def issued(
        self,
        invitation_id: UUID,
        email: str,
        delivery: str = "automatic",
        correlation: str = "cmd-1",
        temp_password_id: UUID | None = None,
    ) -> EventEnvelope:
        return self.event(
            "TempPasswordIssued",
            {
                "invitation_id": str(invitation_id),
                "account_id": str(uuid4()),
                "email": email,
                "delivery": delivery,
                "valid_until": (T0 + timedelta(days=7)).isoformat(),
                "temp_password_id": str(temp_password_id or uuid4()),
            },
            correlation=correlation,
        )

    def accepted(self, invitation_id: UUID, email: str, role: str) -> EventEnvelope:
        return self.event(
            "InvitationAccepted",
            {
                "invitation_id": str(invitation_id),
                "account_id": str(uuid4()),
                "email": email,
                "role": role,
            },
            correlation=f"accept-{invitation_id}",
        )


def run(envelopes: Iterable[EventEnvelope], state: MemoryState | None = None) -> list[PlannedEmail]:
    state = state or MemoryState()
    return [email for envelope in envelopes for email in plan(state, envelope)]


def kinds(emails: list[PlannedEmail]) -> list[tuple[str, str]]:
    return [(str(e.kind), e.recipient) for e in emails]


def test_linked_invitation_is_one_linked_email_in_the_invitees_locale() -> None:
    h, inv = History(), uuid4()
    emails = run([h.invited(inv, "bob@x.test", locale="fr-CA"), h.linked(inv, "bob@x.test")])
    assert kinds(emails) == [("invitation_linked", "bob@x.test")]
    (email,) = emails
    assert email.locale == "fr"
    assert email.invitation_id == inv and email.link_generation == 1
    assert email.temp_password_id is None
    assert email.event_id == h.envelopes[0].event_id  # keyed by UserInvited
    assert email.position == 2  # planned once both halves are in


@pytest.mark.parametrize("order", ["invited_first", "password_first"])
def test_invitation_email_waits_for_both_halves_in_either_order(order: str) -> None:
    h, inv, temp = History(), uuid4(), uuid4()
    invited = h.invited(inv, "bob@x.test")
    issued = h.issued(inv, "bob@x.test", temp_password_id=temp)
    first, second = (invited, issued) if order == "invited_first" else (issued, invited)
    state = MemoryState()
    assert plan(state, first) == []
    (email,) = plan(state, second)
    assert email.kind == Kind.INVITATION_AUTOMATIC
    assert email.temp_password_id == temp
    assert email.event_id == invited.event_id
    assert not [k for k in state.values if k.startswith("pending:")]


def test_manual_invitation_tells_invitee_and_administrators_without_a_password() -> None:
    h, inv, temp = History(), uuid4(), uuid4()
    admin = uuid4()
    events = [
        h.configured(["ops@acme.test"]),
        h.invited(admin, "root@acme.test", role="administrator", correlation="c0"),
        h.linked(admin, "root@acme.test", correlation="c0"),
        h.accepted(admin, "root@acme.test", "administrator"),
        h.invited(inv, "bob@x.test"),
        h.issued(inv, "bob@x.test", "manual", temp_password_id=temp),
    ]
    emails = run(events)
    manual = [e for e in emails if e.position == 6]
    assert kinds(manual) == [
        ("invitation_manual", "bob@x.test"),
        ("admin_manual_passwords_pending", "ops@acme.test"),
        ("admin_manual_passwords_pending", "root@acme.test"),
    ]
    assert manual[0].temp_password_id is None
    assert manual[1].context["temp_password_id"] == str(temp)
    assert manual[1].event_id == h.envelopes[5].event_id  # one notice per password issued


def test_mass_invite_tells_administrators_once_with_counts_and_manual_total() -> None:
    h, batch = History(), uuid4()
    events = [h.configured(["ops@acme.test"])]
    for i in range(3):
        inv = uuid4()
        events += [
            h.invited(inv, f"u{i}@x.test", batch_id=batch, correlation="mass"),
            h.issued(inv, f"u{i}@x.test", "manual", correlation="mass"),
        ]
    events.append(
        h.event(
            "MassInviteCompleted",
            {"batch_id": str(batch), "invited": 3, "refused": 2},
            correlation="mass",
        )
    )
    state = MemoryState()
    emails = run(events, state)
    admin = [e for e in emails if e.recipient == "ops@acme.test"]
    assert [e.kind for e in admin] == [
        Kind.ADMIN_MASS_INVITE_COMPLETED,
        Kind.ADMIN_MANUAL_PASSWORDS_PENDING,
    ]
    assert admin[0].context["invited"] == 3 and admin[0].context["refused"] == 2
    assert admin[0].context["manual"] == 3
    assert admin[1].context["count"] == 3 and admin[1].context["batch_id"] == str(batch)
    assert sum(e.kind == Kind.INVITATION_MANUAL for e in emails) == 3
    assert f"batch:{batch}" not in state.values


def test_administrator_invite_tells_other_administrators_and_extra_addresses() -> None:
    h, first, second = History(), uuid4(), uuid4()
    emails = run(
        [
            h.configured(["Ops@Acme.test "]),
            h.invited(first, "ann@acme.test", role="administrator", locale="fr", correlation="a"),
            h.linked(first, "ann@acme.test", correlation="a"),
            h.accepted(first, "ann@acme.test", "administrator"),
            h.invited(second, "ben@acme.test", role="administrator", correlation="b"),
        ]
    )
    invited = [e for e in emails if e.kind == Kind.ADMIN_ADMINISTRATOR_INVITED]
    # The first administrator's invite only reaches the extra address; the second reaches
    # the now active administrator too (in her locale), never the invitee.
    assert [(e.recipient, e.locale, e.position) for e in invited] == [
        ("ops@acme.test", "en", 2),
        ("ann@acme.test", "fr", 5),
        ("ops@acme.test", "en", 5),
    ]


def test_only_the_first_administrator_gets_the_one_administrator_recommendation_once() -> None:
    h, first, second = History(), uuid4(), uuid4()
    emails = run(
        [
            h.invited(first, "ann@acme.test", role="administrator", correlation="a"),
            h.linked(first, "ann@acme.test", correlation="a"),
            h.accepted(first, "ann@acme.test", "administrator"),
            h.invited(second, "ben@acme.test", role="administrator", correlation="b"),
            h.linked(second, "ben@acme.test", correlation="b"),
            h.accepted(second, "ben@acme.test", "administrator"),
        ]
    )
    recommendations = [e for e in emails if e.kind == Kind.ADMIN_ONE_ADMINISTRATOR]
    assert [e.recipient for e in recommendations] == ["ann@acme.test"]
    accepted = [e for e in emails if e.kind == Kind.ADMIN_INVITATION_ACCEPTED]
    assert [(e.recipient, e.context["email"]) for e in accepted] == [
        ("ann@acme.test", "ben@acme.test")
    ]


def test_acceptance_of_a_user_tells_administrators_but_not_the_user() -> None:
    h, admin, user = History(), uuid4(), uuid4()
    emails = run(
        [
            h.configured(["ops@acme.test", "bob@x.test"]),
            h.invited(admin, "ann@acme.test", role="administrator", correlation="a"),
            h.linked(admin, "ann@acme.test", correlation="a"),
            h.accepted(admin, "ann@acme.test", "administrator"),
            h.invited(user, "bob@x.test", correlation="u"),
            h.linked(user, "bob@x.test", correlation="u"),
            h.accepted(user, "bob@x.test", "user"),
        ]
    )
    last = [e for e in emails if e.position == 7]
    assert kinds(last) == [
        ("admin_invitation_accepted", "ann@acme.test"),
        ("admin_invitation_accepted", "ops@acme.test"),
    ]
    assert last[0].context["role"] == "user"


def test_resend_without_new_password_is_a_linked_email_with_the_new_link_generation() -> None:
    h, inv = History(), uuid4()
    events = [h.invited(inv, "bob@x.test"), h.linked(inv, "bob@x.test")]
    resent = h.event(
        "InvitationResent",
        {
            "invitation_id": str(inv),
            "invitation_expires_at": (T0 + timedelta(days=8)).isoformat(),
            "temp_password_reissued": False,
            "link_generation": 2,
        },
        correlation="resend-1",
    )
    emails = run([*events, resent])
    assert [(e.kind, e.link_generation, e.context["resent"]) for e in emails] == [
        (Kind.INVITATION_LINKED, 1, False),
        (Kind.INVITATION_LINKED, 2, True),
    ]
    assert emails[1].event_id == resent.event_id


def test_resend_with_a_new_password_waits_for_it_and_carries_it() -> None:
    h, inv, new_temp = History(), uuid4(), uuid4()
    events = [h.invited(inv, "bob@x.test"), h.issued(inv, "bob@x.test")]
    resent = h.event(
        "InvitationResent",
        {
            "invitation_id": str(inv),
            "invitation_expires_at": (T0 + timedelta(days=8)).isoformat(),
            "temp_password_reissued": True,
            "link_generation": 2,
        },
        correlation="resend-1",
    )
    state = MemoryState()
    run(events, state)
    assert plan(state, resent) == []
    (email,) = plan(
        state, h.issued(inv, "bob@x.test", correlation="resend-1", temp_password_id=new_temp)
    )
    assert email.kind == Kind.INVITATION_AUTOMATIC
    assert email.context["resent"] is True
    assert (email.link_generation, email.temp_password_id) == (2, new_temp)


def test_contractor_reminder_and_end_go_to_the_contractor_and_the_administrators() -> None:
    h, inv = History(), uuid4()
    end = T0 + timedelta(days=30)
    events = [
        h.configured(["ops@acme.test"]),
        h.invited(inv, "kim@x.test", role="contractor", locale="fr", access_expires_at=end),
        h.linked(inv, "kim@x.test"),
    ]
    approaching = h.event(
        "ContractorExpiryApproaching",
        {
            "account_id": str(uuid4()),
            "email": "kim@x.test",
            "access_expires_at": end.isoformat(),
            "offset": "P7D",
        },
    )
    expired = h.event(
        "ContractorExpired",
        {
            "account_id": str(uuid4()),
            "email": "kim@x.test",
            "access_expires_at": end.isoformat(),
            "expired_at": end.isoformat(),
        },
    )
    emails = run([*events, approaching, expired])
    tail = [(e.kind, e.recipient, e.locale) for e in emails if e.position > 3]
    assert tail == [
        (Kind.CONTRACTOR_EXPIRY_REMINDER, "kim@x.test", "fr"),
        (Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING, "ops@acme.test", "en"),
        (Kind.CONTRACTOR_ACCESS_ENDED, "kim@x.test", "fr"),
        (Kind.ADMIN_CONTRACTOR_EXPIRED, "ops@acme.test", "en"),
    ]
    assert emails[1].context["offset_seconds"] == 7 * 86400
    assert emails[0].context["access_expires_at"] == end.isoformat()  # invitation states it


def test_expired_temporary_password_tells_the_administrators() -> None:
    h, inv = History(), uuid4()
    emails = run(
        [
            h.configured(["ops@acme.test"]),
            h.invited(inv, "bob@x.test"),
            h.issued(inv, "bob@x.test"),
            h.event(
                "TempPasswordExpired",
                {
                    "invitation_id": str(inv),
                    "account_id": str(uuid4()),
                    "email": "bob@x.test",
                    "temp_password_id": str(uuid4()),
                },
                correlation="expiry",
            ),
        ]
    )
    assert kinds(emails)[-1] == ("admin_temp_password_expired", "ops@acme.test")


def test_replaying_the_same_history_plans_the_same_email_keys() -> None:
    h, admin, user = History(), uuid4(), uuid4()
    history = [
        h.configured(["ops@acme.test"]),
        h.invited(admin, "ann@acme.test", role="administrator", correlation="a"),
        h.linked(admin, "ann@acme.test", correlation="a"),
        h.accepted(admin, "ann@acme.test", "administrator"),
        h.invited(user, "bob@x.test", correlation="u"),
        h.issued(user, "bob@x.test", correlation="u"),
    ]
    first = [e.key for e in run(history)]
    again = [e.key for e in run(history)]
    assert first == again
    assert len(set(first)) == len(first)


def test_events_without_emails_imply_none() -> None:
    h = History()
    assert (
        run([h.event("PasswordChanged", {"account_id": str(uuid4()), "email": "b@x.test"})]) == []
    )
    assert run([h.event("SomethingNew", {"anything": 1})]) == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "en"), ("", "en"), ("fr", "fr"), ("fr-CA", "fr"), ("FR_fr", "fr"), ("de", "en")],
)
def test_locale_is_the_invitations_when_supported_else_english(
    given: str | None, expected: str
) -> None:
    assert normalise_locale(given) == expected


@pytest.mark.parametrize(
    "event_type", ["InvitationRevoked", "InvitationLapsed", "InvitationResent"]
)
def test_a_revoke_lapse_or_resend_supersedes_the_invitations_earlier_emails(
    event_type: str,
) -> None:
    h, inv = History(), uuid4()
    envelope = h.event(event_type, {"invitation_id": str(inv)})
    assert superseded_invitation(envelope) == inv
    assert superseded_invitation(h.linked(inv, "bob@x.test")) is None
