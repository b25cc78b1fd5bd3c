"""An email's history is found among many other people's events.

Fifty thousand are enough for the behaviour (the right events, in order, found by the
email's index rows among others); how fast it is among a million is a figure of
bench/scale.py (`audit_one_email_ms`), measured there, not here.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.cli.history import History, HistoryFilter
from services.invitation.eventstore import InvitationStore, store_env

pytestmark = pytest.mark.integration

FILLER = 50_000


def test_one_email_is_audited_among_fifty_thousand_other_events(store, tenant):
    email = f"needle-{uuid4().hex[:8]}@example.com"
    invitation = store.invite(tenant, email)
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=invitation)
    store.invite(f"other-{uuid4().hex[:8]}", email)
    # Other people's events, each with its row in the stream index, as the
    # recorder would have written them.
    store.sql(
        "INSERT INTO invitations_events (originator_id, originator_version, topic, state) "
        "SELECT gen_random_uuid(), 1, 'invitations:Account.Created', "
        "convert_to('{\"email\":\"filler' || g || '@example.com\"}', 'UTF8') "
        "FROM generate_series(1, %s) AS g",
        (FILLER,),
    )
    store.sql(
        "INSERT INTO invitations_streams (originator_id, kind, tenant_id, email) "
        "SELECT originator_id, 'invitations:Account', NULL, "
        "convert_from(state, 'UTF8')::json->>'email' FROM invitations_events "
        "WHERE topic = 'invitations:Account.Created' AND originator_version = 1 "
        "ON CONFLICT DO NOTHING"
    )
    store.sql("ANALYZE invitations_events")
    store.sql("ANALYZE invitations_streams")
    assert store.sql("SELECT count(*) FROM invitations_events")[0][0] > FILLER

    reader = InvitationStore(env=store_env(store.url))
    try:
        history = History(reader, reader.recorder.audit)
        found = list(history.envelopes(HistoryFilter(email=email)))
    finally:
        reader.close()

    types = [e.event_type for e in found]
    assert types[:4] == [
        "UserInvited",
        "TempPasswordIssued",
        "InvitationRevoked",
        "TempPasswordRevoked",
    ]
    assert types.count("UserInvited") == 2  # the second tenant's invitation too
