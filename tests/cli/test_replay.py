from __future__ import annotations

import sys
from types import ModuleType

import pytest

from services.cli import replay
from services.invitation.eventstore import EventLog

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_consumer(monkeypatch):
    """A consumer package exposing the replay protocol: it counts what it was shown."""
    seen: dict[str, object] = {}

    def rebuild(settings, progress):
        log = EventLog(settings.database_url)
        try:
            last = log.max_position()
            applied = 0
            for envelope in log.iterate():
                applied += 1
                progress(envelope.position, last)
            seen["settings"], seen["applied"] = settings, applied
            return applied
        finally:
            log.close()

    module = ModuleType("fake_consumer_replay")
    module.rebuild = rebuild  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(replay.CONSUMERS, "notifier", module.__name__)
    return seen


def test_replay_runs_the_consumers_rebuild_against_the_store(store, tenant, fake_consumer):
    store.invite(tenant, "x-replay@example.com")

    result = store.run("replay", "notifier")

    assert result.exit_code == 0, result.output
    assert fake_consumer["applied"] == len(store.envelopes())
    assert fake_consumer["settings"].database_url == store.url
    assert f"notifier rebuilt from {len(store.envelopes())} events" in result.stdout


def test_a_consumer_without_the_protocol_fails_with_the_signature_expected(store, monkeypatch):
    monkeypatch.setitem(replay.CONSUMERS, "expiry", "services.no_such_consumer.replay")

    result = store.run("replay", "expiry")

    assert result.exit_code == 2
    assert "services.no_such_consumer.replay does not exist" in result.stderr
    assert "rebuild(settings: ServiceSettings, progress: Callable[[int, int], None]) -> int" in (
        result.stderr
    )


def test_an_unknown_consumer_is_a_usage_error(store):
    result = store.run("replay", "mailer")

    assert result.exit_code == 2


def test_the_read_model_is_rebuilt_from_the_store_to_what_it_was(store, tenant):
    first = store.invite(tenant, f"rm-a-{tenant}@example.com")
    store.invite(tenant, f"rm-b-{tenant}@example.com", temp_password_delivery="manual")
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=first)
    tables = store.service.store.recorder.read_model
    live = tables.dump()
    store.sql("DELETE FROM invitations_rm_invitations")

    result = store.run("replay", "read-model")

    assert result.exit_code == 0, result.output
    assert "read-model rebuilt from" in result.stdout
    assert tables.dump() == live
