from __future__ import annotations

import json

import pytest

from services.invitation.domain.ids import account_uuid
from shared.contract import EventEnvelope
from tests.support import suffix

pytestmark = pytest.mark.integration


def _lines(output: str) -> list[EventEnvelope]:
    return [EventEnvelope.model_validate_json(line) for line in output.splitlines() if line]


def test_json_lines_are_exactly_the_envelopes_the_relay_publishes(store, tenant: str):
    store.command("configure_tenant", tenant_id=tenant, contractor_enabled=True)
    invitation = store.invite(tenant, f"ann-{suffix()}@example.com")
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=invitation, reason="typo")

    result = store.run("audit", "--format", "json")

    assert result.exit_code == 0, result.output
    published = [e.model_dump_json() for e in store.envelopes()]
    assert result.stdout.splitlines() == published
    assert [json.loads(line)["event_type"] for line in result.stdout.splitlines()] == [
        "TenantConfigured",
        "UserInvited",
        "TempPasswordIssued",
        "InvitationRevoked",
        "TempPasswordRevoked",
    ]


def test_an_email_is_followed_across_tenants_and_nobody_else_is_listed(store):
    first, second = f"a-{suffix()}", f"b-{suffix()}"
    email = f"bob-{suffix()}@example.com"
    store.invite(first, email)
    store.invite(first, f"other-{suffix()}@example.com")
    invited_again = store.invite(second, email.upper())  # normalised: the same person

    result = store.run("audit", "--email", f"  {email.upper()} ", "--format", "json")

    assert result.exit_code == 0, result.output
    found = _lines(result.stdout)
    expected = [
        e
        for e in store.envelopes()
        if e.data.get("email") == email or e.data.get("invitation_id") == str(invited_again)
    ]
    assert found == expected
    assert {e.tenant_id for e in found} == {first, second}
    assert [e.position for e in found] == sorted(e.position for e in found)


def test_tenant_type_and_actor_filters_combine(store, tenant: str):
    other = f"o-{suffix()}"
    alice, bob = f"alice-{suffix()}@example.com", f"bob-{suffix()}@example.com"
    store.invite(tenant, alice, actor="root@example.com")
    store.invite(tenant, bob, actor="admin@example.com")
    store.invite(other, alice, actor="root@example.com")

    by_tenant = _lines(store.run("audit", "--tenant", tenant, "--format", "json").stdout)
    narrowed = _lines(
        store.run(
            "audit",
            "--tenant",
            tenant,
            "--type",
            "UserInvited",
            "--actor",
            "root@example.com",
            "--format",
            "json",
        ).stdout
    )

    assert by_tenant == [e for e in store.envelopes() if e.tenant_id == tenant]
    assert len(by_tenant) == 4
    assert [(e.event_type, e.data["email"]) for e in narrowed] == [("UserInvited", alice)]


def test_an_invitation_shows_its_own_events_and_its_temporary_password(store, tenant: str):
    email = f"carol-{suffix()}@example.com"
    first = store.invite(tenant, email)
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=first)
    second = store.invite(tenant, email)

    found = _lines(store.run("audit", "--invitation", str(second), "--format", "json").stdout)

    assert [e.event_type for e in found] == ["UserInvited", "TempPasswordIssued"]
    assert all(str(second) in (str(e.aggregate_id), e.data.get("invitation_id")) for e in found)
    assert found[1].aggregate_id == account_uuid(email)


def test_since_and_until_bound_the_time_inclusively(store, tenant: str):
    start = store.clock.now
    store.invite(tenant, f"d-{suffix()}@example.com")
    middle = store.clock.advance(hours=1)
    store.invite(tenant, f"e-{suffix()}@example.com")
    store.clock.advance(hours=1)
    store.invite(tenant, f"f-{suffix()}@example.com")

    found = _lines(
        store.run(
            "audit",
            "--tenant",
            tenant,
            "--since",
            middle.isoformat(),
            "--until",
            (middle.replace(tzinfo=None)).isoformat(),
            "--format",
            "json",
        ).stdout
    )
    before = _lines(store.run("audit", "--until", start.isoformat(), "--format", "json").stdout)

    assert [e.occurred_at for e in found] == [middle, middle]
    assert {e.occurred_at for e in before} == {start}


def test_the_table_lists_each_event_with_its_actor(store, tenant: str):
    email = f"g-{suffix()}@example.com"
    store.invite(tenant, email, actor="boss@example.com")

    result = store.run("audit", "--email", email, "--format", "table", COLUMNS="200")

    assert result.exit_code == 0, result.output
    assert "UserInvited" in result.stdout
    assert "boss@example.com" in result.stdout
    assert "2 event(s)" in result.stdout


def test_an_unknown_email_has_no_history(store, tenant: str):
    store.invite(tenant, f"h-{suffix()}@example.com")

    result = store.run("audit", "--email", "nobody@example.com", "--format", "json")

    assert result.exit_code == 0
    assert result.stdout == ""
