"""docs/asyncapi.yaml is the contract as the code states it, and says all of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.invitation.asyncapi import app
from shared.contract import COMMANDS, EVENT_DATA, INTERNAL_COMMANDS
from tests.ops.conftest import ROOT

COMMITTED = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = (
    "faststream docs gen --factory --yaml services.invitation.asyncapi:app -o docs/asyncapi.yaml"
)


def generated() -> str:
    return app().schema.to_specification().to_yaml()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(COMMITTED.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolve(document: dict[str, Any], reference: str) -> Any:
    """The node `reference` points at, following references to references."""
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference[2:].split("/"):
        assert part in node, f"{reference} does not resolve"
        node = node[part]
    if isinstance(node, dict) and set(node) == {"$ref"}:
        return resolve(document, node["$ref"])
    return node


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.read_text() == generated(), f"docs/asyncapi.yaml is stale: {REGENERATE}"


def test_the_documented_faststream_command_writes_the_same_document(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.yaml"
    faststream = Path(sys.executable).with_name("faststream")
    subprocess.run(
        [str(faststream), *REGENERATE.split()[1:-1], str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.read_text() == COMMITTED.read_text()


def test_generation_does_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://someone:secret@elsewhere:5673/vhost")
    monkeypatch.setenv("COMMAND_PREFETCH", "7")
    assert generated() == COMMITTED.read_text()


def test_every_command_has_its_message_and_payload_schema(document: dict[str, Any]) -> None:
    intake = document["channels"]["invitation.commands"]
    assert set(intake["messages"]) == set(COMMANDS)
    for name, model in COMMANDS.items():
        message = resolve(document, intake["messages"][name]["$ref"])
        schema = resolve(document, message["payload"]["$ref"])
        assert set(schema["properties"]) == set(model.model_fields), name
        assert {"command_id", "actor"} <= set(schema["required"]), name


def test_commands_are_answered_with_the_reply_on_reply_to(document: dict[str, Any]) -> None:
    reply = document["operations"]["invitation.commands"]["reply"]
    assert reply["address"]["location"] == "$message.header#/reply_to"
    (message_ref,) = reply["messages"]
    schema = resolve(document, resolve(document, message_ref["$ref"])["payload"]["$ref"])
    assert set(schema["properties"]) == {"command_id", "status", "result", "error"}


def test_every_event_has_its_message_with_envelope_and_data_schemas(
    document: dict[str, Any],
) -> None:
    events = document["channels"]["invitations.events"]
    assert events["bindings"]["amqp"]["exchange"]["name"] == "invitations.events"
    assert set(events["messages"]) == set(EVENT_DATA)
    for event_type, model in EVENT_DATA.items():
        message = resolve(document, events["messages"][event_type]["$ref"])
        envelope_ref, specific = message["payload"]["allOf"]
        assert "event_id" in resolve(document, envelope_ref["$ref"])["properties"]
        assert specific["properties"]["event_type"] == {"const": event_type}
        data = resolve(document, specific["properties"]["data"]["$ref"])
        assert set(data["properties"]) == set(model.model_fields), event_type


def test_senders_are_documented_user_id_internal_commands_and_the_new_codes(
    document: dict[str, Any],
) -> None:
    assert "`user_id`" in document["info"]["description"]
    intake = document["channels"]["invitation.commands"]
    for name in COMMANDS:
        message = resolve(document, intake["messages"][name]["$ref"])
        assert "`user_id`" in message["description"], name
        assert ("INTERNAL_SENDERS" in message["summary"]) == (name in INTERNAL_COMMANDS), name
    codes = document["components"]["schemas"]["RejectionCode"]["enum"]
    new = {"unauthenticated", "forbidden", "invalid_name", "not_a_member", "last_administrator"}
    assert new <= set(codes)
    envelope = document["components"]["schemas"]["EventEnvelope"]
    assert "sender" in envelope["properties"]
    assert "inviter_name" in document["components"]["schemas"]["UserInvited"]["properties"]


def test_dead_letters_are_documented_with_their_reason_header(document: dict[str, Any]) -> None:
    channel = document["channels"]["invitation.commands.dead"]
    message = resolve(document, channel["messages"]["DeadLetteredCommand"]["$ref"])
    assert "x-dead-letter-reason" in message["headers"]["properties"]


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                resolve(document, node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
