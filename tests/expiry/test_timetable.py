"""The timetable: which deadlines the event history implies, event by event (no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.expiry.application import Expiry
from services.expiry.domain.deadlines import (
    INVITATION_LINK,
    Key,
    contractor_end,
    contractor_reminder,
    invitation_link,
    temp_password,
)
from shared.contract import EventEnvelope
from tests.fakes import T0

DAY = 86_400.0
WEEK = 7 * DAY


class History:
    """Contract envelopes in position order, shaped as the invitation service emits them."""

    def __init__(self, expiry: Expiry) -> None:
        self.expiry = expiry
        self.position = 0
        self.envelopes: list[EventEnvelope] = []

    def add(self, event_type: str, tenant_id: str | None, at: datetime, **data: Any) -> None:
        self.position += 3  # positions are sparse: internal events sit in between
        envelope = EventEnvelope(
            event_id=uuid4(),
            event_type=event_type,
            occurred_at=at,
            position=self.position,
            tenant_id=tenant_id,
            aggregate_id=uuid4(),
            aggregate_version=1,
            correlation_id=str(uuid4()),
            actor="admin@example.com",
            data={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()},
        )
        self.envelopes.append(envelope)
        self.expiry.apply([envelope])

    def invite(
        self,
        tenant: str,
        email: str,
        *,
        role: str = "contractor",
        end: datetime | None = None,
        at: datetime = T0,
        link_ttl: timedelta = timedelta(days=7),
    ) -> UUID:
        invitation_id = uuid4()
        self.add(
            "UserInvited",
            tenant,
            at,
            invitation_id=str(invitation_id),
            email=email,
            role=role,
            access_expires_at=end,
            invitation_expires_at=at + link_ttl,
            invited_by="admin@example.com",
            batch_id=None,
            display_name=None,
        )
        return invitation_id

    def reminders(self, tenant: str, offsets: list[str], at: datetime = T0) -> None:
        self.add(
            "TenantConfigured",
            tenant,
            at,
            settings={
                "contractor_enabled": True,
                "temp_password_delivery": "automatic",
                "invitation_ttl": "P7D",
                "temp_password_ttl": "P7D",
                "expiry_reminders": offsets,
                "admin_notification_emails": [],
            },
            changed=["expiry_reminders"],
        )

    def temp_password_issued(self, email: str, valid_until: datetime) -> UUID:
        temp_password_id = uuid4()
        self.add(
            "TempPasswordIssued",
            "acme",
            T0,
            invitation_id=str(uuid4()),
            account_id=str(uuid4()),
            email=email,
            temp_password_id=str(temp_password_id),
            delivery="automatic",
            valid_until=valid_until,
        )
        return temp_password_id


@pytest.fixture
def expiry() -> Expiry:
    return Expiry()


@pytest.fixture
def history(expiry: Expiry) -> History:
    return History(expiry)


def deadlines(expiry: Expiry) -> dict[Key, datetime]:
    return {key: datetime.fromtimestamp(at, T0.tzinfo) for key, at in expiry.deadlines().items()}


END = T0 + timedelta(days=30)
T, E = "acme", "carol@example.com"


def contractor_keys(end: datetime, offsets: tuple[float, ...] = (WEEK, DAY)) -> dict[Key, datetime]:
    found: dict[Key, datetime] = {contractor_end(T, E): end}
    for offset in offsets:
        found[contractor_reminder(T, E, offset)] = end - timedelta(seconds=offset)
    return found


def test_a_contractor_invite_schedules_the_end_both_default_reminders_and_the_link(
    history: History, expiry: Expiry
) -> None:
    invitation = history.invite(T, E, end=END)

    assert deadlines(expiry) == {
        **contractor_keys(END),
        invitation_link(T, invitation): T0 + timedelta(days=7),
    }


def test_a_user_invite_schedules_only_the_link(history: History, expiry: Expiry) -> None:
    invitation = history.invite(T, E, role="user")

    assert deadlines(expiry) == {invitation_link(T, invitation): T0 + timedelta(days=7)}


def test_a_reminder_whose_moment_had_already_passed_at_the_invite_is_not_scheduled(
    history: History, expiry: Expiry
) -> None:
    end = T0 + timedelta(days=3)
    history.invite(T, E, end=end)

    assert contractor_reminder(T, E, WEEK) not in expiry.deadlines()
    assert deadlines(expiry)[contractor_reminder(T, E, DAY)] == end - timedelta(days=1)


def test_a_reminder_offset_in_seconds_is_scheduled(history: History, expiry: Expiry) -> None:
    history.reminders(T, ["PT2S"])
    end = T0 + timedelta(seconds=5)
    history.invite(T, E, end=end)

    assert deadlines(expiry)[contractor_reminder(T, E, 2.0)] == end - timedelta(seconds=2)
    assert contractor_reminder(T, E, DAY) not in expiry.deadlines()


@pytest.mark.parametrize(
    "shift", [timedelta(days=10), timedelta(days=-10)], ids=["later", "earlier"]
)
def test_a_changed_end_date_moves_the_end_and_its_reminders(
    history: History, expiry: Expiry, shift: timedelta
) -> None:
    history.invite(T, E, end=END)
    new_end = END + shift
    history.add(
        "ContractorExpiryChanged",
        T,
        T0 + timedelta(days=1),
        account_id=str(uuid4()),
        email=E,
        access_expires_at=new_end,
        previous_access_expires_at=END,
    )

    assert {
        k: v for k, v in deadlines(expiry).items() if k[0] != INVITATION_LINK
    } == contractor_keys(new_end)


def test_an_end_date_moved_closer_than_a_reminder_offset_drops_that_reminder(
    history: History, expiry: Expiry
) -> None:
    history.invite(T, E, end=END)
    changed_at = T0 + timedelta(days=1)
    history.add(
        "ContractorExpiryChanged",
        T,
        changed_at,
        account_id=str(uuid4()),
        email=E,
        access_expires_at=changed_at + timedelta(days=2),
        previous_access_expires_at=END,
    )

    assert contractor_reminder(T, E, WEEK) not in expiry.deadlines()
    assert contractor_reminder(T, E, DAY) in expiry.deadlines()


def test_acceptance_cancels_the_link_and_keeps_the_contractor_deadlines(
    history: History, expiry: Expiry
) -> None:
    invitation = history.invite(T, E, end=END)
    history.add(
        "InvitationAccepted",
        T,
        T0,
        invitation_id=str(invitation),
        account_id=str(uuid4()),
        email=E,
        role="contractor",
    )

    assert deadlines(expiry) == contractor_keys(END)


def test_revoking_a_pending_contractor_invitation_cancels_every_deadline(
    history: History, expiry: Expiry
) -> None:
    invitation = history.invite(T, E, end=END)
    history.add("InvitationRevoked", T, T0, invitation_id=str(invitation), reason=None)

    assert expiry.deadlines() == {}


def test_a_lapsed_contractor_invitation_cancels_the_end_until_it_is_resent(
    history: History, expiry: Expiry
) -> None:
    invitation = history.invite(T, E, end=END)
    lapsed_at = T0 + timedelta(days=7)
    history.add("InvitationLapsed", T, lapsed_at, invitation_id=str(invitation))
    assert expiry.deadlines() == {}

    resent_at = T0 + timedelta(days=25)  # the 7-day reminder's moment is behind us
    history.add(
        "InvitationResent",
        T,
        resent_at,
        invitation_id=str(invitation),
        invitation_expires_at=resent_at + timedelta(days=7),
        temp_password_reissued=False,
    )

    assert deadlines(expiry) == {
        **contractor_keys(END, (DAY,)),
        invitation_link(T, invitation): resent_at + timedelta(days=7),
    }


def test_a_resend_moves_the_link_expiry(history: History, expiry: Expiry) -> None:
    invitation = history.invite(T, E, role="user")
    history.add(
        "InvitationResent",
        T,
        T0 + timedelta(days=2),
        invitation_id=str(invitation),
        invitation_expires_at=T0 + timedelta(days=9),
        temp_password_reissued=True,
    )

    assert deadlines(expiry) == {invitation_link(T, invitation): T0 + timedelta(days=9)}


def test_a_sent_reminder_is_cancelled_and_the_others_stay(history: History, expiry: Expiry) -> None:
    history.invite(T, E, end=END)
    history.add(
        "ContractorExpiryApproaching",
        T,
        END - timedelta(days=7),
        account_id=str(uuid4()),
        email=E,
        access_expires_at=END,
        offset="P7D",
    )

    assert contractor_reminder(T, E, WEEK) not in expiry.deadlines()
    assert contractor_reminder(T, E, DAY) in expiry.deadlines()


def test_a_reminder_for_a_since_moved_end_date_cancels_nothing(
    history: History, expiry: Expiry
) -> None:
    history.invite(T, E, end=END)
    history.add(
        "ContractorExpiryApproaching",
        T,
        T0,
        account_id=str(uuid4()),
        email=E,
        access_expires_at=END + timedelta(days=1),
        offset="P7D",
    )

    assert contractor_reminder(T, E, WEEK) in expiry.deadlines()


def test_an_expired_contractor_has_no_deadline_left_and_may_be_invited_again(
    history: History, expiry: Expiry
) -> None:
    history.invite(T, E, end=END)
    history.add(
        "ContractorExpired",
        T,
        END,
        account_id=str(uuid4()),
        email=E,
        access_expires_at=END,
        expired_at=END,
    )
    assert {k for k in expiry.deadlines() if k[0] != INVITATION_LINK} == set()

    later_end = END + timedelta(days=60)
    history.invite(T, E, end=later_end, at=END + timedelta(days=1))
    assert {
        k: v for k, v in deadlines(expiry).items() if k[0] != INVITATION_LINK
    } == contractor_keys(later_end)


def test_new_reminder_offsets_apply_to_scheduled_contractors_from_then_on(
    history: History, expiry: Expiry
) -> None:
    history.invite(T, E, end=END)
    history.invite(T, "late@example.com", end=T0 + timedelta(days=40))
    history.reminders(T, ["P14D", "PT2S"], at=T0 + timedelta(days=20))

    found = deadlines(expiry)
    assert contractor_reminder(T, E, WEEK) not in found
    assert contractor_reminder(T, E, DAY) not in found
    assert contractor_reminder(T, E, 14 * DAY) not in found  # its moment was day 16
    assert found[contractor_reminder(T, E, 2.0)] == END - timedelta(seconds=2)
    assert found[contractor_reminder(T, "late@example.com", 14 * DAY)] == T0 + timedelta(days=26)


def test_other_tenants_keep_their_reminders(history: History, expiry: Expiry) -> None:
    history.invite("other", E, end=END)
    history.reminders(T, ["PT2S"])

    assert contractor_reminder("other", E, WEEK) in expiry.deadlines()


def test_a_temporary_password_expires_at_its_valid_until(history: History, expiry: Expiry) -> None:
    issued = history.temp_password_issued(E, T0 + timedelta(days=7))

    assert deadlines(expiry) == {temp_password(E, issued): T0 + timedelta(days=7)}


def test_a_new_temporary_password_replaces_the_previous_one(
    history: History, expiry: Expiry
) -> None:
    history.temp_password_issued(E, T0 + timedelta(days=7))
    second = history.temp_password_issued(E, T0 + timedelta(days=9))

    assert deadlines(expiry) == {temp_password(E, second): T0 + timedelta(days=9)}


@pytest.mark.parametrize("event_type", ["TempPasswordExpired", "TempPasswordRevoked"])
def test_an_expired_or_revoked_temporary_password_is_cancelled(
    history: History, expiry: Expiry, event_type: str
) -> None:
    issued = history.temp_password_issued(E, T0 + timedelta(days=7))
    history.add(
        event_type,
        T,
        T0,
        invitation_id=str(uuid4()),
        account_id=str(uuid4()),
        email=E,
        temp_password_id=str(issued),
    )

    assert expiry.deadlines() == {}


def test_a_password_change_cancels_the_temporary_password(history: History, expiry: Expiry) -> None:
    history.temp_password_issued(E, T0 + timedelta(days=7))
    history.add("PasswordChanged", None, T0, account_id=str(uuid4()), email=E)

    assert expiry.deadlines() == {}


def test_duplicate_events_change_nothing(history: History, expiry: Expiry) -> None:
    invitation = history.invite(T, E, end=END)
    history.add(
        "ContractorExpiryApproaching",
        T,
        END - timedelta(days=7),
        account_id=str(uuid4()),
        email=E,
        access_expires_at=END,
        offset="P7D",
    )
    before = expiry.deadlines()

    for envelope in history.envelopes:  # redelivered, in order, at their own positions
        assert expiry.timetable.apply(envelope) is False
    # The same facts again at new positions (a republish) are idempotent too.
    history.add(
        "InvitationResent",
        T,
        T0,
        invitation_id=str(invitation),
        invitation_expires_at=T0 + timedelta(days=7),
        temp_password_reissued=False,
    )
    history.add(
        "ContractorExpiryApproaching",
        T,
        END - timedelta(days=7),
        account_id=str(uuid4()),
        email=E,
        access_expires_at=END,
        offset="P7D",
    )

    assert expiry.deadlines() == before


def test_a_rebuild_from_the_whole_history_gives_the_same_schedule(
    history: History, expiry: Expiry
) -> None:
    first = history.invite(T, E, end=END)
    history.invite(T, "dan@example.com", end=END + timedelta(days=3))
    history.add(
        "InvitationAccepted",
        T,
        T0,
        invitation_id=str(first),
        account_id=str(uuid4()),
        email=E,
        role="contractor",
    )
    history.reminders(T, ["P3D"], at=T0 + timedelta(days=1))
    history.temp_password_issued("eve@example.com", T0 + timedelta(days=7))

    rebuilt = Expiry()
    rebuilt.apply(history.envelopes)

    assert rebuilt.deadlines() == expiry.deadlines()
    assert rebuilt.position == expiry.position


def test_the_listing_names_each_open_deadline_in_firing_order(
    history: History, expiry: Expiry
) -> None:
    history.reminders(T, ["P1D"])
    invitation = history.invite(T, E, end=T0 + timedelta(days=3))

    assert [(row.at, row.command, row.subject) for row in expiry.listing()] == [
        ("2030-01-09T09:00:00+00:00", "remind_contractor_expiry", f"{T}/{E}/86400.0"),
        ("2030-01-10T09:00:00+00:00", "expire_contractor", f"{T}/{E}"),
        ("2030-01-14T09:00:00+00:00", "lapse_invitation", f"{T}/{invitation}"),
    ]


def test_the_census_counts_open_deadlines_and_those_overdue_including_commands_in_flight(
    history: History, expiry: Expiry
) -> None:
    history.reminders(T, ["P1D"])
    history.invite(T, E, end=T0 + timedelta(days=3))  # reminder day 2, end day 3, link day 7
    history.invite(T, "dan@example.com", role="user")  # link day 7
    day2 = T0.timestamp() + 2 * DAY

    assert expiry.census(day2 - 1) == {
        "remind_contractor_expiry": (1, 0),
        "expire_contractor": (1, 0),
        "lapse_invitation": (2, 0),
    }
    # Fired, not answered yet: still open and overdue, though re-scheduled for a re-send.
    [firing] = expiry.due(day2)
    assert firing.name == "remind_contractor_expiry"
    assert expiry.census(day2 + 1)["remind_contractor_expiry"] == (1, 1)
    # Both links lapse unfired: overdue as soon as their time passed.
    assert expiry.census(T0.timestamp() + 8 * DAY)["lapse_invitation"] == (2, 2)
