"""SENDER_POLICY (rule 30): the file read at start, and who the gate lets through."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.invitation.adapters.sender_policy import (
    SenderPolicyError,
    load_sender_policy,
    parse_sender_policy,
)
from services.invitation.application import IncomingCommand
from services.invitation.application.senders import SenderGate
from services.invitation.domain.errors import DomainError
from shared.contract import (
    AUDIENCE,
    COMMANDS,
    INTERNAL_COMMANDS,
    QUERIES,
    Audience,
    TenantCommand,
)

POLICY = """\
# What each backend may send.
senders:
  billing-backend:
    commands: [invite_user, mass_invite, resend_invitation, revoke_invitation]
    tenants: ["acme-*", globex]
  login-frontend:
    commands:
      - accept_invitation
      - register_account
      - record_password_changed
    tenants: ["*"]
  signup:
    commands: [register_account]
  no:   # a YAML "false", read as the name written
    commands: ["*"]
    tenants: ["*"]
"""


def sent_by(sender: str | None, name: str, **fields: Any) -> IncomingCommand:
    """Command `name` as the intake hands it on: published by broker user `sender`."""
    model = COMMANDS[name]
    body: dict[str, Any] = {"command_id": uuid4(), "actor": "service:expiry", **fields}
    if issubclass(model, TenantCommand):
        body.setdefault("tenant_id", "acme-eu")
    return IncomingCommand(name, model.model_validate(body), sender)


EXAMPLES: dict[str, dict[str, Any]] = {
    "invite_user": {"email": "a@example.com", "role": "user"},
    "configure_tenant": {"admin_notification_emails": ["mallory@evil.example"]},
    "register_account": {"email": "victim@example.com"},
    "record_temp_password_delivered": {"email": "a@example.com", "temp_password_id": uuid4()},
    "expire_contractor": {"email": "a@example.com"},
}


def refusal(gate: SenderGate, item: IncomingCommand) -> DomainError:
    with pytest.raises(DomainError) as refused:
        gate.check(item)
    return refused.value


# -- the file ----------------------------------------------------------------------------


def test_a_good_policy_is_read_with_the_line_of_each_rule(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    policy = load_sender_policy(str(path))
    assert set(policy.rules) == {"billing-backend", "login-frontend", "signup", "no"}
    billing = policy.rules["billing-backend"]
    assert billing.commands == {
        "invite_user",
        "mass_invite",
        "resend_invitation",
        "revoke_invitation",
    }
    assert billing.tenants == ("acme-*", "globex")
    assert (billing.line, billing.commands_line, billing.tenants_line) == (3, 4, 5)
    assert policy.rules["signup"].tenants == ()


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("senders:\n  a:\n    commands: [invite_usr]\n    tenants: ['*']\n", 3, "invite_usr"),
        (
            "senders:\n  a:\n    commands:\n      - invite_user\n      - expire_contractor\n"
            "    tenants: ['*']\n",
            5,
            "internal",
        ),
        ("senders:\n  a:\n    commands: [invite_user]\n    tenants: [Acme]\n", 4, "Acme"),
        ("senders:\n  a:\n    commands: [invite_user]\n", 2, "no tenant"),
        ("senders:\n  a:\n    commands: [invite_user]\n    tenant: ['*']\n", 4, "tenant"),
        (
            "senders:\n  a:\n    commands: [register_account]\n  a:\n    commands: []\n",
            4,
            "twice (first at line 2)",
        ),
        ("senders:\n  a:\n    commands: [invite_user]\n    tenants: [*]\n", 4, 'quoted: "*"'),
        ("senders:\n  a:\n    commands: invite_user\n", 3, "must be a list"),
        ("senders:\n  a:\n    commands: [x\n", 4, "flow sequence at line 3"),
        ("sender:\n  a: {}\n", 1, "unknown key 'sender'"),
    ],
)
def test_a_bad_policy_is_refused_with_the_line_that_holds_the_problem(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(SenderPolicyError) as refused:
        load_sender_policy(str(path))
    message = str(refused.value)
    assert message.startswith(f"SENDER_POLICY {path} line {line}:"), message
    assert says in message


def test_a_missing_or_empty_policy_file_is_refused() -> None:
    with pytest.raises(SenderPolicyError, match="cannot read"):
        load_sender_policy("/nonexistent/policy.yaml")
    with pytest.raises(SenderPolicyError, match="empty"):
        parse_sender_policy("# nothing\n", "p.yaml")


# -- the gate ----------------------------------------------------------------------------


def test_a_command_without_a_sender_is_unauthenticated() -> None:
    gate = SenderGate({"svc"})
    for sender in (None, ""):
        assert refusal(gate, sent_by(sender, "invite_user", **EXAMPLES["invite_user"])).code == (
            "unauthenticated"
        )


def test_every_command_is_public_or_internal_and_retrieval_is_public() -> None:
    assert set(AUDIENCE) == set(COMMANDS)
    assert AUDIENCE["retrieve_temp_password"] is Audience.PUBLIC
    assert AUDIENCE["remove_member"] is AUDIENCE["change_role"] is Audience.PUBLIC
    assert {
        "record_temp_password_delivered",
        "record_notification_failed",
        "record_invitation_email_sent",
        "expire_contractor",
        "lapse_invitation",
        "expire_temp_password",
        "remind_contractor_expiry",
    } == INTERNAL_COMMANDS
    assert all(AUDIENCE[name] is Audience.PUBLIC for name in QUERIES)


@pytest.mark.parametrize("name", ["record_temp_password_delivered", "expire_contractor"])
def test_internal_commands_are_forbidden_to_anyone_but_the_internal_senders(name: str) -> None:
    gate = SenderGate({"svc-notifier", "svc-expiry"})
    error = refusal(gate, sent_by("backend", name, **EXAMPLES[name]))
    assert error.code == "forbidden"
    assert error.details["rule"] == "internal_command"
    assert error.details["sender"] == "backend"
    assert error.details["command"] == name
    gate.check(sent_by("svc-expiry", name, **EXAMPLES[name]))


def test_without_a_policy_any_sender_may_send_every_public_command_for_any_tenant() -> None:
    gate = SenderGate({"svc"})
    gate.check(
        sent_by("backend", "configure_tenant", tenant_id="anyone", **EXAMPLES["configure_tenant"])
    )
    gate.check(sent_by("backend", "register_account", **EXAMPLES["register_account"]))


def test_the_policy_names_the_rule_that_refused() -> None:
    gate = SenderGate({"svc"}, parse_sender_policy(POLICY, "policy.yaml"))
    billing = "billing-backend"

    gate.check(sent_by(billing, "invite_user", tenant_id="acme-eu", **EXAMPLES["invite_user"]))
    gate.check(sent_by(billing, "invite_user", tenant_id="globex", **EXAMPLES["invite_user"]))

    wrong_command = refusal(
        gate, sent_by(billing, "configure_tenant", **EXAMPLES["configure_tenant"])
    )
    assert wrong_command.code == "forbidden"
    assert wrong_command.details == {
        "sender": billing,
        "command": "configure_tenant",
        "tenant_id": "acme-eu",
        "rule": "command_not_allowed",
        "policy_line": 4,
    }
    assert "SENDER_POLICY line 4" in wrong_command.message

    other_tenant = refusal(
        gate, sent_by(billing, "invite_user", tenant_id="globex-2", **EXAMPLES["invite_user"])
    )
    assert other_tenant.details["rule"] == "tenant_not_allowed"
    assert other_tenant.details["policy_line"] == 5

    stranger = refusal(gate, sent_by("mallory", "register_account", **EXAMPLES["register_account"]))
    assert stranger.details["rule"] == "sender_not_in_policy"


def test_commands_without_a_tenant_are_matched_on_the_command_alone() -> None:
    gate = SenderGate({"svc"}, parse_sender_policy(POLICY, "policy.yaml"))
    gate.check(sent_by("signup", "register_account", **EXAMPLES["register_account"]))
    gate.check(sent_by("no", "configure_tenant", tenant_id="x", **EXAMPLES["configure_tenant"]))
    refused = refusal(gate, sent_by("billing-backend", "register_account", email="v@example.com"))
    assert refused.details["tenant_id"] is None


def test_internal_senders_are_not_subject_to_the_policy_for_internal_commands() -> None:
    gate = SenderGate({"svc-expiry"}, parse_sender_policy(POLICY, "policy.yaml"))
    gate.check(sent_by("svc-expiry", "expire_contractor", **EXAMPLES["expire_contractor"]))
    # ... but are for public ones, like any other sender.
    refused = refusal(
        gate, sent_by("svc-expiry", "configure_tenant", **EXAMPLES["configure_tenant"])
    )
    assert refused.details["rule"] == "sender_not_in_policy"


def test_a_refusal_is_a_reply_with_the_command_id() -> None:
    gate = SenderGate({"svc"})
    item = sent_by("backend", "expire_contractor", **EXAMPLES["expire_contractor"])
    reply = gate.refusal(item)
    assert reply is not None
    assert reply.command_id == str(item.command.command_id)
    assert reply.error is not None
    assert reply.error.code == "forbidden"
    assert (
        gate.refusal(sent_by("svc", "expire_contractor", **EXAMPLES["expire_contractor"])) is None
    )


def test_queries_and_the_retrieval_pass_the_policy_like_any_public_command() -> None:
    policy = parse_sender_policy(
        "senders:\n  portal:\n    commands: [list_invitations, get_invitation]\n"
        '    tenants: ["acme-*"]\n',
        "p.yaml",
    )
    gate = SenderGate({"svc"}, policy)
    key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

    gate.check(sent_by("portal", "list_invitations", tenant_id="acme-eu"))
    gate.check(sent_by("portal", "get_invitation", email="a@example.com"))
    elsewhere = refusal(gate, sent_by("portal", "list_invitations", tenant_id="globex"))
    retrieval = refusal(
        gate, sent_by("portal", "retrieve_temp_password", email="a@x.io", recipient_public_key=key)
    )
    members = refusal(gate, sent_by("portal", "list_members"))
    assert (elsewhere.code, elsewhere.details["rule"]) == ("forbidden", "tenant_not_allowed")
    assert (retrieval.code, retrieval.details["rule"]) == ("forbidden", "command_not_allowed")
    assert members.code == "forbidden"
    # Without a policy, any authenticated sender may ask; never an unauthenticated one.
    open_gate = SenderGate({"svc"})
    open_gate.check(sent_by("anyone", "get_mass_invite_report", batch_id=uuid4()))
    assert refusal(open_gate, sent_by(None, "lookup_invitation_token", token="t")).code == (
        "unauthenticated"
    )
    # The notifier's report of an email sent is internal.
    report = sent_by(
        "anyone", "record_invitation_email_sent", invitation_id=uuid4(), link_generation=1
    )
    assert refusal(open_gate, report).code == "forbidden"
