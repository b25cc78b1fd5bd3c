from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support import suffix

pytestmark = pytest.mark.integration


@pytest.fixture
def history(store, tenant):
    """A tenant's story at known instants t0 .. t0+5h; returns the instants and emails."""
    t0 = store.clock.now
    alice, carl, dave, erin = (
        f"{n}-{suffix()}@example.com" for n in ("alice", "carl", "dave", "erin")
    )
    store.command("configure_tenant", tenant_id=tenant, contractor_enabled=True)
    alice_inv = store.invite(tenant, alice)
    carl_inv = store.invite(
        tenant, carl, role="contractor", access_expires_at=t0 + timedelta(days=10)
    )
    store.invite(tenant, erin, role="administrator")
    store.clock.advance(hours=1)
    store.accept(tenant, alice_inv, alice)
    store.clock.advance(hours=1)
    store.accept(tenant, carl_inv, carl)
    store.clock.advance(hours=1)
    store.command(
        "set_contractor_expiry",
        tenant_id=tenant,
        email=carl,
        access_expires_at=t0 + timedelta(days=5),
    )
    store.clock.advance(hours=1)
    dave_inv = store.invite(tenant, dave)
    store.clock.advance(hours=1)
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=dave_inv)
    return {"t0": t0, "alice": alice, "carl": carl, "dave": dave, "erin": erin}


def _state(store, tenant, moment):
    result = store.run(
        "state", "--as-of", moment.isoformat(), "--tenant", tenant, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    tenants = {t["tenant_id"]: t for t in document["tenants"]}
    if tenant not in tenants:
        return {}, {}
    members = {m["email"]: m for m in tenants[tenant]["members"]}
    pending = {p["email"]: p for p in tenants[tenant]["pending_invitations"]}
    return members, pending


def test_before_the_first_event_nobody_had_access(store, tenant, history):
    members, pending = _state(store, tenant, history["t0"] - timedelta(seconds=1))

    assert members == {} and pending == {}


def test_invited_people_are_pending_until_they_accept(store, tenant, history):
    t0, alice, carl = history["t0"], history["alice"], history["carl"]

    members, pending = _state(store, tenant, t0 + timedelta(minutes=30))
    assert members == {}
    assert set(pending) == {alice, carl, history["erin"]}
    assert pending[alice]["link_expires_at"] == (t0 + timedelta(days=7)).isoformat()
    assert pending[carl]["access_expires_at"] == (t0 + timedelta(days=10)).isoformat()

    members, pending = _state(store, tenant, t0 + timedelta(hours=1, minutes=30))
    assert {e: (m["role"], m["status"]) for e, m in members.items()} == {alice: ("user", "active")}
    assert carl in pending and alice not in pending


def test_a_contractor_has_the_end_date_in_force_at_that_instant(store, tenant, history):
    t0, carl = history["t0"], history["carl"]

    before_change, _ = _state(store, tenant, t0 + timedelta(hours=2, minutes=30))
    after_change, _ = _state(store, tenant, t0 + timedelta(hours=3, minutes=30))
    after_the_end, _ = _state(store, tenant, t0 + timedelta(days=6))

    assert before_change[carl]["role"] == "contractor"
    assert before_change[carl]["access_expires_at"] == (t0 + timedelta(days=10)).isoformat()
    assert after_change[carl]["access_expires_at"] == (t0 + timedelta(days=5)).isoformat()
    assert after_the_end[carl]["status"] == "expired"
    assert after_the_end[history["alice"]]["status"] == "active"


def test_a_revoked_invitation_is_pending_only_in_between(store, tenant, history):
    t0, dave = history["t0"], history["dave"]

    _, during = _state(store, tenant, t0 + timedelta(hours=4, minutes=30))
    _, after = _state(store, tenant, t0 + timedelta(hours=5, minutes=30))

    assert dave in during
    assert dave not in after


def test_a_pending_invitation_whose_link_expired_says_so(store, tenant, history):
    _, pending = _state(store, tenant, history["t0"] + timedelta(days=8))

    assert pending[history["erin"]]["link_valid"] is False


def test_without_a_tenant_every_tenant_is_shown_as_a_table(store, tenant, history):
    other = f"o-{suffix()}"
    store.invite(other, f"zoe-{suffix()}@example.com")

    result = store.run(
        "state", "--as-of", store.clock.now.isoformat(), "--format", "table", COLUMNS="250"
    )

    assert result.exit_code == 0, result.output
    assert f"{tenant}: members" in result.stdout
    assert f"{other}: pending invitations" in result.stdout
    assert history["alice"] in result.stdout
