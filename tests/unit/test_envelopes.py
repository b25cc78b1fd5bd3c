"""The mapping from domain events to contract envelopes publishes no secret (rule 12)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from services.invitation.domain.account import Account
from services.invitation.domain.batch import MassInvite
from services.invitation.domain.cause import Cause
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership
from services.invitation.domain.tenant import Tenant
from services.invitation.envelopes import PUBLISHED_TOPICS, event_id, to_envelope, topics_of
from shared.contract import EVENT_DATA, EventEnvelope

MakeCause = Callable[..., Cause]
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2VjcmV0LXNhbHQ$c2VjcmV0LWhhc2gtdmFsdWU"
TOKEN_HASHES = ("a1" * 32, "b2" * 32)
SECRET_KEYS = {"password_hash", "token_hash", "sealed", "password", "token"}


@pytest.fixture
def every_kind_of_event(cause: MakeCause) -> list[Any]:
    """One life of each aggregate, through every event the service can record."""
    tenant = Tenant.start("acme", cause())
    tenant.configure({"contractor_enabled": True}, cause())

    registered = Account.register("carol@example.com", "Carol", cause(tenant_id=None))
    account = Account.create_for_invitation("bob@example.com", "Bob", cause())
    invitation_id, batch_id = uuid4(), uuid4()
    invitation = Invitation.invite(
        invitation_id=invitation_id,
        email="bob@example.com",
        role="contractor",
        access_expires_at=T0 + 30 * DAY,
        ttl=7 * DAY,
        batch_id=batch_id,
        display_name="Bob",
        locale="fr",
        account_id=account.id,
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    account.issue_temp_password(
        uuid4(), invitation_id, PASSWORD_HASH, T0 + 7 * DAY, "automatic", cause()
    )
    assert account.temp_password_id is not None
    account.record_delivered(account.temp_password_id, cause())
    invitation.resend(7 * DAY, TOKEN_HASHES[1], True, cause())
    account.revoke_temp_password(cause())
    account.issue_temp_password(
        uuid4(), invitation_id, PASSWORD_HASH, T0 + 7 * DAY, "manual", cause()
    )
    assert account.temp_password_id is not None
    account.retrieve_manual(account.temp_password_id, cause())
    account.expire_temp_password(account.temp_password_id, cause(T0 + 8 * DAY))
    account.record_password_changed(cause())
    invitation.refuse_acceptance("email_mismatch", cause())
    invitation.accept(cause())
    invitation.change_access_expiry(T0 + 20 * DAY, cause())

    linked = Invitation.invite(
        invitation_id=uuid4(),
        email="carol@example.com",
        role="user",
        access_expires_at=None,
        ttl=7 * DAY,
        batch_id=None,
        display_name=None,
        locale=None,
        account_id=registered.id,
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    linked.record_account_linked(cause())
    linked.revoke("wrong person", cause())
    lapsed = Invitation.invite(
        invitation_id=uuid4(),
        email="dan@example.com",
        role="user",
        access_expires_at=None,
        ttl=7 * DAY,
        batch_id=None,
        display_name=None,
        locale=None,
        account_id=uuid4(),
        token_hash=TOKEN_HASHES[0],
        cause=cause(),
    )
    lapsed.lapse(cause(T0 + 7 * DAY))

    membership = Membership.start("acme", "bob@example.com", cause())
    membership.offer(invitation_id, "contractor", T0 + 30 * DAY, cause())
    membership.activate(invitation_id, cause())
    membership.change_contractor_expiry(T0 + 20 * DAY, cause())
    membership.remind_expiry(7 * DAY, cause(T0 + 13 * DAY))
    membership.expire_contractor(cause(T0 + 20 * DAY))

    report = MassInvite.complete(batch_id, [{"index": 0, "status": "invited"}], None, cause())
    aggregates = [tenant, registered, account, invitation, linked, lapsed, membership, report]
    return [e for a in aggregates for e in a.collect_events()]


def _envelopes(events: list[Any]) -> list[EventEnvelope]:
    mapped = [to_envelope(e, position) for position, e in enumerate(events, start=1)]
    return [m for m in mapped if m is not None]


def test_every_published_topic_is_exercised(every_kind_of_event: list[Any]) -> None:
    topics = {get_topic(type(e)) for e in every_kind_of_event}
    assert set(PUBLISHED_TOPICS) <= topics


def test_every_envelope_matches_the_contract_data_model(every_kind_of_event: list[Any]) -> None:
    envelopes = _envelopes(every_kind_of_event)
    assert {e.event_type for e in envelopes} == set(EVENT_DATA)
    for envelope in envelopes:
        EVENT_DATA[envelope.event_type].model_validate(envelope.data)


def test_no_envelope_carries_a_hash_or_sealed_data(every_kind_of_event: list[Any]) -> None:
    for envelope in _envelopes(every_kind_of_event):
        assert not SECRET_KEYS & set(envelope.data), envelope.event_type
        text = envelope.model_dump_json()
        assert PASSWORD_HASH not in text
        assert not any(h in text for h in TOKEN_HASHES)


def test_no_event_holds_a_password_token_or_sealed_copy(every_kind_of_event: list[Any]) -> None:
    # The sealed copy lives beside the events (and is shredded); the plaintext nowhere.
    for event in every_kind_of_event:
        assert not {"sealed", "password", "token"} & set(vars(event)), type(event).__qualname__


def test_internal_events_stay_inside_the_service(every_kind_of_event: list[Any]) -> None:
    internal = [e for e in every_kind_of_event if to_envelope(e, 1) is None]
    assert {type(e).__qualname__ for e in internal} == {
        "Tenant.Created",
        "Account.Created",  # created by an invitation: UserInvited tells it
        "Membership.Created",
        "Membership.Offered",
        "Membership.Activated",
        "Invitation.AccessExpiryChanged",
    }


def test_envelope_names_its_stream_cause_and_position(every_kind_of_event: list[Any]) -> None:
    invited = next(e for e in every_kind_of_event if isinstance(e, Invitation.Invited))
    envelope = to_envelope(invited, 42)
    assert envelope is not None
    assert envelope.event_id == event_id(invited.originator_id, invited.originator_version)
    assert (envelope.position, envelope.tenant_id, envelope.actor) == (42, "acme", "admin@acme.io")
    assert envelope.correlation_id == invited.correlation_id
    assert envelope.occurred_at == T0
    assert envelope.data["link_generation"] == 1


def test_event_ids_are_stable_and_distinct() -> None:
    stream = uuid4()
    assert event_id(stream, 1) == event_id(stream, 1)
    assert event_id(stream, 1) != event_id(stream, 2)


def test_built_envelopes_equal_validated_ones(every_kind_of_event: list[Any]) -> None:
    # to_envelope builds without validating: each field must already have its type.
    for envelope in _envelopes(every_kind_of_event):
        validated = EventEnvelope.model_validate(dict(envelope))
        assert validated == envelope
        assert validated.model_dump_json() == envelope.model_dump_json()
        assert {k: type(v) for k, v in dict(validated).items()} == {
            k: type(v) for k, v in dict(envelope).items()
        }


def test_a_consumer_can_ask_for_the_topics_of_its_event_types() -> None:
    assert topics_of(["UserInvited", "PasswordChanged"]) == (
        "invitations:Invitation.Invited",
        "invitations:Account.PasswordChanged",
    )
    assert set(topics_of(EVENT_DATA)) == set(PUBLISHED_TOPICS)
    with pytest.raises(ValueError, match="NoSuchEvent"):
        topics_of(["NoSuchEvent"])
