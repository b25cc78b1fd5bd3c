"""A traced command's context is stored beside its events (not in them) and read back
for the events it caused; the events themselves, and so the hash chain, do not change."""

from __future__ import annotations

from typing import Any

from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.eventstore import EventLog, checkpoint_key, verify

from .console import Admin, NewEmail

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_traced_commands_context_is_found_for_each_event_it_caused(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    traced = admin.command("invite_user", email=new_email("traced"), role="user")
    untraced = admin.command("invite_user", email=new_email("untraced"), role="user")
    replies = service.handle_batch(
        [
            IncomingCommand("invite_user", traced, traceparent=TRACEPARENT),
            IncomingCommand("invite_user", untraced),
        ]
    )
    assert [r.status for r in replies] == ["accepted", "accepted"]

    log = EventLog("unused", store=service.store)
    envelopes = list(log.iterate())
    contexts = log.trace_contexts(envelopes)

    assert contexts == {str(traced.command_id): TRACEPARENT}
    caused = [e for e in envelopes if e.correlation_id == str(traced.command_id)]
    assert {e.event_type for e in caused} >= {"UserInvited"}
    assert all(TRACEPARENT not in e.model_dump_json() for e in envelopes)
    audit: Any = service.store.recorder.audit  # type: ignore[attr-defined]
    assert verify(audit, checkpoint_key(admin.secrets_key)).intact


def test_a_repeated_command_keeps_its_first_context(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    command = admin.command("invite_user", email=new_email("repeated"), role="user")
    other = TRACEPARENT.replace("00f067aa0ba902b7", "1111111111111111")
    service.handle_batch([IncomingCommand("invite_user", command, traceparent=TRACEPARENT)])
    service.handle_batch([IncomingCommand("invite_user", command, traceparent=other)])

    log = EventLog("unused", store=service.store)
    assert log.trace_contexts(list(log.iterate())) == {str(command.command_id): TRACEPARENT}
