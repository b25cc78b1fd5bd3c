"""Rules 12 and 19: no temporary password or link token in clear, in any table or output."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from shared.database import postgres_conninfo
from shared.sealed_box import RecipientKeys

from .console import Admin, NewEmail, Store

DAY = timedelta(days=1)


@dataclass
class Witness:
    """Captures every plaintext and token the service made, before they can be shredded."""

    admin: Admin
    position: int = 0
    passwords: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)  # replies and published envelopes
    retrieved: set[str] = field(default_factory=set)  # opened from sealed boxes
    boxes: set[str] = field(default_factory=set)  # the sealed boxes themselves

    def send(self, name: str, **fields: object) -> dict[str, object] | None:
        reply = self.admin.send(name, **fields)
        self.outputs.append(reply.model_dump_json())
        self._look()
        return reply.result

    def _look(self) -> None:
        for envelope in self.admin.events(after=self.position):
            self.outputs.append(envelope.model_dump_json())
            data = envelope.data
            if envelope.event_type == "TempPasswordIssued":
                plaintext = self.admin.service.open_sealed(UUID(data["temp_password_id"]))
                assert plaintext is not None
                self.passwords.add(plaintext)
            if envelope.event_type in ("UserInvited", "InvitationResent"):
                self.tokens.add(self.admin.token(data["invitation_id"], data["link_generation"]))
        self.position = self.admin.position()


def _dump(store: Store) -> str:
    """Every row of every table of the store, bytes decoded as text."""
    cells = _postgres_cells(store) if store.backend == "postgres" else _sqlite_cells(store)
    return "\n".join(
        bytes(c).decode("utf-8", "replace") if isinstance(c, bytes | memoryview) else str(c)
        for c in cells
    )


def _postgres_cells(store: Store) -> list[object]:
    assert store.schema is not None
    cells: list[object] = []
    with psycopg.connect(postgres_conninfo(store.url)) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.schema,),
        ).fetchall()
        assert len(tables) >= 3  # events, replies, sealed copies
        for (table,) in tables:
            query = sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(store.schema), sql.Identifier(table)
            )
            cells += [cell for row in conn.execute(query) for cell in row]
    return cells


def _sqlite_cells(store: Store) -> list[object]:
    cells: list[object] = []
    conn = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    try:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert len(tables) >= 3  # events, replies, sealed copies
        for (table,) in tables:
            cells += [cell for row in conn.execute(f'SELECT * FROM "{table}"') for cell in row]
    finally:
        conn.close()
    return cells


def _realistic_history(witness: Witness, admin: Admin, new_email: NewEmail) -> list[str]:
    automatic, manual, rotated, revoked, contractor = (
        new_email(n) for n in ("auto", "manual", "rotated", "revoked", "contractor")
    )
    witness.send(
        "configure_tenant", contractor_enabled=True, admin_notification_emails=["ops@acme.example"]
    )
    auto_id = witness.send("invite_user", email=automatic, role="administrator")
    witness.send("invite_user", email=manual, role="user", temp_password_delivery="manual")
    witness.send(
        "mass_invite",
        invitees=[
            {"email": rotated, "role": "user"},
            {"email": revoked, "role": "user"},
            {
                "email": contractor,
                "role": "contractor",
                "access_expires_at": admin.clock.now + 30 * DAY,
            },
            {"email": "broken", "role": "user"},
        ],
    )
    witness.send(
        "record_temp_password_delivered",
        email=automatic,
        temp_password_id=admin.temp_password_id(automatic),
    )
    witness.send("resend_invitation", email=rotated)
    witness.send("revoke_invitation", email=revoked, reason="left")
    keys = RecipientKeys()
    retrieved = witness.send(
        "retrieve_temp_password", email=manual, recipient_public_key=keys.public_key
    )
    assert retrieved is not None
    # Sealed to the caller's key: its plaintext is the manual password, found nowhere else.
    witness.retrieved.add(keys.open(str(retrieved["sealed_temp_password"])))
    witness.boxes.add(str(retrieved["sealed_temp_password"]))
    assert auto_id is not None
    witness.send(
        "accept_invitation", email=automatic, token=admin.token(str(auto_id["invitation_id"]))
    )
    witness.send("record_password_changed", email=automatic)
    rotated_invitation = admin.events("InvitationResent")[-1].data["invitation_id"]
    witness.send(
        "accept_invitation", email=new_email("eve"), token=admin.token(rotated_invitation, 2)
    )
    witness.send("accept_invitation", email=rotated, token=admin.token(rotated_invitation, 1))
    admin.clock.advance(7 * DAY)
    witness.send(
        "expire_temp_password",
        email=contractor,
        temp_password_id=admin.temp_password_id(contractor),
    )
    # What the read side answers: every query, over the same history.
    batch_id = admin.events("MassInviteCompleted")[-1].data["batch_id"]
    witness.send("list_invitations")
    witness.send("list_members")
    witness.send("get_invitation", email=manual)
    witness.send("get_mass_invite_report", batch_id=batch_id)
    witness.send("lookup_invitation_token", token=admin.token(rotated_invitation, 2))
    return [automatic, manual, rotated, revoked, contractor]


@pytest.fixture
def history(
    admin: Admin, new_email: NewEmail, caplog: pytest.LogCaptureFixture
) -> tuple[Witness, list[str]]:
    caplog.set_level(logging.DEBUG)
    witness = Witness(admin)
    emails = _realistic_history(witness, admin, new_email)
    return witness, emails


def test_the_history_made_real_secrets(history: tuple[Witness, list[str]]) -> None:
    witness, _ = history
    # manual, auto, rotated (twice), revoked, contractor: six temporary passwords.
    assert len(witness.passwords) == 6
    assert len(witness.tokens) == 6  # five invitations, one resend


def test_a_retrieved_password_is_readable_only_with_the_callers_key(
    history: tuple[Witness, list[str]], store: Store
) -> None:
    witness, _ = history
    assert len(witness.retrieved) == 1
    assert witness.retrieved <= witness.passwords
    # The box itself is not kept either (not in the stored replies, nor anywhere else).
    dump = _dump(store)
    for box in witness.boxes:
        assert box not in dump


def test_no_table_holds_a_temp_password_or_token_in_clear(
    history: tuple[Witness, list[str]], store: Store
) -> None:
    witness, emails = history
    dump = _dump(store)
    assert all(email in dump for email in emails), "the dump reads the stored events"
    for secret in witness.passwords | witness.tokens:
        assert secret not in dump


def test_no_reply_or_published_event_holds_a_secret(history: tuple[Witness, list[str]]) -> None:
    witness, _ = history
    output = "\n".join(witness.outputs)
    for secret in witness.passwords | witness.tokens:
        assert secret not in output


def test_no_log_line_holds_a_secret(
    history: tuple[Witness, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    witness, _ = history
    for secret in witness.passwords | witness.tokens:
        assert secret not in caplog.text


def test_only_undelivered_temp_passwords_keep_a_sealed_copy(
    history: tuple[Witness, list[str]], admin: Admin
) -> None:
    _, (automatic, manual, rotated, revoked, contractor) = history
    # delivered, retrieved, revoked and expired ones are shredded; the rotated invitee's
    # second password is the only one still waiting for delivery.
    assert admin.sealed_count() == 1
    assert admin.is_sealed(admin.temp_password_id(rotated))
    for email in (automatic, manual, revoked, contractor):
        assert admin.service.open_sealed(admin.temp_password_id(email)) is None
