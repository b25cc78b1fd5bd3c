"""docs/asyncapi.yaml is the contract as the code states it, and says all of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.invitation.asyncapi import app
from shared.contract import COMMANDS, EVENT_DATA, INTERNAL_COMMANDS, EventEnvelope, Reply
from shared.contract.results import RESULTS
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


def test_each_command_is_an_operation_on_the_commands_exchange_with_its_routing_key(
    document: dict[str, Any],
) -> None:
    for name in COMMANDS:
        operation = document["operations"][name]
        channel = resolve(document, operation["channel"]["$ref"])
        binding = channel["bindings"]["amqp"]
        assert (binding["is"], binding["exchange"]["name"]) == (
            "routingKey",
            "invitations.commands",
        )
        assert binding["exchange"]["type"] == "topic"
        assert channel["address"] == name  # the routing key
    # The intake queue is described, but no client is sent there.
    assert "invitation.commands" not in document["operations"]


def test_each_command_has_a_typed_reply_on_reply_to(document: dict[str, Any]) -> None:
    for name in COMMANDS:
        reply = document["operations"][name]["reply"]
        assert reply["address"]["location"] == "$message.header#/reply_to"
        (message_ref,) = reply["messages"]
        schema = resolve(document, resolve(document, message_ref["$ref"])["payload"]["$ref"])
        assert set(schema["properties"]) == {"command_id", "status", "result", "error"}
        result_ref = schema["properties"]["result"]["anyOf"][0]["$ref"]
        result = resolve(document, result_ref)
        assert set(result["properties"]) == set(RESULTS[name].model_fields), name


def test_every_message_has_an_example_valid_for_its_model(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for name, model in COMMANDS.items():
        (example,) = messages[name]["examples"]
        model.model_validate(example["payload"])
        for reply in messages[f"{name}.reply"]["examples"]:
            parsed = Reply.model_validate(reply["payload"])
            if parsed.status == "accepted":
                RESULTS[name].model_validate(parsed.result)
    for event_type, data in EVENT_DATA.items():
        (example,) = messages[event_type]["examples"]
        envelope = EventEnvelope.model_validate(example["payload"])
        assert envelope.event_type == event_type
        data.model_validate(envelope.data)


def test_every_command_has_a_result_model() -> None:
    assert set(RESULTS) == set(COMMANDS)


def test_every_event_type_has_a_payload_schema_of_its_own(document: dict[str, Any]) -> None:
    events = document["channels"]["invitations.events"]
    assert events["bindings"]["amqp"]["exchange"]["name"] == "invitations.events"
    assert set(events["messages"]) == set(EVENT_DATA)
    payloads = set()
    for event_type, model in EVENT_DATA.items():
        message = resolve(document, events["messages"][event_type]["$ref"])
        payloads.add(message["payload"]["$ref"])
        schema = resolve(document, message["payload"]["$ref"])
        assert "allOf" not in schema  # generators make one type per event, not a merge
        assert "event_id" in schema["properties"]
        assert schema["properties"]["event_type"]["const"] == event_type
        data = resolve(document, schema["properties"]["data"]["$ref"])
        assert set(data["properties"]) == set(model.model_fields), event_type
    assert len(payloads) == len(EVENT_DATA)


def test_the_official_parser_accepts_the_document_without_errors_or_warnings() -> None:
    parser = ROOT / "tests" / "ops" / "asyncapi_parser"
    run = subprocess.run(
        ["node", str(parser / "validate.mjs"), str(COMMITTED)],
        cwd=parser,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome = json.loads(run.stdout)
    problems = [d for d in outcome["diagnostics"] if d["severity"] in ("error", "warning")]
    assert outcome["parsed"], outcome["diagnostics"]
    assert problems == []
    assert set(COMMANDS) <= set(outcome["operations"])


def test_senders_are_documented_user_id_internal_commands_and_the_new_codes(
    document: dict[str, Any],
) -> None:
    assert "`user_id`" in document["info"]["description"]
    for name in COMMANDS:
        message = document["components"]["messages"][name]
        assert "`user_id`" in message["description"], name
        assert ("INTERNAL_SENDERS" in message["summary"]) == (name in INTERNAL_COMMANDS), name
    codes = document["components"]["schemas"]["RejectionCode"]["enum"]
    new = {"unauthenticated", "forbidden", "invalid_name", "not_a_member", "last_administrator"}
    assert new <= set(codes)
    assert "sender" in document["components"]["schemas"]["UserInvitedEvent"]["properties"]
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
